"""5,000 one-line seed files against the same lines in one file: whole ``qa.build_index`` runs.

    PYTHONPATH=. python scripts/bench_files.py [--files 5000] [--repeat 1]

Lines: the XQuAD questions (English and German, 2,380 distinct lines), then pool sentences
(German XQuAD and English Python-reference sentences), then pairs of neighbouring pool
sentences, so that every line is different (equal files would share one embedding).
``files``: one line per file; ``one file``: the same lines, one per line, in one file. Each
build runs in a fresh process (the model loads in both), the two alternate; the target is
files ≤ 1.2 × one file. Results: ``$QA_SCALE_DIR/results``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_data as sd

BUILD = """
import json, sys, time
import qa
started = time.perf_counter()
stats = qa.build_index(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - started, "chunks": stats.chunks,
                  "texts": stats.texts_embedded, "documents": stats.documents}))
"""


def lines(n: int) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    questions = sd.questions()
    pool = sd.sentence_pool()
    candidates = [q["question_en"] for q in questions] + [q["question_de"] for q in questions]
    # Then pairs of neighbouring pool sentences, once the single lines run out (4,911 here).
    pairs = [f"{a} {b}" for a, b in zip(pool.texts, pool.texts[1:], strict=False)]
    for text in candidates + pool.texts + pairs:
        text = " ".join(text.split())
        if text and text not in seen:
            seen.add(text)
            out.append(text)
        if len(out) == n:
            return out
    raise SystemExit(f"only {len(out)} distinct lines available")


def build(seeds: Path) -> dict[str, Any]:
    index = seeds.parent / f"index-{seeds.name}"
    shutil.rmtree(index, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(seeds), str(index)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["seconds"] = round(result["seconds"], 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    texts = lines(args.files)
    work = Path(tempfile.mkdtemp(prefix="qa-files-"))
    try:
        many, one = work / "files", work / "one"
        many.mkdir()
        one.mkdir()
        for i, text in enumerate(texts):
            (many / f"line{i:05d}.txt").write_text(text + "\n", encoding="utf-8")
        (one / "lines.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        runs: dict[str, list[dict[str, Any]]] = {"files": [], "one file": []}
        for _ in range(args.repeat):
            for name, folder in (("files", many), ("one file", one)):
                runs[name].append(build(folder))
                print(name, json.dumps(runs[name][-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    summary = {
        "lines": len(texts),
        "characters": sum(len(t) for t in texts),
        "runs": runs,
        "files_vs_one_file": round(best["files"] / best["one file"], 3),
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
    }
    (sd.CACHE / "results").mkdir(parents=True, exist_ok=True)
    (sd.CACHE / "results" / "files.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
