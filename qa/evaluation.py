"""Evaluation: retrieval recall/MRR, cited-sentence accuracy, answer EM/F1, no-answer
behaviour, latency."""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import string
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import MODES, READERS, Mode, Reader
from .errors import EvaluationError, SettingsError
from .index.build import build_index
from .pipeline import Retriever, load_index
from .types import Answer, Passage

RECALL_AT = (1, 5, 10)


@dataclass(frozen=True, slots=True)
class EvalQuery:
    """One question with its gold answer: ``source`` is relative to the documents folder."""

    question: str
    source: str
    answer: str
    answer_start: int | None = None
    id: str = ""


@dataclass(frozen=True, slots=True)
class EvalResult:
    """How one question fared."""

    query: EvalQuery
    gold_rank: int | None  # rank of the first passage holding the gold answer, within top 10
    cited_correct: bool  # the first cited sentence holds the gold answer
    found: bool
    found_without_source: bool | None  # answered although its own document was left out
    seconds: float
    cited_any_correct: bool = False  # some cited sentence holds the gold answer
    confidence: float = 0.0
    confidence_without_source: float | None = None
    #: What the answer offers as the answer: its direct answer, else its first cited sentence,
    #: "" when not found; scored against the gold answer by SQuAD's EM and F1.
    prediction: str = ""
    exact_match: bool = False
    f1: float = 0.0


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Aggregate figures over a set of questions."""

    label: str
    mode: str
    questions: int
    recall: dict[int, float]
    mrr: float
    answer_sentence_accuracy: float
    any_citation_accuracy: float
    exact_match: float
    f1: float
    answered_rate: float
    false_answer_rate: float | None  # confident answers to questions the documents cannot answer
    latency_p50_ms: float
    latency_p95_ms: float
    reader: str = "none"
    results: tuple[EvalResult, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "mode": self.mode,
            "reader": self.reader,
            "questions": self.questions,
            **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
            "answer_sentence_accuracy": round(self.answer_sentence_accuracy, 4),
            "any_citation_accuracy": round(self.any_citation_accuracy, 4),
            "exact_match": round(self.exact_match, 4),
            "f1": round(self.f1, 4),
            "answered_rate": round(self.answered_rate, 4),
            "false_answer_rate": None
            if self.false_answer_rate is None
            else round(self.false_answer_rate, 4),
            "latency_p50_ms": round(self.latency_p50_ms, 1),
            "latency_p95_ms": round(self.latency_p95_ms, 1),
        }


def load_queries(
    path: str | os.PathLike[str],
    *,
    question_field: str = "question",
    source_field: str = "source",
    answer_field: str = "answer",
    answer_start_field: str = "answer_start",
) -> list[EvalQuery]:
    """Read a JSONL file of questions; field names can be mapped (see the README)."""
    queries = []
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"Cannot read questions file {file}: {exc}.") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            start = row.get(answer_start_field)
            queries.append(
                EvalQuery(
                    question=str(row[question_field]),
                    source=str(row[source_field]),
                    answer=str(row[answer_field]),
                    answer_start=None if start is None else int(start),
                    id=str(row.get("id", number)),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvaluationError(
                f"{file} line {number} is not a question record ({exc!r}); each line must be "
                f"a JSON object with {question_field!r}, {source_field!r} and {answer_field!r}."
            ) from exc
    if not queries:
        raise EvaluationError(f"{file} holds no questions; add one JSON object per line.")
    return queries


def article_split(queries: Sequence[EvalQuery], part: str) -> list[EvalQuery]:
    """The questions of the ``"dev"`` half of the articles (even positions in name order) or of
    the ``"test"`` half (odd positions); settings are chosen on dev and reported on test."""
    if part not in ("dev", "test"):
        raise SettingsError(f"part must be dev or test, got {part!r}.")
    dev = set(sorted({q.source for q in queries})[::2])
    return [q for q in queries if (q.source in dev) == (part == "dev")]


def holds_answer(query: EvalQuery, source: str, start: int, end: int, text: str) -> bool:
    """Whether a span of a file holds the gold answer (by offsets when they are known)."""
    if source != query.source:
        return False
    if query.answer_start is not None:
        return start <= query.answer_start and query.answer_start + len(query.answer) <= end
    return query.answer.casefold() in text.casefold()


def _gold_rank(query: EvalQuery, passages: Sequence[Passage]) -> int | None:
    for passage in passages:
        if holds_answer(query, passage.source, passage.start, passage.end, passage.text):
            return passage.rank
    return None


def cited_correct(query: EvalQuery, answer: Answer, *, first_only: bool = True) -> bool:
    """The first (or any) cited sentence holds the gold answer, in the right file."""
    if not answer.found:
        return False
    citations = answer.citations[:1] if first_only else answer.citations
    return any(
        c.source == query.source and query.answer.casefold() in c.quote.casefold()
        for c in citations
    )


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no punctuation, no English articles, one space.

    >>> normalize_answer("The  Los-Angeles Auto Show.")
    'losangeles auto show'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def f1_score(prediction: str, gold: str) -> float:
    """SQuAD's token F1 of a predicted answer against the gold one (0 for an empty answer)."""
    predicted, reference = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def prediction_of(answer: Answer) -> str:
    """What an answer offers the user as the answer (see ``EvalResult.prediction``)."""
    if not answer.found:
        return ""
    return answer.direct or (answer.citations[0].quote if answer.citations else "")


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate_retriever(
    retriever: Retriever,
    queries: Sequence[EvalQuery],
    *,
    label: str = "",
    unanswerable: bool = True,
    k: int = 10,
    reader: Reader | None = None,
) -> EvalReport:
    """Ask every question; with ``unanswerable``, ask it again without its own document.

    ``reader`` chooses the answerer (default: the retriever's own setting).
    """
    results = []
    for query in queries:
        started = time.perf_counter()
        answer = retriever.answer(query.question, k, reader=reader)
        seconds = time.perf_counter() - started
        without = None
        if unanswerable:
            without = retriever.answer(
                query.question, k, exclude_sources={query.source}, reader=reader
            )
        prediction = prediction_of(answer)
        results.append(
            EvalResult(
                query=query,
                gold_rank=_gold_rank(query, answer.passages),
                cited_correct=cited_correct(query, answer),
                found=answer.found,
                found_without_source=None if without is None else without.found,
                seconds=seconds,
                cited_any_correct=cited_correct(query, answer, first_only=False),
                confidence=answer.confidence,
                confidence_without_source=None if without is None else without.confidence,
                prediction=prediction,
                exact_match=normalize_answer(prediction) == normalize_answer(query.answer),
                f1=f1_score(prediction, query.answer),
            )
        )
    used = reader if reader is not None else retriever.reading.reader
    return summarise(results, label=label, mode=retriever.mode, reader=used)


