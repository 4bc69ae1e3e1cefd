"""Vector store: exact inner-product search with FAISS (the only module that imports faiss)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from ..errors import IndexCorruptError

_THREADS_LOCK = threading.Lock()


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


class VectorStore:
    """Normalised vectors in a FAISS ``IndexFlatIP``: cosine similarity, exact."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def from_vectors(cls, vectors: npt.NDArray[np.float32], dimension: int) -> VectorStore:
        index = faiss.IndexFlatIP(dimension)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(
                f"Cannot read the FAISS index {path}: {str(exc).splitlines()[0]}. "
                "Run `qa build` to rebuild it from the seeds."
            ) from exc
        return cls(index)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def vectors(self) -> npt.NDArray[np.float32]:
        """All stored vectors, in insertion order (for reuse by incremental builds)."""
        if len(self) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._index.reconstruct_n(0, len(self)), dtype=np.float32)

    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-``k`` ``(scores, ids)`` per query; ids are -1 where fewer than ``k`` exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self))) if len(self) else 1
        with _omp_threads(1 if len(queries) == 1 else 2):
            scores, ids = self._index.search(queries, k)
        return scores, ids
