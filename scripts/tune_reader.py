"""Choose the reading answerer's settings (qa.config.ReaderSettings) on the XQuAD dev split.

    python scripts/tune_reader.py [--index DIR] [--sample N] [--split dev|test|all]

The dev split is every other article (sorted by name, even positions), as for every other
setting. For each way of cutting the reader's contexts (sentences read, neighbours, passages)
the model reads each question once, with and without its own article; the scoring weights
and no-answer thresholds are then replayed on the stored readings (``ReadingAnswerer.decide``
makes no model call). Prints one line per setting: answer-sentence accuracy and F1 at the
threshold that keeps false answers at or under 0.05, the answered rate, and the read time.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import pickle
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer.reader import Reading
from qa.answer.reading import Context, ReadingAnswerer
from qa.answer.sentences import ScoredSentence
from qa.config import ReaderSettings
from qa.evaluation import (
    EvalQuery,
    article_split,
    cited_correct,
    f1_score,
    load_queries,
    prediction_of,
)
from qa.index.build import build_index
from qa.pipeline import load_index
from qa.search.evidence import Evidence

ROOT = Path(__file__).resolve().parents[1]
Key = tuple[int, int, int]  # passages, sentences, neighbours read
Read = tuple[list[ScoredSentence], list[Context], list[Reading]]  # ranked, contexts, readings


@dataclass
class Case:
    language: str
    query: EvalQuery
    evidence: Evidence
    without: Evidence
    reads: dict[Key, tuple[Read, Read, float]] = dataclasses.field(default_factory=dict)


def split_queries(xquad: Path, language: str, split: str) -> list[EvalQuery]:
    queries = load_queries(
        xquad / "queries.jsonl",
        question_field=f"question_{language}",
        source_field="doc",
        answer_field="answer_de",
        answer_start_field="answer_start_doc",
    )
    return queries if split == "all" else article_split(queries, split)


def threshold_for(negatives: np.ndarray, false_rate: float) -> float:
    """The lowest threshold that answers at most ``false_rate`` of the negatives."""
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(false_rate * len(ordered)))
    return float(ordered[allowed]) + 1e-9 if allowed < len(ordered) else -np.inf


def score(cases: Sequence[Case], key: Key, settings: ReaderSettings) -> str:
    open_settings = dataclasses.replace(
        settings, threshold_cross_language=-1e9, threshold_same_language=-1e9
    )
    answerer = ReadingAnswerer(open_settings)
    parts = []
    for language in ("en", "de"):
        rows = [c for c in cases if c.language == language]
        if not rows:
            continue
        correct, f1s, pos, neg, seconds = [], [], [], [], []
        for case in rows:
            read, read_without, took = case.reads[key]
            answer = answerer.decide(case.query.question, case.evidence, *read)
            without = answerer.decide(case.query.question, case.without, *read_without)
            correct.append(cited_correct(case.query, answer))
            f1s.append(f1_score(prediction_of(answer), case.query.answer))
            pos.append(answer.confidence)
            neg.append(without.confidence)
            seconds.append(took)
        pos_a, neg_a = np.array(pos), np.array(neg)
        t = threshold_for(neg_a, 0.05)
        kept = pos_a >= t
        parts.append(
            f"{language}: sent {np.mean(np.array(correct) & kept):.3f} "
            f"(all {np.mean(correct):.3f}) F1 {np.mean(np.array(f1s) * kept):.3f} "
            f"answered {kept.mean():.3f} false {(neg_a >= t).mean():.3f} t={t:.3f} "
            f"read p50 {1000 * statistics.median(seconds):.0f} ms"
        )
    return " | ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared/data/xquad_de")
    parser.add_argument("--index", type=Path, default=Path("/tmp/qa-xquad-index"))
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--sample", type=int, default=0, help="questions per language (0: all)")
    parser.add_argument("--contexts", default="3:4:1", help="passages:sentences:neighbours,…")
    parser.add_argument("--weights", default="0,2,4,8,16", help="sentence weights to try")
    parser.add_argument("--margins", default="0,0.003,0.01", help="margin weights to try")
    parser.add_argument("--kinds", default="0,1,2", help="kind weights to try")
    parser.add_argument("--penalties", default="0,0.03,0.1", help="kind penalties to try")
    parser.add_argument("--cache", type=Path, help="pickle of the readings: written, or replayed")
    args = parser.parse_args()
    keys: list[Key] = []
    for spec in args.contexts.split(","):
        passages, sentences, neighbours = (int(x) for x in spec.split(":"))
        keys.append((passages, sentences, neighbours))
    grid = [
        {"sentence_weight": w, "margin_weight": m, "kind_weight": k, "number_penalty": p}
        for w, m, k, p in itertools.product(
            *(
                [float(x) for x in values.split(",")]
                for values in (args.weights, args.margins, args.kinds, args.penalties)
            )
        )
    ]
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            stored: list[Case] = pickle.load(f)
        for key in keys:
            for values in grid:
                settings = _tried(_reading(key), values)
                print(f"{key} {_named(values)}: {score(stored, key, settings)}", flush=True)
        return 0

    build_index(args.xquad / "docs", args.index)
    retriever = load_index(args.index)
    cases: list[Case] = []
    for language in ("en", "de"):
        queries = split_queries(args.xquad, language, args.split)
        if args.sample:
            queries = random.Random(7).sample(queries, min(args.sample, len(queries)))
        for q in queries:
            cases.append(
                Case(
                    language,
                    q,
                    retriever.evidence(q.question, 5),
                    retriever.evidence(q.question, 5, exclude_sources={q.source}),
                )
            )
    print(f"{len(cases)} questions", flush=True)
    for key in keys:
        reading = _reading(key)
        answerer = ReadingAnswerer(reading)
        started = time.perf_counter()
        for case in cases:
            t0 = time.perf_counter()
            read = answerer.read(case.query.question, case.evidence)
            took = time.perf_counter() - t0
            case.reads[key] = (read, answerer.read(case.query.question, case.without), took)
        print(f"read {key} in {time.perf_counter() - started:.0f} s", flush=True)
        for values in grid:
            settings = _tried(reading, values)
            print(f"{key} {_named(values)}: {score(cases, key, settings)}", flush=True)
    if args.cache:
        with args.cache.open("wb") as f:
            pickle.dump(cases, f)
    return 0


def _named(values: dict[str, float]) -> str:
    return " ".join(
        f"{name.split('_')[0][0]}{name.split('_')[1][0]}={v:g}" for name, v in values.items()
    )


def _tried(reading: ReaderSettings, values: dict[str, float]) -> ReaderSettings:
    return dataclasses.replace(
        reading,
        sentence_weight=values["sentence_weight"],
        margin_weight=values["margin_weight"],
        kind_weight=values["kind_weight"],
        number_penalty=values["number_penalty"],
    )


def _reading(key: Key) -> ReaderSettings:
    passages, sentences, neighbours = key
    return ReaderSettings(passages=passages, sentences=sentences, neighbours=neighbours)


if __name__ == "__main__":
    sys.exit(main())
