"""The answering seam: the ``Answerer`` protocol and the pieces every answerer composes with.

An answerer is a pure step ``(question, Evidence) -> Answer``: it reads what retrieval found
and never calls back into it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from ..search.evidence import Evidence
from ..types import Answer, Citation, Passage, Sentence, Span
from .spans import Kind, find_span

NOT_FOUND = {
    "en": "The seeds do not answer this question.",
    "de": "Die Seeds beantworten diese Frage nicht.",
}


class Answerer(Protocol):
    """Turns a checked question and its evidence into an :class:`Answer`."""

    def __call__(self, question: str, evidence: Evidence) -> Answer: ...


def not_found(question: str, evidence: Evidence, confidence: float) -> Answer:
    """The answer when the seeds do not answer: a notice in the question's language, and the
    closest passages still attached."""
    return Answer(
        question=question,
        text=NOT_FOUND[evidence.language],
        found=False,
        citations=(),
        passages=evidence.ranked,
        confidence=round(confidence, 6),
    )


def cite(
    number: int,
    sentence: Sentence,
    passage: Passage,
    score: float,
    span: Span | None = None,
) -> Citation:
    """A ``[number]`` citation of a sentence; ``span`` is given in sentence offsets."""
    if span is not None:  # offsets of the span in the file, not in the sentence
        span = dataclasses.replace(
            span, start=sentence.start + span.start, end=sentence.start + span.end
        )
    return Citation(
        number=number,
        source=sentence.source,
        start=sentence.start,
        end=sentence.end,
        quote=sentence.text,
        passage_rank=passage.rank,
        score=round(score, 6),
        span=span,
        page=sentence.page,
        location=sentence.location,
    )


def asked_span(
    kind: Kind | None, question: str, sentence: Sentence, passage: Passage, language: str
) -> Span | None:
    """The span of the asked-for kind (date, number, place) in the sentence, in its offsets."""
    return find_span(kind, sentence.text, question, language=language, document_date=passage.date)


def _quote(text: str) -> str:
    return '"' + " ".join(text.split()) + '"'


def found(
    question: str,
    evidence: Evidence,
    citations: Sequence[Citation],
    confidence: float,
    direct: str | None,
) -> Answer:
    """The answer: the direct answer (if any), then each cited sentence quoted with ``[n]``."""
    body = " ".join(f"{_quote(c.quote)} [{c.number}]" for c in citations)
    return Answer(
        question=question,
        text=f"{direct} — {body}" if direct else body,
        found=True,
        citations=tuple(citations),
        passages=evidence.ranked,
        direct=direct,
        confidence=round(confidence, 6),
    )
