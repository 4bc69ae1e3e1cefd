"""Vector search with FAISS (the only module that imports faiss): exact or inverted-file.

Chunk vectors are searched exactly (``IndexFlatIP``) up to a size threshold and with an
inverted-file index (``IVF<nlist>,Flat``, inner product) above it: the vectors are split into
``nlist`` lists by k-means, and a question scans the ``nprobe`` lists nearest to it. A build
picks ``nprobe`` by measuring recall@10 against exact search (:func:`choose_nprobe`). Both kinds
are read memory-mapped (``IO_FLAG_MMAP_IFC``): opening costs milliseconds and no copy, and the
vectors a question scans are file-backed pages.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from ..errors import IndexCorruptError

logger = logging.getLogger(__name__)

_THREADS_LOCK = threading.Lock()
#: Vectors added to an index per call (bounds the float32 copy made from a memory map).
_ADD_BLOCK = 65_536
#: k-means points per list: FAISS warns below 39; more costs training time for little gain.
_TRAIN_PER_LIST = 40
#: Recall is measured at this depth (the issue's recall@10).
RECALL_AT = 10

Vectors = npt.NDArray[np.float32]


@contextmanager
def _omp_threads(n: int) -> Iterator[None]:
    # One thread is several times faster for single queries on 2 cores (FlatIP over 10k
    # vectors: 1.3 ms with one thread, 16 ms with two, measured on these machines);
    # faiss's thread count is process-global, so changes are serialised.
    with _THREADS_LOCK:
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(n)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(before)


def default_nlist(n: int) -> int:
    """About 4·√n lists, a power of two, at most n / 40 (so each list trains on 40 points)."""
    if n < 2 * _TRAIN_PER_LIST:
        return 1
    wanted = 2 ** round(math.log2(4 * math.sqrt(n)))
    return int(max(1, min(wanted, n // _TRAIN_PER_LIST)))


@dataclass(frozen=True, slots=True)
class Recall:
    """An ``nprobe`` and the recall@10 against exact search it reached."""

    nprobe: int
    recall: float


class ChunkIndex:
    """A FAISS index over L2-normalised vectors: cosine similarity, exact or approximate."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index
        self._ivf: Any = faiss.try_extract_index_ivf(index) if _is_ivf(index) else None

    # --- building ------------------------------------------------------------------------

    @classmethod
    def flat(cls, dimension: int) -> ChunkIndex:
        return cls(faiss.IndexFlatIP(dimension))

    @classmethod
    def ivf(
        cls,
        vectors: Vectors,
        nlist: int,
        *,
        quantizer_from: ChunkIndex | None = None,
        seed: int = 1234,
    ) -> tuple[ChunkIndex, int]:
        """An empty ``IVF<nlist>,Flat`` index, trained on a sample of ``vectors``.

        With ``quantizer_from`` (a previous version's IVF index with the same ``nlist``) its
        centroids are reused and nothing is trained. Returns the index and the number of
        vectors its centroids were trained on (0 when reused).
        """
        dimension = vectors.shape[1]
        if quantizer_from is not None and quantizer_from.nlist == nlist:
            old = quantizer_from._ivf
            centroids = old.quantizer.reconstruct_n(0, nlist)
            quantizer = faiss.IndexFlatIP(dimension)
            quantizer.add(centroids)
            index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            index.is_trained = True
            return cls(index), 0
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        sample_size = min(len(vectors), nlist * _TRAIN_PER_LIST)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(vectors), size=sample_size, replace=False))
        sample = np.ascontiguousarray(vectors[rows], dtype=np.float32)
        index.cp.seed = seed
        with _omp_threads(max(1, faiss.omp_get_max_threads())):
            index.train(sample)
        return cls(index), sample_size

    def add(self, vectors: Vectors) -> None:
        """Append vectors (ids follow insertion order), in blocks."""
        for start in range(0, len(vectors), _ADD_BLOCK):
            block = np.ascontiguousarray(vectors[start : start + _ADD_BLOCK], dtype=np.float32)
            self._index.add(block)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> ChunkIndex:
        """Open an index file memory-mapped, read-only."""
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(
                f"Cannot read the FAISS index {path}: {str(exc).splitlines()[0]}. "
                "Run `qa build` to rebuild it from the seeds."
            ) from exc
        return cls(index)

    # --- facts ---------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return "ivf" if self._ivf is not None else "flat"

    @property
    def nlist(self) -> int:
        return int(self._ivf.nlist) if self._ivf is not None else 0

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    # --- searching -----------------------------------------------------------------------

    def search(
        self, queries: Vectors, k: int, *, nprobe: int = 0
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-``k`` ``(scores, ids)`` per query; ids are -1 where fewer than ``k`` are found.

        ``nprobe`` is how many inverted lists an IVF index scans (ignored by a flat one).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self))) if len(self) else 1
        if self._ivf is None:
            with _omp_threads(1 if len(queries) == 1 else max(1, faiss.omp_get_max_threads())):
                return self._index.search(queries, k)
        params = faiss.SearchParametersIVF()
        params.nprobe = max(1, min(nprobe or 1, self.nlist))
        # A single question scans its nprobe lists on all threads (parallel_mode 1: split
        # the lists): 16.7 → 12.5 ms p50 at 1M passages, nprobe 704, 2 cores. Batches split
        # the questions (mode 0). The lock in _omp_threads also serialises this setting.
        with _omp_threads(max(1, faiss.omp_get_max_threads())):
            self._ivf.parallel_mode = 1 if len(queries) == 1 else 0
            scores, ids = self._index.search(queries, k, params=params)
        return scores, ids


