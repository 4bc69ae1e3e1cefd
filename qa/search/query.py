"""A question and ``k`` as callers give them, checked once for every entry point."""

from __future__ import annotations

import math
import re

from ..config import MAX_K
from ..errors import InvalidQueryError

MAX_QUESTION_CHARS = 2000

_DIGITS = re.compile(r"[0-9]{1,12}")


def _bad_k(k: object) -> InvalidQueryError:
    shown = repr(k) if len(repr(k)) <= 40 else repr(k)[:40] + "…"
    return InvalidQueryError(f"k must be a whole number from 1 to {MAX_K}, got {shown}.")


def check_k(k: object) -> int:
    """``k`` as a whole number from 1 to :data:`~qa.config.MAX_K`, or
    :class:`InvalidQueryError` (``2.7``, ``"5"``, ``True`` and ``10**9`` are refused).

    >>> check_k(5)
    5
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise _bad_k(k)
    return k


def parse_k(value: object) -> int:
    """``k`` as it arrives over HTTP or from a form: an int, a float without a fraction
    (``5.0``, as JSON numbers and sliders send it) or a string of digits; then
    :func:`check_k`. A fraction (``2.7``), NaN or text is an :class:`InvalidQueryError`,
    never silently rounded.

    >>> parse_k(5.0), parse_k(" 7 ")
    (5, 7)
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return check_k(int(value))
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return check_k(int(value.strip()))
    return check_k(value)


def check_question(question: object, k: object) -> str:
    """The question stripped of surrounding white space; :class:`InvalidQueryError` if unusable.

    A question must be a string (not a number, list or ``None``), not blank, at most
    :data:`MAX_QUESTION_CHARS` characters, and valid Unicode text (no lone surrogates, which
    cannot be encoded for the model).

    >>> check_question("  When did Porsche meet Apple? ", 5)
    'When did Porsche meet Apple?'
    """
    if not isinstance(question, str):
        raise InvalidQueryError(
            f"The question must be text, got {type(question).__name__}; "
            "send the question as a string."
        )
    if not question.strip():
        raise InvalidQueryError("The question is empty; type a question about the seeds.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(
            f"The question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}."
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidQueryError(
            f"The question holds a character that is not valid Unicode text (a lone surrogate "
            f"at character {exc.start + 1}, such as a byte that is not UTF-8); type or paste "
            "the question again."
        ) from None
    check_k(k)
    return question.strip()
