"""Retrieval stage: dense (FAISS) and BM25 rankings fused by reciprocal rank fusion."""

from __future__ import annotations

import bisect
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from . import persist
from .config import CANDIDATES, DEFAULT_INDEX_DIR, DEFAULT_K, RRF_K
from .embedding import Embedder, get_embedder
from .errors import EmbedderMismatchError, InvalidQueryError
from .lexical import LexicalIndex
from .types import Passage, Sentence

if TYPE_CHECKING:
    from .types import Answer

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DocumentMeta:
    """What the manifest records of one indexed document."""

    source: str
    sha256: str
    date: str | None
    authors: tuple[str, ...]
    language: str


def check_question(question: str, k: int) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidQueryError("The question is empty; type a question about the seeds.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(
            f"The question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}."
        )
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidQueryError(f"k must be a whole number of at least 1, got {k!r}.")
    return question.strip()


class Retriever:
    """Ranked passages (and answers) from one loaded index. Thread-safe for queries.

    >>> retriever = load_index("index")                    # doctest: +SKIP
    >>> retriever.retrieve("When did Porsche meet Apple?")[0].source   # doctest: +SKIP
    '000_2e679b4798c0fccf.txt'
    """

    def __init__(
        self, stored: persist.StoredIndex, embedder: Embedder, *, mode: Mode = "hybrid"
    ) -> None:
        if mode not in MODES:
            raise InvalidQueryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        self._stored = stored
        self.embedder = embedder
        self.mode = mode
        manifest = stored.manifest
        self.documents = {
            d["source"]: DocumentMeta(
                d["source"],
                d["sha256"],
                d.get("date"),
                tuple(d.get("authors", ())),
                d.get("language", "de"),
            )
            for d in manifest["documents"]
        }
        languages = [self.documents[c.source].language for c in stored.chunks]
        self._lexical = LexicalIndex([c.text for c in stored.chunks], languages)
        # Sentences of each source sorted by start, for finding a passage's sentences.
        self._sentence_rows: dict[str, list[int]] = {}
        for i, sentence in enumerate(stored.sentences):
            self._sentence_rows.setdefault(sentence.source, []).append(i)
        self._sentence_starts = {
            source: [stored.sentences[i].start for i in rows]
            for source, rows in self._sentence_rows.items()
        }
        self._sentence_vectors = stored.sentence_store.vectors()

    @property
    def manifest(self) -> dict[str, object]:
        return self._stored.manifest

    @property
    def version(self) -> str:
        return self._stored.version

    @property
    def index_dir(self) -> Path:
        return self._stored.path.parent

    def __len__(self) -> int:
        return len(self._stored.chunks)

    def _dense(self, query_vector: np.ndarray, n: int) -> tuple[list[int], dict[int, float]]:
        scores, ids = self._stored.chunk_store.search(query_vector, n)
        order = [int(i) for i in ids[0] if i >= 0]
        return order, {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0}

    def retrieve(
        self, question: str, k: int = DEFAULT_K, *, exclude_sources: Collection[str] = ()
    ) -> list[Passage]:
        """The ``k`` best passages for the question, best first (``rank`` 1 is the best).

        ``exclude_sources`` leaves those documents out, as if they were not indexed.
        """
        return self._retrieve(check_question(question, k), k, exclude_sources)[0]

    def _retrieve(
        self, question: str, k: int, exclude: Collection[str] = ()
    ) -> tuple[list[Passage], np.ndarray]:
        chunks = self._stored.chunks
        n = len(chunks)
        query_vector = self.embedder.embed_queries([question])
        if n == 0:
            return [], query_vector
        # Excluding documents needs the full ranking, so that k others remain.
        pool = n if exclude else min(n, max(CANDIDATES, k))
        dense_order, dense_scores = self._dense(query_vector, pool)
        if self.mode == "bm25" or self.mode == "hybrid":
            lexical = self._lexical.scores(question)
            lex_order = [
                int(i) for i in np.argsort(-lexical, kind="stable")[:pool] if lexical[i] > 0
            ]
        else:
            lexical = np.zeros(n, dtype=np.float32)
            lex_order = []
        if exclude:
            dense_order = [i for i in dense_order if chunks[i].source not in exclude]
            lex_order = [i for i in lex_order if chunks[i].source not in exclude]
        fused: dict[int, float] = {}
        rankings = {
            "dense": [dense_order],
            "bm25": [lex_order],
            "hybrid": [dense_order, lex_order],
        }[self.mode]
        for ranking in rankings:
            for rank, i in enumerate(ranking, 1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        missing = [i for i in best if i not in dense_scores]
        if missing:  # lexical-only candidates still get their true cosine similarity
            sims = self._stored.chunk_store.vectors_at(missing) @ query_vector[0]
            dense_scores.update({i: float(s) for i, s in zip(missing, sims, strict=True)})
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
                    dense_score=round(dense_scores[i], 6),
                    lexical_score=round(float(lexical[i]), 6),
                    date=meta.date,
                    authors=meta.authors,
                )
            )
        return passages, query_vector

    def sentences_of(self, passage: Passage) -> list[tuple[int, Sentence]]:
        """``(row, sentence)`` for the sentences that overlap the passage."""
        rows = self._sentence_rows.get(passage.source, [])
        starts = self._sentence_starts.get(passage.source, [])
        lo = max(0, bisect.bisect_right(starts, passage.start) - 1)
        hi = bisect.bisect_left(starts, passage.end)
        out = []
        for j in range(lo, hi):
            sentence = self._stored.sentences[rows[j]]
            if sentence.end > passage.start and sentence.start < passage.end:
                out.append((rows[j], sentence))
        return out

    def sentence_vectors(self, rows: list[int]) -> np.ndarray:
        return self._sentence_vectors[rows]

    def answer(
        self, question: str, k: int = DEFAULT_K, *, exclude_sources: Collection[str] = ()
    ) -> Answer:
        """Answer the question from the index, quoting and citing the best sentence(s)."""
        from .answering import compose_answer

        question = check_question(question, k)
        passages, query_vector = self._retrieve(question, k, exclude_sources)
        return compose_answer(self, question, passages, query_vector)


def load_index(
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    embedder: str | Embedder | None = None,
    mode: Mode = "hybrid",
) -> Retriever:
    """Load the live index in ``index_dir`` and return a :class:`Retriever` over it.

    The embedder defaults to the one the index was built with. Asking for another raises
    :class:`EmbedderMismatchError` rather than mixing vectors of two models.
    """
    stored = persist.read_current(Path(index_dir))
    built_with = stored.manifest["embedder"]["name"]
    emb = get_embedder(embedder if embedder is not None else built_with)
    if emb.name != built_with:
        raise EmbedderMismatchError(
            f"The index in {index_dir}/ was built with embedder {built_with!r}, not "
            f"{emb.name!r}; rebuild it with `qa build --embedder {emb.name}` or load it with "
            f"its own embedder."
        )
    dimension = int(stored.manifest["embedder"]["dimension"])
    if emb.dimension != dimension:
        raise EmbedderMismatchError(
            f"Embedder {emb.name!r} makes {emb.dimension}-dimensional vectors but the index in "
            f"{index_dir}/ holds {dimension}-dimensional ones; rebuild the index."
        )
    return Retriever(stored, emb, mode=mode)
