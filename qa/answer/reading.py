"""The reading answerer: the reader model finds the answer span in the best sentences.

The sentence scorer (:mod:`qa.answer.sentences`) ranks the sentences of the top passages; the
best few, each with its neighbours, are read by the extractive reader together with the
question (one batched model call). Every candidate span is scored by the reader and by the
sentence it stands in; the best becomes the direct answer, its sentence the first citation.
Whether the seeds answer at all mixes retrieval confidence with the reader's no-answer margin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import AnswerSettings, ReaderSettings
from ..search.evidence import Evidence, PassageEvidence, SentenceEvidence
from ..types import Answer, Span
from .compose import cite, found, not_found
from .reader import Reader, Reading
from .sentences import ScoredSentence, confidence_of, no_answer_threshold, rank_sentences
from .spans import (
    Kind,
    find_date,
    find_number,
    find_place,
    has_kind,
    holds_number,
    question_kind,
)


@dataclass(frozen=True, slots=True)
class Context:
    """Consecutive sentences of one passage, joined by spaces, as the reader reads them."""

    passage: PassageEvidence
    sentences: tuple[SentenceEvidence, ...]
    text: str
    #: Where each sentence starts in ``text``.
    offsets: tuple[int, ...]

    @classmethod
    def of(cls, passage: PassageEvidence, sentences: Sequence[SentenceEvidence]) -> Context:
        offsets, at = [], 0
        for s in sentences:
            offsets.append(at)
            at += len(s.sentence.text) + 1
        text = " ".join(s.sentence.text for s in sentences)
        return cls(passage, tuple(sentences), text, tuple(offsets))

    def locate(self, start: int, end: int) -> tuple[SentenceEvidence, int, int]:
        """The sentence holding ``text[start:end]``'s start, and the span in its offsets
        (cut at the sentence's end)."""
        i = max(j for j, at in enumerate(self.offsets) if at <= start)
        sentence = self.sentences[i]
        local = start - self.offsets[i]
        length = len(sentence.sentence.text)
        return sentence, local, min(length, local + end - start)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A span the reader proposed, where it stands, and how it scores."""

    sentence: SentenceEvidence
    passage: PassageEvidence
    start: int  # in the sentence's text
    end: int
    reader_score: float
    sentence_score: float
    #: How well the span holds the kind of fact asked for (0 to 1; 1 when none is asked for).
    kind_score: float
    score: float

    @property
    def text(self) -> str:
        return self.sentence.sentence.text[self.start : self.end]


def contexts_of(ranked: Sequence[ScoredSentence], settings: ReaderSettings) -> list[Context]:
    """The best ``settings.sentences`` sentences with their neighbours, merged per passage.

    Contexts keep text order inside a passage and come in the order of their best sentence.
    """
    chosen: dict[int, set[int]] = {}  # passage rank -> positions of sentences to read
    passages: dict[int, PassageEvidence] = {}
    for item in ranked[: settings.sentences]:
        passage = item.passage
        position = next(i for i, s in enumerate(passage.sentences) if s.row == item.evidence.row)
        rank = passage.passage.rank
        passages[rank] = passage
        lo = max(0, position - settings.neighbours)
        hi = min(len(passage.sentences), position + settings.neighbours + 1)
        chosen.setdefault(rank, set()).update(range(lo, hi))
    contexts = []
    for rank, positions in chosen.items():  # dicts keep the order of first (best) appearance
        passage = passages[rank]
        ordered = sorted(positions)
        run = [ordered[0]]
        for position in ordered[1:]:
            if position != run[-1] + 1:
                contexts.append(Context.of(passage, [passage.sentences[i] for i in run]))
                run = []
            run.append(position)
        contexts.append(Context.of(passage, [passage.sentences[i] for i in run]))
    return contexts


def candidates_of(
    question: str,
    contexts: Sequence[Context],
    readings: Sequence[Reading],
    ranked: Sequence[ScoredSentence],
    settings: ReaderSettings,
) -> list[Candidate]:
    """Every proposed span, scored, best first.

    A span's score adds to the reader's own score the sentence scorer's score of its sentence
    and, for a question asking for a date, number or place, whether the span holds one.
    """
    kind = question_kind(question)
    sentence_scores = {item.row: item.score for item in ranked}
    floor = min(sentence_scores.values(), default=0.0)
    out = []
    for context, reading in zip(contexts, readings, strict=True):
        for span in reading.spans:
            sentence, start, end = context.locate(span.start, span.end)
            if start >= end:
                continue
            sentence_score = sentence_scores.get(sentence.row, floor)
            text = sentence.sentence.text[start:end]
            kind_score = 1.0 if kind is None else float(has_kind(kind, text, question))
            out.append(
                Candidate(
                    sentence=sentence,
                    passage=context.passage,
                    start=start,
                    end=end,
                    reader_score=span.score,
                    sentence_score=sentence_score,
                    kind_score=kind_score,
                    score=span.score
                    + settings.sentence_weight * sentence_score
                    + settings.kind_weight * kind_score,
                )
            )
    out.sort(key=lambda c: (-c.score, c.sentence.row, c.start))
    return out


def reader_margin(readings: Sequence[Reading], settings: ReaderSettings) -> float:
    """The reader's surest answer: over the contexts read, the largest lead of the best span
    over that context's no-answer score, clipped to ±``settings.margin_clip``."""
    best = max((r.margin for r in readings if r.spans), default=-settings.margin_clip)
    return max(-settings.margin_clip, min(settings.margin_clip, best))


def direct_span(kind: Kind | None, candidate: Candidate, question: str) -> Span:
    """The answer span in sentence offsets; a date is resolved against the document's date
    ("im November" in an article of 2022-03 → "November 2021"), a place narrowed to the place
    named after its preposition."""
    text = candidate.text
    passage = candidate.passage
    if kind == "date":
        date = find_date(text, language=passage.language, document_date=passage.passage.date)
        if date is not None:
            at = candidate.start + date.start
            return Span("date", at, at + len(date.text), date.text, date.value)
    if kind == "number":
        number = find_number(text, question)
        if number is not None and number.text == text.strip():
            return Span("number", candidate.start, candidate.end, text, text)
    if kind == "place":
        place = find_place(text, question)  # "Ende letzten Jahres in die USA" → "USA"
        if place is not None:
            at = candidate.start + place.start
            return Span("place", at, at + len(place.text), place.text, place.value)
    if kind is not None:
        return Span(kind, candidate.start, candidate.end, text, text)
    return Span("answer", candidate.start, candidate.end, text, text)


class ReadingAnswerer:
    """Answers with the reader model's best span, citing the sentence it stands in.

    >>> ReadingAnswerer()("Who is Porsche's CFO?", evidence).direct      # doctest: +SKIP
    'Lutz Meschke'
    """

    def __init__(
        self,
        settings: ReaderSettings | None = None,
        answer: AnswerSettings | None = None,
        *,
        reader: Reader | None = None,
    ) -> None:
        self.settings = settings or ReaderSettings()
        self.answer_settings = answer or AnswerSettings()
        self.reader = reader or Reader()

    def read(
        self, question: str, evidence: Evidence
    ) -> tuple[list[ScoredSentence], list[Context], list[Reading]]:
        """The model step: rank sentences, cut contexts, read them in one batch."""
        ranked = rank_sentences(question, evidence, self._ranking_settings())
        contexts = contexts_of(ranked, self.settings)
        readings = self.reader.read(
            question,
            [c.text for c in contexts],
            top_n=self.settings.spans,
            max_answer_tokens=self.settings.max_answer_tokens,
        )
        return ranked, contexts, readings

    def _ranking_settings(self) -> AnswerSettings:
        return dataclasses.replace(self.answer_settings, passages=self.settings.passages)

    def __call__(self, question: str, evidence: Evidence) -> Answer:
        settings = self.settings
        retrieval = confidence_of(evidence.ranked)
        lift = abs(settings.margin_weight) * settings.margin_clip
        if retrieval + lift < no_answer_threshold(evidence, settings):
            # Not even the surest reading could lift the confidence over the threshold, so the
            # answer is "not found" whatever the reader says: it is not run (its confidence
            # is then the retrieval's alone).
            return not_found(question, evidence, retrieval)
        return self.decide(question, evidence, *self.read(question, evidence))

    def decide(
        self,
        question: str,
        evidence: Evidence,
        ranked: Sequence[ScoredSentence],
        contexts: Sequence[Context],
        readings: Sequence[Reading],
    ) -> Answer:
        """The answer from what was read (no model call: tuning replays it with new settings)."""
        settings = self.settings
        margin = reader_margin(readings, settings)
        candidates = candidates_of(question, contexts, readings, ranked, settings)
        confidence = confidence_of(evidence.ranked) + settings.margin_weight * margin
        # "How much …?" answered by a span that holds no number at all.
        kind = question_kind(question)
        if candidates and kind == "number" and not holds_number(candidates[0].text):
            confidence -= settings.number_penalty
        if not candidates or confidence < no_answer_threshold(evidence, settings):
            return not_found(question, evidence, confidence)
        best = candidates[0]
        chosen = [best]
        for other in candidates[1:]:
            if other.score < best.score - settings.second_margin:
                break
            if other.sentence.row != best.sentence.row:
                chosen.append(other)
                break
        span = direct_span(question_kind(question), best, question)
        citations = [
            cite(
                number,
                item.sentence.sentence,
                item.passage.passage,
                item.sentence_score,  # the sentence's own score, as without the reader
                span if number == 1 else None,
            )
            for number, item in enumerate(chosen, 1)
        ]
        return found(question, evidence, citations, confidence, span.value)
