"""Measure what the reader model costs: answer latency with and without it, and memory.

    python scripts/bench_reader.py [--index DIR] [--questions N] [--browser]

Builds (or reuses) an index of the XQuAD articles, asks N questions (half English, half
German) warm, each three ways — ``retrieve``, ``answer(reader="none")`` and ``answer()`` with
the reader — and measures a process's resident memory before and after the reader is loaded.
Writes the section between ``<!-- reader -->`` and ``<!-- /reader -->`` in docs/BENCHMARKS.md.
With ``--browser`` it also times Enter → first streamed text and → full answer in the chat
(scripts/bench_browser.py), where the first text is the "Reading…" note.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import XQUAD, _clear_query_caches, _pct, _questions, reader_memory

import qa

ROOT = Path(__file__).resolve().parents[1]


def latency(index_dir: Path, n: int) -> str:
    qa.build_index(XQUAD / "docs", index_dir)
    retriever = qa.load_index(index_dir)
    questions = _questions(n)
    retriever.answer(questions[0])  # loads the reader
    retriever.answer(questions[0], reader="none")
    times: dict[str, list[float]] = {"retrieve": [], "none": [], "onnx": []}
    for q in questions:
        for name in times:
            _clear_query_caches(retriever)
            started = time.perf_counter()
            if name == "retrieve":
                retriever.retrieve(q, 5)
            else:
                retriever.answer(q, 5, reader="none" if name == "none" else "onnx")
            times[name].append((time.perf_counter() - started) * 1000)
    load = os.getloadavg()[0]

    def row(label: str, values: list[float]) -> str:
        return f"| {label} | {statistics.median(values):.0f} | {_pct(values, 0.95):.0f} |"

    reading = [a - b for a, b in zip(times["onnx"], times["none"], strict=True)]
    return "\n".join(
        [
            f"{len(questions)} XQuAD questions ({len(questions) // 2} English, the rest German), "
            f"k = 5, warm, each embedded afresh; load average {load:.1f} at the end.",
            "",
            "| call | p50 ms | p95 ms |",
            "| --- | ---: | ---: |",
            row("`retrieve()` (never runs the reader)", times["retrieve"]),
            row('`answer(reader="none")`', times["none"]),
            row("`answer()` with the reader model (default)", times["onnx"]),
            row("the reader's share (difference per question)", reading),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-bench-reader-") as tmp:
        table = latency(args.index or Path(tmp) / "index", args.questions)
    sections = ["## Reader model: latency and memory", "", table, "", reader_memory()]
    if args.browser:
        import bench_browser

        sections += ["", bench_browser.run()]
    block = "<!-- reader -->\n" + "\n".join(sections).strip() + "\n<!-- /reader -->"
    text = args.out.read_text(encoding="utf-8")
    if "<!-- reader -->" in text:
        text = re.sub(r"<!-- reader -->.*?<!-- /reader -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
