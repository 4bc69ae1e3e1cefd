"""Fit the reading answerer's settings (qa.config.ReaderSettings) on the XQuAD dev split.

    python scripts/tune_reader.py [--index DIR] [--cache FILE] [--check]

The dev split is every other article (sorted by name, even positions), as for every other
setting. The model reads every dev question once with its own article and once without it
(contexts cut as in ReaderSettings, 20 spans kept per context); everything after that replays
the stored readings (``ReadingAnswerer.decide`` makes no model call):

1. The choice weights (``ReaderSettings.choice_*``): a conditional logit over the sentences
   read for a question (features from ``qa.answer.reading.sentence_reads``), fitted to give
   the sentences that hold the gold answer the most probability (L2 penalty 1, scipy's
   L-BFGS). Printed with the accuracy of a 2-fold split of the dev questions (a question's
   English and German versions in the same fold).
2. The confidence weights: every ``margin_weight`` x ``certainty_weight`` of a small grid
   (``margin_clip`` stays at its default, 20: clips of 3, 10 and 20 were tried on dev),
   each at the no-answer threshold that keeps dev false answers (the question asked without
   its article) at or under 0.05 per language; the best mean strict answer-sentence accuracy
   (first citation holds the answer *and* answered) wins. English questions give the
   cross-language threshold, German the same-language one.

With ``--check`` the chosen settings are also scored on the test half (read once more), which
is how docs/EVALUATION.md reports them; nothing is chosen on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from qa.answer.reader import Reading
from qa.answer.reading import CHOICE_FEATURES, Context, ReadingAnswerer, sentence_reads
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
SPANS = 20  # spans kept per context while tuning (the default keeps as many)
EVAL_K = 10  # passages retrieved per question, as `qa eval` does
FALSE_RATE = 0.05
MARGINS = (0.0, 0.0005, 0.001, 0.0015, 0.002, 0.003)
CERTAINTIES = (0.0, 0.01, 0.02, 0.03, 0.05)
Read = tuple[list[ScoredSentence], list[Context], list[Reading]]  # ranked, contexts, readings


@dataclass
class Case:
    language: str
    query: EvalQuery
    evidence: Evidence  # with the question's own article
    without: Evidence  # without it
    read: Read
    read_without: Read


def split_queries(xquad: Path, language: str, split: str) -> list[EvalQuery]:
    queries = load_queries(
        xquad / "queries.jsonl",
        question_field=f"question_{language}",
        source_field="doc",
        answer_field="answer_de",
        answer_start_field="answer_start_doc",
    )
    return queries if split == "all" else article_split(queries, split)


def read_cases(xquad: Path, index: Path, split: str, settings: ReaderSettings) -> list[Case]:
    """Every question of ``split`` in both languages, read with and without its article."""
    build_index(xquad / "docs", index)
    retriever = load_index(index)
    answerer = ReadingAnswerer(settings)
    cases = []
    for language in ("en", "de"):
        for q in split_queries(xquad, language, split):
            with_own = retriever.evidence(q.question, EVAL_K)
            without = retriever.evidence(q.question, EVAL_K, exclude_sources={q.source})
            cases.append(
                Case(
                    language,
                    q,
                    with_own,
                    without,
                    answerer.read(q.question, with_own),
                    answerer.read(q.question, without),
                )
            )
    return cases


def threshold_for(negatives: np.ndarray, false_rate: float) -> float:
    """The lowest threshold that answers at most ``false_rate`` of the negatives."""
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(false_rate * len(ordered)))
    return float(ordered[allowed]) + 1e-9 if allowed < len(ordered) else -np.inf


def choice_data(
    cases: Sequence[Case], settings: ReaderSettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per question: the features of every sentence read and which of them hold the answer."""
    out = []
    for case in cases:
        ranked, contexts, readings = case.read
        reads = sentence_reads(case.query.question, contexts, readings, ranked, settings)
        answer = case.query.answer.casefold()
        features = np.array([r.features for r in reads], dtype=np.float64)
        holds = np.array(
            [
                r.sentence.sentence.source == case.query.source
                and answer in r.sentence.sentence.text.casefold()
                for r in reads
            ],
            dtype=bool,
        )
        out.append((features.reshape(len(reads), len(CHOICE_FEATURES)), holds))
    return out


def _loss(
    w: np.ndarray, data: Sequence[tuple[np.ndarray, np.ndarray]], l2: float
) -> tuple[float, np.ndarray]:
    """Negative log-likelihood that the chosen sentence holds the answer, and its gradient."""
    total, grad = l2 * float(w @ w), 2 * l2 * w
    for x, holds in data:
        if not holds.any():
            continue
        z = x @ w
        p = np.exp(z - z.max())
        p /= p.sum()
        gold = float(p[holds].sum())
        total -= math.log(gold + 1e-12)
        grad = grad - x.T @ (np.where(holds, p, 0.0) / (gold + 1e-12) - p)
    return total, grad


def fit_choice(data: Sequence[tuple[np.ndarray, np.ndarray]], l2: float = 1.0) -> np.ndarray:
    start = np.zeros(len(CHOICE_FEATURES))
    start[0] = 1.0
    return np.asarray(minimize(_loss, start, args=(data, l2), jac=True, method="L-BFGS-B").x)


