"""How a version searches its chunk vectors: exact below a size threshold, IVF above it.

Measured before this was chosen (docs/SCALE-NOTES.md): on real e5 vectors with real questions
HNSW stayed near 0.70 recall@10 at 100k passages and PQ far below 0.98, while IVF-Flat
reaches 0.98 by scanning ~12 % of the lists at a tenth of exact search's cost. ``nprobe`` is
chosen per build against exact search, with query vectors of the corpus's own sentences
(questions sit apart from passages: ``query:`` prefix), and recorded in the manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..config import IndexSettings
from . import persist
from .arrays import open_array
from .manifest import ChunkIndexRecord
from .store import RECALL_AT, ChunkIndex, choose_nprobe, default_nlist, exact_neighbours

logger = logging.getLogger(__name__)

QueryVectors = Callable[[int], npt.NDArray[np.float32]]
#: A previous version's centroids serve until the corpus has grown this much since training.
RETRAIN_GROWTH = 4


def planned(chunks: int, settings: IndexSettings) -> tuple[str, int]:
    """The kind of chunk index (``flat`` or ``ivf``) and its ``nlist`` for this many chunks."""
    if chunks <= settings.exact_max_chunks:
        return "flat", 0
    nlist = settings.nlist or default_nlist(chunks)
    return "ivf", max(1, min(nlist, chunks))


def matches(record: ChunkIndexRecord, chunks: int, settings: IndexSettings) -> bool:
    """Whether an existing version's chunk index is the one these settings would build."""
    return (record.kind, record.nlist) == planned(chunks, settings) and (
        record.exact_max_chunks,
        record.target_recall,
    ) == (settings.exact_max_chunks, settings.target_recall)


def build_chunk_index(
    version: Path,
    settings: IndexSettings,
    query_vectors: QueryVectors,
    previous: persist.StoredIndex | None = None,
) -> ChunkIndexRecord:
    """Build and save ``chunks.faiss`` from the version's ``chunks.vectors.npy``.

    ``query_vectors(n)`` returns up to ``n`` query vectors to measure recall with (only an
    IVF index needs them). A previous IVF index's centroids are reused when ``nlist`` is
    unchanged and the corpus has not grown ``RETRAIN_GROWTH``-fold since they were trained.
    """
    vectors = open_array(version / persist.CHUNK_VECTORS, dtype=np.float32)
    n, dimension = len(vectors), vectors.shape[1]
    kind, nlist = planned(n, settings)
    if kind == "flat":
        index = ChunkIndex.flat(dimension)
        index.add(vectors)
        index.save(version / persist.CHUNK_INDEX)
        return ChunkIndexRecord(
            "flat",
            exact_max_chunks=settings.exact_max_chunks,
            target_recall=settings.target_recall,
        )
    old = previous.manifest.chunk_index if previous is not None else None
    reuse = (
        previous is not None
        and old is not None
        and old.kind == "ivf"
        and old.nlist == nlist
        and n <= RETRAIN_GROWTH * max(1, old.trained_for)
    )
    index, trained_on = ChunkIndex.ivf(
        vectors, nlist, quantizer_from=previous.chunk_index if reuse and previous else None
    )
    trained_for = old.trained_for if reuse and old is not None else n
    trained_on = old.trained_on if reuse and old is not None else trained_on
    index.add(vectors)
    queries = np.ascontiguousarray(query_vectors(settings.recall_queries), dtype=np.float32)
    truth = exact_neighbours(vectors, queries, RECALL_AT)
    chosen = choose_nprobe(index, queries, truth, settings.target_recall)
    index.save(version / persist.CHUNK_INDEX)
    logger.info(
        "chunk index IVF%d,Flat over %d chunks: nprobe %d, recall@%d %.4f on %d queries",
        nlist,
        n,
        chosen.nprobe,
        RECALL_AT,
        chosen.recall,
        len(queries),
    )
    return ChunkIndexRecord(
        kind="ivf",
        exact_max_chunks=settings.exact_max_chunks,
        target_recall=settings.target_recall,
        nlist=nlist,
        nprobe=chosen.nprobe,
        trained_on=trained_on,
        trained_for=trained_for,
        recall_queries=len(queries),
        recall_at_10=round(chosen.recall, 4),
    )
