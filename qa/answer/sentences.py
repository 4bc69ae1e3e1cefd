"""The sentence answerer: score the retrieved sentences against the question, cite the best.

It reads no model: a sentence's score mixes its vector similarity to the question with its
passage's score and rank, whether it can hold the asked kind of fact, question-word overlap and
the latent-term match (weights in :class:`qa.config.AnswerSettings`, tuned on the XQuAD dev
split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import AnswerSettings
from ..search.evidence import Evidence, PassageEvidence, SentenceEvidence
from ..search.lexical import tokenize
from ..types import Answer, Passage
from .compose import asked_span, cite, found, not_found
from .spans import has_kind, question_kind


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    evidence: SentenceEvidence
    passage: PassageEvidence
    score: float

    @property
    def row(self) -> int:
        return self.evidence.row


def rank_sentences(
    question: str, evidence: Evidence, settings: AnswerSettings
) -> list[ScoredSentence]:
    """Sentences of the top ``settings.passages`` passages, best first."""
    kind = question_kind(question)
    q_tokens = set(tokenize(question, ("de", "en")))
    seen: set[int] = set()
    candidates: list[tuple[SentenceEvidence, PassageEvidence]] = []
    for passage in evidence.passages[: settings.passages]:
        for sentence in passage.sentences:
            if sentence.row not in seen:  # overlapping chunks share sentences: keep the better
                candidates.append((sentence, passage))
                seen.add(sentence.row)
    if not candidates:
        return []
    latent = np.array([s.latent for s, _ in candidates], np.float32)
    latent = latent / latent.max() if latent.max() > 0 else latent
    scored = []
    for (sentence, passage), lat in zip(candidates, latent, strict=True):
        p = passage.passage
        s_tokens = set(tokenize(sentence.sentence.text, (passage.language,)))
        overlap = len(q_tokens & s_tokens) / len(q_tokens) if q_tokens else 0.0
        score = (
            sentence.similarity
            + settings.passage * (p.dense_score + p.sentence_score)
            - settings.rank * (p.rank - 1)
            + settings.kind * has_kind(kind, sentence.sentence.text, question)
            + settings.overlap * overlap
            + settings.latent * float(lat)
        )
        scored.append(ScoredSentence(sentence, passage, score))
    scored.sort(key=lambda s: (-s.score, s.row))
    return scored


def confidence_of(passages: tuple[Passage, ...]) -> float:
    """How well the best passage matches: the mean of its own and its best sentence's cosine."""
    return max(((p.dense_score + p.sentence_score) / 2 for p in passages), default=0.0)


class Thresholds(Protocol):
    """Settings that hold the two no-answer thresholds (AnswerSettings, ReaderSettings)."""

    @property
    def threshold_same_language(self) -> float: ...

    @property
    def threshold_cross_language(self) -> float: ...


def no_answer_threshold(evidence: Evidence, settings: Thresholds) -> float:
    """The threshold that applies: same-language when the best passage is in the question's."""
    if evidence.passages and evidence.passages[0].language == evidence.language:
        return settings.threshold_same_language
    return settings.threshold_cross_language


class SentenceAnswerer:
    """Answers by quoting the best-scored sentence (and a second one when it is as good).

    >>> SentenceAnswerer()("When did Porsche meet Apple?", evidence).direct  # doctest: +SKIP
    'November 2021'
    """

    def __init__(self, settings: AnswerSettings | None = None) -> None:
        self.settings = settings or AnswerSettings()

    def __call__(self, question: str, evidence: Evidence) -> Answer:
        settings = self.settings
        confidence = confidence_of(evidence.ranked)
        ranked = rank_sentences(question, evidence, settings)
        if not ranked or confidence < no_answer_threshold(evidence, settings):
            return not_found(question, evidence, confidence)
        chosen = [ranked[0]]
        if len(ranked) > 1 and ranked[1].score >= ranked[0].score - settings.second_margin:
            chosen.append(ranked[1])
        kind = question_kind(question)
        first = chosen[0]
        span = asked_span(
            kind, question, first.evidence.sentence, first.passage.passage, first.passage.language
        )
        citations = [
            cite(
                number,
                item.evidence.sentence,
                item.passage.passage,
                item.score,
                span if number == 1 else None,
            )
            for number, item in enumerate(chosen, 1)
        ]
        direct = citations[0].span.value if citations[0].span else None
        return found(question, evidence, citations, confidence, direct)
