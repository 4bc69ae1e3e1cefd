"""What the reader returns: the best answer spans of each context and its no-answer score."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AnswerSpan:
    """A candidate answer: ``context[start:end] == text``; ``score`` = start + end logit."""

    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Reading:
    """The reader's view of one context: its best spans (best first) and the no-answer score.

    ``no_answer_score`` is the start + end logit of ``<s>``, the lowest over the context's
    windows. The context likely holds no answer when it beats ``best.score`` by more than a
    calibrated threshold (cross-lingual questions give more no-answer mass).
    """

    context: int  # index into the contexts given to Reader.read
    spans: tuple[AnswerSpan, ...]
    no_answer_score: float

    @property
    def best(self) -> AnswerSpan | None:
        """The highest-scoring span, or None when the context has no readable tokens."""
        return self.spans[0] if self.spans else None

    @property
    def margin(self) -> float:
        """Best span score minus the no-answer score (negative: the reader prefers no answer)."""
        return (self.spans[0].score if self.spans else float("-inf")) - self.no_answer_score
