"""Write a version's arrays document by document, in bounded memory (see ``persist``'s layout).

A build hands the writer each document's rows in index order — embedded just now or taken
from the previous version's memory-mapped files — and the writer appends them to the files
of the new version: texts, records with byte offsets, float32 chunk and float16 sentence
vectors, compact latent-term rows (chunk rows max-pooled from their sentences here), and the
chunks' BM25 tokens. Nothing holds the whole index in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..embed.latent import LatentVectors
from . import persist
from .arrays import AppendArray
from .lexical import Bm25Builder
from .manifest import LatentTermsRecord


@dataclass(frozen=True, eq=False)
class DocumentRows:
    """One document's records and vectors, ready to be written into a version."""

    #: The document's whole text (offsets below index into it).
    text: str
    language: str
    #: ``(n, 2)`` start and end of each chunk, in text order.
    chunks: npt.NDArray[np.int64]
    #: ``(m, 2)`` start and end of each sentence, in text order.
    sentences: npt.NDArray[np.int64]
    chunk_vectors: npt.NDArray[Any]
    sentence_vectors: npt.NDArray[Any]
    #: The sentences' latent-term rows (cut and made compact when written).
    sentence_latent: LatentVectors
    #: The chunks' stored latent rows (a reused document); ``None``: pooled from the sentences.
    chunk_latent: LatentVectors | None = None
    #: Where each chunk and sentence starts in the source: its PDF page (``0``: none) and
    #: location label (``""``: none), in the order of ``chunks`` and ``sentences``; ``None``:
    #: no pages, no labels.
    chunk_pages: Sequence[int] | None = None
    chunk_labels: Sequence[str] | None = None
    sentence_pages: Sequence[int] | None = None
    sentence_labels: Sequence[str] | None = None


