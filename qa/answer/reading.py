"""The reading answerer: the reader model finds the answer span in the best sentences.

The sentence scorer (:mod:`qa.answer.sentences`) ranks the sentences of the top passages; the
best few, each with its neighbours, are read by the extractive reader together with the
question (one batched model call). Each sentence read is judged by a linear choice score over
the reader's best span inside it and the sentence scorer's view of it (weights fitted on the
XQuAD dev split); the best sentence is the first citation, its best span the direct answer.
Whether the seeds answer at all adds to the retrieval confidence the lead of the chosen
sentence's best span over the reader's no-answer score and the sentence's share of the choice.
"""

from __future__ import annotations

import dataclasses
import math
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
    """A sentence read, the reader's best span inside it, and how it scores as the answer's."""

    sentence: SentenceEvidence
    passage: PassageEvidence
    start: int  # the answer span, in the sentence's text
    end: int
    reader_score: float  # the best reader score (start + end logit) of a span in the sentence
    sentence_score: float  # the sentence scorer's score
    #: How well the span holds the kind of fact asked for (0 to 1; 1 when none is asked for).
    kind_score: float
    #: The reader's lead: ``reader_score`` minus its context's no-answer score.
    lead: float
    score: float  # the choice score (ReaderSettings.choice_*)
    #: The sentence's share of the choice: softmax of the choice scores of every sentence read.
    share: float = 0.0

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


#: The features of a sentence's choice score, each weighted by the ReaderSettings field of
#: the same name.
CHOICE_FEATURES: tuple[str, ...] = (
    "choice_scorer",
    "choice_span",
    "choice_lead",
    "choice_has_span",
    "choice_rank",
    "choice_top",
    "choice_passage_rank",
)


@dataclass(slots=True)
class SentenceRead:
    """What the reader proposed inside one sentence read."""

    sentence: SentenceEvidence
    passage: PassageEvidence
    sentence_score: float  # the sentence scorer's score
    no_answer: float  # of the context the best span was read in
    best: float | None = None  # the best reader score of a span inside the sentence
    answer: tuple[float, int, int, float] | None = None  # (reader + kind bonus, start, end, kind)
    features: tuple[float, ...] = ()  # in the order of CHOICE_FEATURES


def sentence_reads(
    question: str,
    contexts: Sequence[Context],
    readings: Sequence[Reading],
    ranked: Sequence[ScoredSentence],
    settings: ReaderSettings,
) -> list[SentenceRead]:
    """Every sentence read (each once), with its best span and the features of its choice
    score: the sentence scorer's score against the best one's, log(1 + its rank by the scorer),
    whether it is the scorer's first, its passage's rank from 0, whether the reader proposed a
    span inside it, and that span's score against the best span read and against its
    context's no-answer score (0 without a span). Its answer is the span with the best reader
    score plus ``settings.kind_weight`` when it holds the kind of fact asked for."""
    kind = question_kind(question)
    sentence_scores = {item.row: item.score for item in ranked}
    positions = {item.row: i for i, item in enumerate(ranked)}
    floor = min(sentence_scores.values(), default=0.0)
    top = max(sentence_scores.values(), default=0.0)
    best_read = max((span.score for r in readings for span in r.spans), default=0.0)
    reads: dict[int, SentenceRead] = {}
    for context, reading in zip(contexts, readings, strict=True):
        for s in context.sentences:
            score = sentence_scores.get(s.row, floor)
            reads.setdefault(
                s.row, SentenceRead(s, context.passage, score, reading.no_answer_score)
            )
        for span in reading.spans:
            sentence, start, end = context.locate(span.start, span.end)
            if start >= end:
                continue
            entry = reads[sentence.row]
            if entry.best is None or span.score > entry.best:
                entry.best, entry.no_answer = span.score, reading.no_answer_score
            text = sentence.sentence.text[start:end]
            kind_score = 1.0 if kind is None else float(has_kind(kind, text, question))
            key = span.score + settings.kind_weight * kind_score
            if entry.answer is None or key > entry.answer[0]:
                entry.answer = (key, start, end, kind_score)
    for row, entry in reads.items():
        position = positions.get(row, len(ranked))
        has_span = entry.best is not None
        best = entry.best if entry.best is not None else 0.0
        entry.features = (
            entry.sentence_score - top,
            best - best_read if has_span else 0.0,
            best - entry.no_answer if has_span else 0.0,
            float(has_span),
            math.log1p(position),
            float(position == 0),
            float(entry.passage.passage.rank - 1),
        )
    return list(reads.values())


def candidates_of(
    question: str,
    contexts: Sequence[Context],
    readings: Sequence[Reading],
    ranked: Sequence[ScoredSentence],
    settings: ReaderSettings,
) -> list[Candidate]:
    """Every sentence read in which the reader proposed a span, best choice first.

    A sentence's choice score is linear in the features of :func:`sentence_reads`, weighted
    by ``settings.choice_*``; its share is the softmax of the choice scores over every
    sentence read (with a span or not).
    """
    weights = [getattr(settings, name) for name in CHOICE_FEATURES]
    reads = sentence_reads(question, contexts, readings, ranked, settings)
    if not reads:
        return []
    scores = [sum(w * f for w, f in zip(weights, r.features, strict=True)) for r in reads]
    peak = max(scores)
    total = sum(math.exp(score - peak) for score in scores)
    out = []
    for score, entry in zip(scores, reads, strict=True):
        if entry.best is None or entry.answer is None:
            continue
        _, start, end, kind_score = entry.answer
        out.append(
            Candidate(
                sentence=entry.sentence,
                passage=entry.passage,
                start=start,
                end=end,
                reader_score=entry.best,
                sentence_score=entry.sentence_score,
                kind_score=kind_score,
                lead=entry.best - entry.no_answer,
                score=score,
                share=math.exp(score - peak) / total,
            )
        )
    out.sort(key=lambda c: (-c.score, c.sentence.row))
    return out


def confidence_from(retrieval: float, best: Candidate | None, settings: ReaderSettings) -> float:
    """The retrieval confidence moved by how sure the reading is: the lead of the best span in
    the chosen sentence over no answer (clipped to ±``settings.margin_clip``) and the
    sentence's share of the choice."""
    if best is None:
        return retrieval - settings.margin_weight * settings.margin_clip
    lead = max(-settings.margin_clip, min(settings.margin_clip, best.lead))
    return retrieval + settings.margin_weight * lead + settings.certainty_weight * best.share


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
        lift = abs(settings.margin_weight) * settings.margin_clip + abs(settings.certainty_weight)
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
        candidates = candidates_of(question, contexts, readings, ranked, settings)
        best = candidates[0] if candidates else None
        confidence = confidence_from(confidence_of(evidence.ranked), best, settings)
        # "How much …?" answered by a span that holds no number at all.
        kind = question_kind(question)
        if best is not None and kind == "number" and not holds_number(best.text):
            confidence -= settings.number_penalty
        if best is None or confidence < no_answer_threshold(evidence, settings):
            return not_found(question, evidence, confidence)
        chosen = [best]
        if len(candidates) > 1 and candidates[1].score >= best.score - settings.second_margin:
            chosen.append(candidates[1])  # one candidate per sentence: always another sentence
        span = direct_span(kind, best, question)
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