def summarise(
    results: Sequence[EvalResult], *, label: str, mode: str, reader: str = "none"
) -> EvalReport:
    n = len(results)
    if n == 0:
        raise EvaluationError("No questions to evaluate.")
    ranks = [r.gold_rank for r in results]
    latencies = [r.seconds * 1000 for r in results]
    unanswerable = [r.found_without_source for r in results if r.found_without_source is not None]
    return EvalReport(
        label=label,
        mode=mode,
        questions=n,
        recall={k: sum(1 for x in ranks if x is not None and x <= k) / n for k in RECALL_AT},
        mrr=sum(1.0 / x for x in ranks if x is not None) / n,
        answer_sentence_accuracy=sum(r.cited_correct for r in results) / n,
        any_citation_accuracy=sum(r.cited_any_correct for r in results) / n,
        exact_match=sum(r.exact_match for r in results) / n,
        f1=sum(r.f1 for r in results) / n,
        answered_rate=sum(r.found for r in results) / n,
        false_answer_rate=(sum(unanswerable) / len(unanswerable)) if unanswerable else None,
        latency_p50_ms=statistics.median(latencies),
        latency_p95_ms=_percentile(latencies, 0.95),
        reader=reader,
        results=tuple(results),
    )


def evaluate(
    queries_path: str | os.PathLike[str],
    docs_dir: str | os.PathLike[str],
    *,
    index_dir: str | os.PathLike[str] | None = None,
    mode: Mode = "hybrid",
    reader: Reader | None = None,
    embedder: str | None = None,
    limit: int | None = None,
    unanswerable: bool = True,
    question_field: str = "question",
    source_field: str = "source",
    answer_field: str = "answer",
    answer_start_field: str = "answer_start",
) -> EvalReport:
    """Build (or reuse, when current) an index of ``docs_dir`` and evaluate the questions.

    >>> evaluate("queries.jsonl", "docs").recall[5]          # doctest: +SKIP
    0.99
    """
    if mode not in MODES:
        raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if reader is not None and reader not in READERS:
        raise SettingsError(f"reader must be one of {', '.join(READERS)}, got {reader!r}.")
    queries = load_queries(
        queries_path,
        question_field=question_field,
        source_field=source_field,
        answer_field=answer_field,
        answer_start_field=answer_start_field,
    )[:limit]
    docs = Path(docs_dir)
    index = Path(index_dir) if index_dir is not None else default_eval_index(docs)
    build_index(docs, index, embedder=embedder)  # incremental: embeds nothing when current
    retriever = load_index(index, mode=mode)
    missing = sorted({q.source for q in queries} - set(retriever.documents))
    if missing:
        raise EvaluationError(
            f"{len(missing)} questions name documents that are not in {docs}: "
            f"{', '.join(missing[:5])}; check the source field and the --docs folder."
        )
    return evaluate_retriever(
        retriever,
        queries,
        label=Path(queries_path).name,
        unanswerable=unanswerable,
        reader=reader,
    )