def choice_accuracy(w: np.ndarray, data: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(np.mean([bool(h[np.argmax(x @ w)]) if len(h) else False for x, h in data]))


@dataclass
class Scored:
    """One language at one setting: strict and all-questions accuracy, F1, answered, false."""

    threshold: float
    strict: float
    cited: float
    f1: float
    answered: float
    false: float

    def __str__(self) -> str:
        return (
            f"sentence {self.strict:.3f} (all {self.cited:.3f}) F1 {self.f1:.3f} "
            f"answered {self.answered:.3f} false {self.false:.3f} threshold {self.threshold:.4f}"
        )


def score(
    cases: Sequence[Case], settings: ReaderSettings, threshold: float | None = None
) -> Scored:
    """Replay ``settings`` on ``cases`` (one language) at ``threshold`` (default: the one that
    keeps false answers at FALSE_RATE on these cases)."""
    answerer = ReadingAnswerer(
        dataclasses.replace(settings, threshold_cross_language=-1e9, threshold_same_language=-1e9)
    )
    cited, f1s, pos, neg = [], [], [], []
    for case in cases:
        answer = answerer.decide(case.query.question, case.evidence, *case.read)
        without = answerer.decide(case.query.question, case.without, *case.read_without)
        cited.append(cited_correct(case.query, answer))
        f1s.append(f1_score(prediction_of(answer), case.query.answer))
        pos.append(answer.confidence)
        neg.append(without.confidence)
    pos_a, neg_a = np.array(pos), np.array(neg)
    t = threshold_for(neg_a, FALSE_RATE) if threshold is None else threshold
    kept = pos_a >= t
    return Scored(
        threshold=t,
        strict=float(np.mean(np.array(cited) & kept)),
        cited=float(np.mean(cited)),
        f1=float(np.mean(np.array(f1s) * kept)),
        answered=float(kept.mean()),
        false=float((neg_a >= t).mean()),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared/data/xquad_de")
    parser.add_argument("--index", type=Path, default=Path("/tmp/qa-xquad-index"))
    parser.add_argument("--cache", type=Path, help="pickle of the dev readings: written, or read")
    parser.add_argument("--check", action="store_true", help="also score the test half")
    args = parser.parse_args()
    base = ReaderSettings(spans=SPANS)
    # What the readings depend on: a cache made with other contexts or spans is not reused.
    made_with = (base.passages, base.sentences, base.neighbours, base.spans, EVAL_K, "dev")
    dev: list[Case] = []
    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            stored_with, dev = pickle.load(f)
        if stored_with != made_with:
            print(f"{args.cache} was read with {stored_with}, not {made_with}: reading again")
            dev = []
    if not dev:
        dev = read_cases(args.xquad, args.index, "dev", base)
        if args.cache:
            with args.cache.open("wb") as f:
                pickle.dump((made_with, dev), f)
    print(f"{len(dev)} dev questions read", flush=True)

    data = choice_data(dev, base)
    weights = fit_choice(data)
    # 2-fold by question: a question's English and German versions (same article, same gold
    # sentence) fall in the same fold, so none is scored by weights fitted on its translation.
    position = {lang: 0 for lang in ("en", "de")}
    folds = []
    for case in dev:
        folds.append(position[case.language] % 2)
        position[case.language] += 1
    halves = [fit_choice([d for d, f in zip(data, folds, strict=True) if f == k]) for k in (0, 1)]
    for language in ("en", "de"):
        rows = [i for i, c in enumerate(dev) if c.language == language]
        fitted_accuracy = choice_accuracy(weights, [data[i] for i in rows])
        fold = np.mean([choice_accuracy(halves[1 - folds[i]], [data[i]]) for i in rows])
        print(f"choice, {language}: fitted {fitted_accuracy:.3f}, 2-fold {fold:.3f}")
    fitted: dict[str, Any] = {
        name: round(float(w), 3) for name, w in zip(CHOICE_FEATURES, weights, strict=True)
    }
    chosen = dataclasses.replace(base, **fitted)
    print("choice weights:", ", ".join(f"{n}={getattr(chosen, n)}" for n in CHOICE_FEATURES))

    by_language = {lang: [c for c in dev if c.language == lang] for lang in ("en", "de")}
    best: tuple[float, ReaderSettings, dict[str, Scored]] | None = None
    for margin, certainty in itertools.product(MARGINS, CERTAINTIES):
        tried = dataclasses.replace(chosen, margin_weight=margin, certainty_weight=certainty)
        results = {lang: score(rows, tried) for lang, rows in by_language.items()}
        mean = sum(r.strict for r in results.values()) / len(results)
        print(
            f"margin {margin:g} certainty {certainty:g}: mean {mean:.4f} | "
            + " | ".join(f"{lang} {r}" for lang, r in results.items()),
            flush=True,
        )
        if best is None or mean > best[0] + 1e-12:
            best = (mean, tried, results)
    assert best is not None
    _, settings, results = best
    settings = dataclasses.replace(
        settings,
        threshold_cross_language=math.ceil(results["en"].threshold * 1e4) / 1e4,
        threshold_same_language=math.ceil(results["de"].threshold * 1e4) / 1e4,
    )
    print(
        f"chosen: margin_weight={settings.margin_weight} "
        f"certainty_weight={settings.certainty_weight} "
        f"threshold_cross_language={settings.threshold_cross_language} "
        f"threshold_same_language={settings.threshold_same_language}"
    )
    if args.check:
        test = read_cases(args.xquad, args.index, "test", base)
        for language, threshold in (
            ("en", settings.threshold_cross_language),
            ("de", settings.threshold_same_language),
        ):
            questions = [c for c in test if c.language == language]
            print(f"test, {language}: {score(questions, settings, threshold)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
