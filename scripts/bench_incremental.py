"""Benchmark: full build vs incremental rebuilds over the 48 XQuAD German documents.

``run()`` returns a Markdown section (``## Incremental rebuild``); run directly, it prints it.
The documents are copied to a temporary folder and deleted afterwards (XQuAD is CC BY-SA 4.0,
see ``../shared/data/xquad_de/LICENSE`` and ``ATTRIBUTION.md``; no copy is kept).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from qa import IndexStats, build_index

_DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "shared/data/xquad_de/docs"
DOCS = Path(os.environ.get("QA_XQUAD_DOCS", _DEFAULT_DOCS))
EDITED = "Amazon_rainforest.txt"
DELETED = "1973_oil_crisis.txt"
TARGET_RATIO = 0.10


def _chunks_of(index_dir: Path, source: str) -> int:
    version = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    manifest = json.loads((index_dir / version / "manifest.json").read_text(encoding="utf-8"))
    return next(int(d["chunks"]) for d in manifest["documents"] if d["source"] == source)


def _row(label: str, stats: IndexStats, full_seconds: float) -> str:
    rate = f"{stats.chunks_embedded / stats.seconds:.2f}" if stats.chunks_embedded else "—"
    return (
        f"| {label} | {stats.seconds:.2f} | {100 * stats.seconds / full_seconds:.1f} % "
        f"| {stats.chunks_embedded} | {stats.chunks_reused} | {rate} |"
    )


def run() -> str:
    """Measure the four builds on a temporary copy of the documents; return Markdown."""
    if not DOCS.is_dir():
        raise SystemExit(f"XQuAD documents not found at {DOCS}; set QA_XQUAD_DOCS.")
    with tempfile.TemporaryDirectory(prefix="qa-bench-incremental-") as tmp:
        seeds, index = Path(tmp) / "seeds", Path(tmp) / "index"
        shutil.copytree(DOCS, seeds)
        documents = len(list(seeds.glob("*.txt")))

        full = build_index(seeds, index)

        edited = seeds / EDITED
        text = edited.read_text(encoding="utf-8")
        middle = text.index(". ", len(text) // 2) + 1
        edited.write_text(
            text[:middle] + " Dieser Satz wurde für den Benchmark eingefügt." + text[middle:],
            encoding="utf-8",
        )
        one_edit = build_index(seeds, index)
        edited_chunks = _chunks_of(index, EDITED)

        (seeds / DELETED).unlink()
        one_delete = build_index(seeds, index)

        unchanged = build_index(seeds, index)

    checks = {
        "one edit re-embeds only that document's chunks": one_edit.chunks_embedded == edited_chunks
        and one_edit.documents_changed == 1,
        f"one edit takes ≤ {TARGET_RATIO:.0%} of the full build": one_edit.seconds
        <= TARGET_RATIO * full.seconds,
        "a deletion embeds nothing": one_delete.chunks_embedded == 0,
        "nothing changed embeds nothing": unchanged.chunks_embedded == 0,
    }
    lines = [
        "## Incremental rebuild",
        "",
        f"{documents} XQuAD German documents ({full.chunks} chunks), default embedder "
        f"{full.embedder}, measured in one process on {platform.machine()} with "
        f"{os.cpu_count()} cores (shared, so absolute times are noisy; compare the ratios). "
        "Each build embeds a document's chunks and its sentences; chunks/s counts embedded "
        "chunks per second of the whole build (scan, embed, write, publish).",
        "",
        "| build | seconds | of full build | chunks embedded | chunks reused | chunks/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        _row(f"full (no index yet, {full.documents} documents)", full, full.seconds),
        _row(f"one document edited ({EDITED}, {edited_chunks} chunks)", one_edit, full.seconds),
        _row(f"one document deleted ({DELETED})", one_delete, full.seconds),
        _row("nothing changed (no new version written)", unchanged, full.seconds),
        "",
        *(f"- {'✅' if ok else '❌'} {name}" for name, ok in checks.items()),
        "",
        "Reproduce: `.venv/bin/python scripts/bench_incremental.py`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
