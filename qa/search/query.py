"""A question and ``k`` as callers give them, checked once for every entry point."""

from __future__ import annotations

from ..errors import InvalidQueryError

MAX_QUESTION_CHARS = 2000


def check_k(k: object) -> int:
    """``k`` as a whole number of at least 1, or :class:`InvalidQueryError`."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidQueryError(f"k must be a whole number of at least 1, got {k!r}.")
    return k


def check_question(question: object, k: object) -> str:
    """The question stripped of surrounding white space; :class:`InvalidQueryError` if unusable.

    >>> check_question("  When did Porsche meet Apple? ", 5)
    'When did Porsche meet Apple?'
    """
    if not isinstance(question, str) or not question.strip():
        raise InvalidQueryError("The question is empty; type a question about the seeds.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(
            f"The question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}."
        )
    check_k(k)
    return question.strip()