def byte_offsets(text: str) -> npt.NDArray[np.int64] | None:
    """UTF-8 byte offset of every character position (``len(text) + 1``); None for ASCII."""
    if text.isascii():
        return None
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    sizes = 1 + (points >= 0x80).astype(np.int64) + (points >= 0x800) + (points >= 0x10000)
    out = np.zeros(len(text) + 1, np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def sentence_ranges(
    chunks: npt.NDArray[np.int64], sentences: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """For each chunk, the ``[first, end)`` rows of the sentences overlapping it.

    Sentences are in text order and do not overlap, so those rows are contiguous: the ones
    starting before the chunk's end, from the last one starting at or before its start (if it
    reaches into the chunk).
    """
    out = np.zeros((len(chunks), 2), np.int64)
    if not len(chunks) or not len(sentences):
        return out
    starts, ends = sentences[:, 0], sentences[:, 1]
    first = np.maximum(np.searchsorted(starts, chunks[:, 0], side="right") - 1, 0)
    first = first + (ends[first] <= chunks[:, 0])
    last = np.searchsorted(starts, chunks[:, 1], side="left")
    out[:, 0] = first
    out[:, 1] = np.maximum(first, last)
    return out


class _LatentWriter:
    def __init__(self, version: Path, kind: str) -> None:
        indptr, terms, weights = persist.latent_files(kind)
        self.indptr = AppendArray(version / indptr, np.int64)
        self.terms = AppendArray(version / terms, np.uint16)
        self.weights = AppendArray(version / weights, np.float16)
        self.indptr.append([0])

    def append(self, rows: LatentVectors) -> None:
        base = self.terms.rows
        indptr = np.asarray(rows.indptr, np.int64)
        self.indptr.append(indptr[1:] - indptr[0] + base)
        self.terms.append(rows.indices[indptr[0] : indptr[-1]])
        self.weights.append(rows.values[indptr[0] : indptr[-1]])


class VersionWriter:
    """Appends documents to the files of a new version folder; :meth:`close` finishes them."""

    def __init__(
        self, path: Path, *, dimension: int, latent_dimension: int, terms: LatentTermsRecord
    ) -> None:
        self.path = path
        self.latent_dimension = latent_dimension
        self.terms = terms
        self.documents = 0
        self.chunks = 0
        self.sentences = 0
        self._texts = open(path / persist.TEXTS, "wb")  # noqa: SIM115 - closed in close()
        self._text_bytes = 0
        self._labels = open(path / persist.LABELS, "wb")  # noqa: SIM115 - closed in close()
        self._label_bytes = 0
        self._documents = AppendArray(path / persist.DOCUMENTS, np.int64, (2,))
        self._chunks = AppendArray(path / persist.CHUNKS, np.int64, (len(persist.CHUNK_COLUMNS),))
        self._sentences = AppendArray(
            path / persist.SENTENCES, np.int64, (len(persist.SENTENCE_COLUMNS),)
        )
        self._chunk_vectors = AppendArray(path / persist.CHUNK_VECTORS, np.float32, (dimension,))
        self._sentence_vectors = AppendArray(
            path / persist.SENTENCE_VECTORS, np.float16, (dimension,)
        )
        self._chunk_latent = _LatentWriter(path, persist.CHUNK_LATENT)
        self._sentence_latent = _LatentWriter(path, persist.SENTENCE_LATENT)
        self._bm25 = Bm25Builder()

    def add(self, rows: DocumentRows) -> None:
        """Append one document (the next in index order)."""
        data = rows.text.encode("utf-8")
        self._texts.write(data)
        self._documents.append([[self._text_bytes, len(data)]])
        self._text_bytes += len(data)
        to_bytes = byte_offsets(rows.text)
        chunks = np.asarray(rows.chunks, np.int64).reshape(-1, 2)
        sentences = np.asarray(rows.sentences, np.int64).reshape(-1, 2)
        ranges = sentence_ranges(chunks, sentences)

        def bytes_of(spans: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return spans if to_bytes is None else to_bytes[spans]

        doc = np.full((len(chunks), 1), self.documents, np.int64)
        places = self._places(len(chunks), rows.chunk_pages, rows.chunk_labels)
        self._chunks.append(
            np.hstack([doc, chunks, bytes_of(chunks), ranges + self.sentences, places])
        )
        doc = np.full((len(sentences), 1), self.documents, np.int64)
        places = self._places(len(sentences), rows.sentence_pages, rows.sentence_labels)
        self._sentences.append(np.hstack([doc, sentences, bytes_of(sentences), places]))
        self._chunk_vectors.append(np.asarray(rows.chunk_vectors).reshape(len(chunks), -1))
        self._sentence_vectors.append(np.asarray(rows.sentence_vectors).reshape(len(sentences), -1))
        self._append_latent(rows, ranges)
        for start, end in chunks.tolist():
            self._bm25.add(rows.text[start:end], rows.language)
        self.documents += 1
        self.chunks += len(chunks)
        self.sentences += len(sentences)

    def _places(
        self, n: int, pages: Sequence[int] | None, labels: Sequence[str] | None
    ) -> npt.NDArray[np.int64]:
        """``(n, 3)`` page, label start and label end of ``n`` rows; the labels are written."""
        out = np.zeros((n, 3), np.int64)
        if pages is not None:
            out[:, 0] = np.asarray(pages, np.int64).reshape(n)
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"{len(labels)} location labels for {n} rows")
            for i, label in enumerate(labels):
                data = label.encode("utf-8")
                self._labels.write(data)
                out[i, 1:] = self._label_bytes, self._label_bytes + len(data)
                self._label_bytes += len(data)
        else:
            out[:, 1:] = self._label_bytes
        return out

    def _append_latent(self, rows: DocumentRows, ranges: npt.NDArray[np.int64]) -> None:
        n_chunks, n_sentences = len(ranges), len(rows.sentences)
        if not self.latent_dimension:
            self._sentence_latent.append(LatentVectors.empty(rows=n_sentences))
            self._chunk_latent.append(LatentVectors.empty(rows=n_chunks))
            return
        sentence_rows = rows.sentence_latent
        if len(sentence_rows) != n_sentences:
            raise ValueError(f"{len(sentence_rows)} latent rows for {n_sentences} sentences")
        sentence_rows = sentence_rows.truncated(self.terms.sentence).compact()
        chunk_rows = rows.chunk_latent
        if chunk_rows is None:
            groups = [range(a, b) for a, b in ranges.tolist()]
            chunk_rows = sentence_rows.pooled(groups).truncated(self.terms.chunk).compact()
        self._sentence_latent.append(sentence_rows)
        self._chunk_latent.append(chunk_rows)

    def _arrays(self) -> tuple[AppendArray, ...]:
        latent = (self._chunk_latent, self._sentence_latent)
        return (
            self._documents,
            self._chunks,
            self._sentences,
            self._chunk_vectors,
            self._sentence_vectors,
            *(part for rows in latent for part in (rows.indptr, rows.terms, rows.weights)),
        )

    def abort(self) -> None:
        """Close every file unfinished, after a failed write (the caller deletes the folder)."""
        self._texts.close()
        self._labels.close()
        for array in self._arrays():
            array.abort()

    def close(self) -> None:
        """Finish every array file and write the BM25 matrix."""
        self._texts.close()
        self._labels.close()
        for array in self._arrays():
            array.close()
        self._bm25.write(self.path)
