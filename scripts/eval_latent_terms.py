"""XQuAD figures of the default index with other latent-term row sizes (or the defaults).

    python scripts/eval_latent_terms.py [--chunk-terms N] [--sentence-terms N] [--out FILE]

Runs exactly what ``scripts/evaluate_xquad.py`` runs (build, then dense/BM25/hybrid with
English and German questions) with ``qa.config.LATENT_CHUNK_TERMS`` and
``LATENT_SENTENCE_TERMS`` set as given, and writes the table to ``--out`` (not to
docs/EVALUATION.md). docs/BENCHMARKS.md ("Scale") compares the runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate_xquad

import qa.config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--xquad", type=Path, default=evaluate_xquad.ROOT.parent / "shared/data/xquad_de"
    )
    parser.add_argument("--chunk-terms", type=int, default=qa.config.LATENT_CHUNK_TERMS)
    parser.add_argument("--sentence-terms", type=int, default=qa.config.LATENT_SENTENCE_TERMS)
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    qa.config.LATENT_CHUNK_TERMS = args.chunk_terms  # type: ignore[misc]
    qa.config.LATENT_SENTENCE_TERMS = args.sentence_terms  # type: ignore[misc]
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        table = evaluate_xquad.run(args.xquad, args.index or Path(tmp) / "index")
    heading = (
        f"latent terms per chunk row {args.chunk_terms}, per sentence row {args.sentence_terms}"
    )
    args.out.write_text(f"{heading}\n\n{table}\n", encoding="utf-8")
    print(heading)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
