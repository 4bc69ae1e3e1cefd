"""Evaluate dense, BM25 and hybrid retrieval with English and German XQuAD questions.

    python scripts/evaluate_xquad.py [--xquad ../shared/data/xquad_de] [--out docs/EVALUATION.md]

Writes the measured table into docs/EVALUATION.md between the markers
``<!-- results -->`` and ``<!-- /results -->`` (the prose around them is kept), and prints it.
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

from qa.config import MODES
from qa.evaluation import EvalReport, calibrate, evaluate_retriever, load_queries, report_markdown
from qa.index.build import build_index
from qa.pipeline import load_index

ROOT = Path(__file__).resolve().parents[1]


def run(xquad: Path, index_dir: Path) -> str:
    started = time.perf_counter()
    build_index(xquad / "docs", index_dir)
    reports: list[EvalReport] = []
    calibrations = {}
    for language in ("en", "de"):
        queries = load_queries(
            xquad / "queries.jsonl",
            question_field=f"question_{language}",
            source_field="doc",
            answer_field="answer_de",
            answer_start_field="answer_start_doc",
        )
        for mode in MODES:
            retriever = load_index(index_dir, mode=mode)
            report = evaluate_retriever(retriever, queries, label=language)
            reports.append(report)
            if mode == "hybrid":
                calibrations[language] = calibrate(report.results)
            print(report_markdown([report]).splitlines()[-1], flush=True)
    lines = [report_markdown(reports), ""]
    for language, c in calibrations.items():
        lines.append(
            f"- Best no-answer threshold, {language} questions (hybrid): **{c.threshold:.4f}** — "
            f"answers {c.answered_rate:.3f} of answerable questions and {c.false_answer_rate:.3f} "
            f"of unanswerable ones; {c.accuracy:.3f} of both kinds decided right."
        )
    lines.append(f"\nMeasured in {time.perf_counter() - started:.0f} s.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared/data/xquad_de")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/EVALUATION.md")
    parser.add_argument("--index", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        table = run(args.xquad, args.index or Path(tmp) / "index")
    text = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    block = f"<!-- results -->\n{table}\n<!-- /results -->"
    if "<!-- results -->" in text:
        text = re.sub(r"<!-- results -->.*?<!-- /results -->", lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
