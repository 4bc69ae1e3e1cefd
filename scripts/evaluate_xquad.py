"""Evaluate retrieval and answering with English and German XQuAD questions.

    python scripts/evaluate_xquad.py [--xquad ../shared/data/xquad_de] [--out docs/EVALUATION.md]
        [--only modes|readers]

Two tables, each written into docs/EVALUATION.md between its markers (the prose around them is
kept) and printed: dense, BM25 and hybrid retrieval over all 1190 questions answered without
the reader (``<!-- results -->``), and the hybrid default answered with the reader model and
without it on the test half of the articles (``<!-- reader-results -->``; the reader's settings
were chosen on the dev half by scripts/tune_reader.py).
Each row equals one `qa eval` run, e.g. for English questions with the default (hybrid):

    qa eval ../shared/data/xquad_de/queries.jsonl --docs ../shared/data/xquad_de/docs \\
        --question-field question_en --source-field doc \\
        --answer-field answer_de --answer-start-field answer_start_doc
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from qa.config import MODES, READERS
from qa.evaluation import (
    Calibration,
    EvalQuery,
    EvalReport,
    article_split,
    calibrate,
    evaluate_retriever,
    load_queries,
    report_markdown,
)
from qa.index.build import build_index
from qa.pipeline import load_index

ROOT = Path(__file__).resolve().parents[1]


def questions(xquad: Path, language: str) -> list[EvalQuery]:
    return load_queries(
        xquad / "queries.jsonl",
        question_field=f"question_{language}",
        source_field="doc",
        answer_field="answer_de",
        answer_start_field="answer_start_doc",
    )


def run_modes(xquad: Path, index_dir: Path) -> str:
    """Every retrieval mode over all questions, answered without the reader."""
    started = time.perf_counter()
    reports: list[EvalReport] = []
    calibrations = {}
    for language in ("en", "de"):
        for mode in MODES:
            retriever = load_index(index_dir, mode=mode, reader="none")
            report = evaluate_retriever(retriever, questions(xquad, language), label=language)
            reports.append(report)
            if mode == "hybrid":
                calibrations[language] = calibrate(report.results)
            print(report_markdown([report]).splitlines()[-1], flush=True)
    return _table(reports, calibrations, "hybrid, reader none", time.perf_counter() - started)


def run_readers(xquad: Path, index_dir: Path) -> str:
    """The hybrid default with and without the reader, on the test half of the articles."""
    started = time.perf_counter()
    reports: list[EvalReport] = []
    calibrations = {}
    retriever = load_index(index_dir)
    for language in ("en", "de"):
        test = article_split(questions(xquad, language), "test")
        for reader in READERS:
            report = evaluate_retriever(retriever, test, label=f"{language} (test)", reader=reader)
            reports.append(report)
            calibrations[f"{language}, reader {reader}"] = calibrate(report.results)
            print(report_markdown([report]).splitlines()[-1], flush=True)
    return _table(reports, calibrations, "hybrid", time.perf_counter() - started)


def _table(
    reports: list[EvalReport], calibrations: dict[str, Calibration], what: str, seconds: float
) -> str:
    lines = [report_markdown(reports), ""]
    for name, c in calibrations.items():
        lines.append(
            f"- Best no-answer threshold, {name} questions ({what}): **{c.threshold:.4f}** — "
            f"answers {c.answered_rate:.3f} of answerable questions and {c.false_answer_rate:.3f} "
            f"of unanswerable ones; {c.accuracy:.3f} of both kinds decided right."
        )
    lines.append(f"\nMeasured in {seconds:.0f} s.")
    return "\n".join(lines)


def write_block(out: Path, marker: str, table: str) -> None:
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    block = f"<!-- {marker} -->\n{table}\n<!-- /{marker} -->"
    if f"<!-- {marker} -->" in text:
        text = re.sub(rf"<!-- {marker} -->.*?<!-- /{marker} -->", lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared/data/xquad_de")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/EVALUATION.md")
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--only", choices=("modes", "readers"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        index_dir = args.index or Path(tmp) / "index"
        build_index(args.xquad / "docs", index_dir)
        if args.only in (None, "modes"):
            table = run_modes(args.xquad, index_dir)
            write_block(args.out, "results", table)
            print(table)
        if args.only in (None, "readers"):
            table = run_readers(args.xquad, index_dir)
            write_block(args.out, "reader-results", table)
            print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