def _is_ivf(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexIVF) or "IVF" in type(index).__name__


def exact_neighbours(vectors: Vectors, queries: Vectors, k: int) -> npt.NDArray[np.int64]:
    """Ids of the exact top-``k`` inner products, per query (brute force, in blocks)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(vectors))
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.full((len(queries), k), -1, np.int64)
    for start in range(0, len(vectors), _ADD_BLOCK * 4):
        block = np.ascontiguousarray(vectors[start : start + _ADD_BLOCK * 4], dtype=np.float32)
        scores, ids = faiss.knn(
            queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT
        )
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_ids, ids + start], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(scores, order, axis=1)
        best_ids = np.take_along_axis(ids, order, axis=1)
    return best_ids


def recall_at(
    index: ChunkIndex, queries: Vectors, truth: npt.NDArray[np.int64], nprobe: int
) -> float:
    """Share of the exact top-k (``truth``) that the index returns at ``nprobe``."""
    k = truth.shape[1]
    _, found = index.search(queries, k, nprobe=nprobe)
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size if truth.size else 1.0


def choose_nprobe(
    index: ChunkIndex, queries: Vectors, truth: npt.NDArray[np.int64], target: float
) -> Recall:
    """The smallest ``nprobe`` (to within ~12 %) whose recall@k reaches ``target``.

    Doubles ``nprobe`` until the target is met, then narrows the last step by bisection.
    """
    nlist = index.nlist
    low, high = 0, 1
    reached = recall_at(index, queries, truth, high)
    while reached < target and high < nlist:
        low, high = high, min(nlist, high * 2)
        reached = recall_at(index, queries, truth, high)
    best = Recall(high, reached)
    while high - low > max(1, high // 8):
        middle = (low + high) // 2
        found = recall_at(index, queries, truth, middle)
        if found >= target:
            high, best = middle, Recall(middle, found)
        else:
            low = middle
    logger.info(
        "nprobe %d of %d lists: recall@%d %.4f", best.nprobe, nlist, truth.shape[1], best.recall
    )
    return best


class FlatSearch:
    """Exact search over vectors held in memory (the sentence vectors of a small index)."""

    def __init__(self, vectors: npt.NDArray[Any]) -> None:
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        for start in range(0, len(vectors), _ADD_BLOCK):
            block = vectors[start : start + _ADD_BLOCK]
            self._index.add(np.ascontiguousarray(block, dtype=np.float32))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: Vectors, k: int) -> npt.NDArray[np.int64]:
        """Ids of the top-``k`` vectors per query (-1 where fewer exist)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self))) if len(self) else 1
        with _omp_threads(1 if len(queries) == 1 else max(1, faiss.omp_get_max_threads())):
            _, ids = self._index.search(queries, k)
        return ids
