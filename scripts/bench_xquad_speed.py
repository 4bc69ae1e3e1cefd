"""Build time and warm query latency at XQuAD scale, for comparing two versions of the code.

    PYTHONPATH=<checkout> python scripts/bench_xquad_speed.py /tmp/index-dir [--xquad DIR]

Builds the 48 XQuAD articles into the given folder (deleted first) with the code on
``PYTHONPATH``, then asks 200 questions (every sixth, the first 100 in English, the rest in
German), each embedded afresh after five warm-up questions, and prints one JSON line: build
seconds, ``retrieve`` and ``answer(reader="none")`` p50 / p95 in ms. Run it for each checkout
on the same quiet machine and compare (docs/EVALUATION.md, "Like for like").
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import qa

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared/data/xquad_de")
    args = parser.parse_args()
    shutil.rmtree(args.index, ignore_errors=True)
    started = time.perf_counter()
    qa.build_index(args.xquad / "docs", args.index)
    result: dict[str, object] = {"build_s": round(time.perf_counter() - started, 1)}
    rows = [json.loads(line) for line in (args.xquad / "queries.jsonl").read_text().splitlines()]
    picked = rows[:: len(rows) // 200][:200]
    questions = [r["question_en"] for r in picked[:100]] + [r["question_de"] for r in picked[100:]]
    retriever = qa.load_index(args.index)
    for question in questions[:5]:
        retriever.retrieve(question)
        retriever.answer(question, reader="none")
    calls: dict[str, Callable[[str], object]] = {
        "retrieve": lambda q: retriever.retrieve(q, 5),
        "answer_none": lambda q: retriever.answer(q, reader="none"),
    }
    searcher = retriever._searcher
    for name, call in calls.items():
        ms = []
        for question in questions:
            searcher._embed_query.cache_clear()
            searcher._embed_latent.cache_clear()
            started = time.perf_counter()
            call(question)
            ms.append((time.perf_counter() - started) * 1000)
        result[name] = {"p50": round(pct(ms, 0.5), 1), "p95": round(pct(ms, 0.95), 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