def default_eval_index(docs_dir: Path) -> Path:
    """Where ``qa eval`` keeps the index of a documents folder unless told otherwise."""
    digest = hashlib.sha256(str(docs_dir.resolve()).encode()).hexdigest()[:8]
    return Path(".qa-eval") / f"{docs_dir.resolve().name}-{digest}"


@dataclass(frozen=True, slots=True)
class Calibration:
    """A no-answer threshold and how it splits answerable from unanswerable questions."""

    threshold: float
    answered_rate: float  # answerable questions that stay answered
    false_answer_rate: float  # unanswerable questions (own document removed) still answered
    accuracy: float  # share of both kinds decided right


def calibrate(results: Sequence[EvalResult]) -> Calibration:
    """The confidence threshold that decides the most questions right.

    Each question counts twice: with its document (should be answered) and without it
    (should not). Of equally good thresholds the highest wins: a confident answer from the
    wrong document costs the user more than a missed one. Needs the results of
    ``evaluate_retriever(..., unanswerable=True)``.
    """
    pos = np.array([r.confidence for r in results])
    neg = np.array(
        [r.confidence_without_source for r in results if r.confidence_without_source is not None]
    )
    if not len(pos) or not len(neg):
        raise EvaluationError("Calibration needs results with and without the own document.")
    best: Calibration | None = None
    for t in np.unique(np.concatenate([pos, neg])):
        answered = float((pos >= t).mean())
        false = float((neg >= t).mean())
        accuracy = (answered * len(pos) + (1 - false) * len(neg)) / (len(pos) + len(neg))
        if best is None or accuracy >= best.accuracy:  # ties: the stricter threshold
            best = Calibration(round(float(t), 4), answered, false, accuracy)
    assert best is not None
    return best


def report_markdown(reports: Sequence[EvalReport]) -> str:
    """A Markdown table, one row per report."""
    head = (
        "| questions | mode | reader | n | R@1 | R@5 | R@10 | MRR "
        "| answer-sentence acc. (any cited) | EM | F1 | answered "
        "| false answers (own doc removed) | p50 ms | p95 ms |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in reports:
        false = "—" if r.false_answer_rate is None else f"{r.false_answer_rate:.3f}"
        rows.append(
            f"| {r.label} | {r.mode} | {r.reader} | {r.questions} | {r.recall[1]:.3f} "
            f"| {r.recall[5]:.3f} | {r.recall[10]:.3f} | {r.mrr:.3f} "
            f"| {r.answer_sentence_accuracy:.3f} ({r.any_citation_accuracy:.3f}) "
            f"| {r.exact_match:.3f} | {r.f1:.3f} "
            f"| {r.answered_rate:.3f} | {false} | {r.latency_p50_ms:.0f} "
            f"| {r.latency_p95_ms:.0f} |"
        )
    return head + "\n".join(rows) + "\n"
