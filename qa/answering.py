"""Answering stage: pick the sentence(s) that answer the question, mark the span, cite them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .lexical import tokenize
from .spans import find_span, has_kind, question_kind
from .types import Answer, Citation, Passage, Sentence

if TYPE_CHECKING:
    from .retrieval import Ranking, Retriever

#: Below this confidence (see ``confidence_of``) the seeds are taken not to answer. Questions
#: asked across languages score systematically lower than same-language ones, so each case has
#: its own threshold, calibrated by `qa eval` on XQuAD: English questions on German articles
#: for the first, German questions for the second (see docs/EVALUATION.md).
NO_ANSWER_THRESHOLD_CROSS_LANGUAGE = 0.7958
NO_ANSWER_THRESHOLD_SAME_LANGUAGE = 0.8393

NOT_FOUND = {
    "en": "The seeds do not answer this question.",
    "de": "Die Seeds beantworten diese Frage nicht.",
}


@dataclass(frozen=True, slots=True)
class SentenceWeights:
    """How candidate sentences are scored; tuned on half of XQuAD's articles (dev split)."""

    passages: int = 3  # sentences are drawn from this many top passages
    passage: float = 0.5  # weight of the passage's dense score (passage + best sentence cosine)
    rank: float = 0.01  # penalty per passage rank below the first
    kind: float = 0.05  # bonus when the sentence can hold the asked kind (date, number…), 0–1
    overlap: float = 0.1  # weight of the share of question words found in the sentence
    latent: float = 0.2  # weight of the latent-term match, relative to the best candidate's
    second_margin: float = 0.01  # cite a second sentence when it scores this close to the best


DEFAULT_WEIGHTS = SentenceWeights()


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    row: int
    sentence: Sentence
    passage: Passage
    score: float


def rank_sentences(
    retriever: Retriever,
    question: str,
    passages: list[Passage],
    query_vector: np.ndarray,
    weights: SentenceWeights = DEFAULT_WEIGHTS,
    latent_vector: np.ndarray | None = None,
) -> list[ScoredSentence]:
    """Sentences of the top passages, best first, scored against the question."""
    kind = question_kind(question)
    q_tokens = set(tokenize(question, ("de", "en")))
    seen: set[int] = set()
    candidates: list[tuple[int, Sentence, Passage]] = []
    for passage in passages[: weights.passages]:
        for row, sentence in retriever.sentences_of(passage):
            if row not in seen:  # overlapping chunks share sentences: keep the better passage
                candidates.append((row, sentence, passage))
                seen.add(row)
    if not candidates:
        return []
    rows = [row for row, _, _ in candidates]
    sims = retriever.sentence_vectors(rows) @ query_vector[0]
    latent = retriever.sentence_latent_scores(rows, latent_vector)
    latent = latent / latent.max() if latent.max() > 0 else latent
    scored = []
    for (row, sentence, passage), sim, lat in zip(candidates, sims, latent, strict=True):
        language = retriever.documents[sentence.source].language
        s_tokens = set(tokenize(sentence.text, (language,)))
        overlap = len(q_tokens & s_tokens) / len(q_tokens) if q_tokens else 0.0
        score = (
            float(sim)
            + weights.passage * (passage.dense_score + passage.sentence_score)
            - weights.rank * (passage.rank - 1)
            + weights.kind * has_kind(kind, sentence.text, question)
            + weights.overlap * overlap
            + weights.latent * float(lat)
        )
        scored.append(ScoredSentence(row, sentence, passage, score))
    scored.sort(key=lambda s: (-s.score, s.row))
    return scored


def _quote(text: str) -> str:
    return '"' + " ".join(text.split()) + '"'


def confidence_of(passages: list[Passage]) -> float:
    """How well the best passage matches: the mean of its own and its best sentence's cosine."""
    return max(((p.dense_score + p.sentence_score) / 2 for p in passages), default=0.0)


def no_answer_threshold(retriever: Retriever, passages: list[Passage], language: str) -> float:
    """The threshold that applies: same-language when the best passage is in the question's."""
    if passages and retriever.documents[passages[0].source].language == language:
        return NO_ANSWER_THRESHOLD_SAME_LANGUAGE
    return NO_ANSWER_THRESHOLD_CROSS_LANGUAGE


def compose_answer(
    retriever: Retriever,
    question: str,
    ranking: Ranking,
    *,
    weights: SentenceWeights = DEFAULT_WEIGHTS,
    threshold: float | None = None,
) -> Answer:
    """Build the :class:`Answer`: the best sentence(s) quoted with ``[n]`` markers."""
    language = ranking.language
    passages = ranking.passages
    confidence = confidence_of(passages)
    if threshold is None:
        threshold = no_answer_threshold(retriever, passages, language)
    ranked = rank_sentences(
        retriever, question, passages, ranking.query_vector, weights, ranking.latent_vector
    )
    if not ranked or confidence < threshold:
        return Answer(
            question=question,
            text=NOT_FOUND[language],
            found=False,
            citations=(),
            passages=tuple(passages),
            confidence=round(confidence, 6),
        )
    chosen = [ranked[0]]
    if len(ranked) > 1 and ranked[1].score >= ranked[0].score - weights.second_margin:
        chosen.append(ranked[1])
    kind = question_kind(question)
    citations = []
    for number, item in enumerate(chosen, 1):
        meta = retriever.documents[item.sentence.source]
        span = (
            find_span(
                kind, item.sentence.text, question, language=meta.language, document_date=meta.date
            )
            if number == 1
            else None
        )
        if span is not None:  # offsets of the span in the file, not in the sentence
            span = type(span)(
                span.kind,
                item.sentence.start + span.start,
                item.sentence.start + span.end,
                span.text,
                span.value,
            )
        citations.append(
            Citation(
                number=number,
                source=item.sentence.source,
                start=item.sentence.start,
                end=item.sentence.end,
                quote=item.sentence.text,
                passage_rank=item.passage.rank,
                score=round(item.score, 6),
                span=span,
            )
        )
    direct = citations[0].span.value if citations[0].span else None
    body = " ".join(f"{_quote(c.quote)} [{c.number}]" for c in citations)
    text = f"{direct} — {body}" if direct else body
    return Answer(
        question=question,
        text=text,
        found=True,
        citations=tuple(citations),
        passages=tuple(passages),
        direct=direct,
        confidence=round(confidence, 6),
    )
