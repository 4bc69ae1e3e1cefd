"""Build stage: (re)build an index from the seeds under a lock — plan, embed, write, publish."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from ..config import DEFAULT_INDEX_DIR, DEFAULT_SEEDS_DIR
from ..embed.embedders import Embedder, Vectors, get_embedder
from ..embed.latent import LatentVectors
from ..errors import BuildLockedError, IndexWriteError
from ..ingest.chunking import Chunker
from ..types import Chunk, IndexStats, Sentence
from . import extractions, persist
from .manifest import Counts, DocumentRecord, Manifest
from .plan import BuildPlan, plan_build
from .reuse import Reusable
from .store import VectorStore
from .vectors import ProgressCallback, embed_work

logger = logging.getLogger(__name__)

T = TypeVar("T")


def build_index(
    seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR,
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    embedder: str | Embedder | None = None,
    chunker: Chunker | None = None,
    full: bool = False,
    progress: ProgressCallback | None = None,
    lock_timeout: float | None = None,
) -> IndexStats:
    """Build or update the index of ``seeds_dir`` in ``index_dir``; return what was done.

    Only new and changed seeds are embedded; unchanged ones (also renamed or copied ones: the
    match is by sha256 of the content) reuse their stored vectors, deleted ones disappear.
    When nothing changed, no new version is written. Bad seeds are skipped with a warning
    (see ``IndexStats.skipped``). A change of embedder or chunker settings, or an unreadable
    previous index, rebuilds everything (``IndexStats.full_rebuild_reason`` says why).

    ``progress`` is called after each embedded batch with a :class:`BuildProgress` (chunks
    done and total, seconds, chunks/s, ETA). ``lock_timeout`` is how long to wait for
    another build of the same index (``None`` waits, ``0`` fails at once with
    :class:`BuildLockedError`).

    >>> stats = build_index("seeds", "index")            # doctest: +SKIP
    >>> stats.documents_added, stats.chunks_embedded      # doctest: +SKIP
    (1, 3)
    """
    started = time.perf_counter()
    seeds_path, index_path = Path(seeds_dir), Path(index_dir)
    check_apart(seeds_path, index_path)
    emb = get_embedder(embedder)
    chunker = chunker or Chunker()
    lock_path = index_path / persist.LOCK
    lock = FileLock(str(lock_path))
    try:
        try:
            if index_path.exists() and not index_path.is_dir():
                raise IndexWriteError(
                    f"The index folder {index_path} is a file, not a folder; choose a folder "
                    "for the index (`qa build --index DIR`). The file was left as it is."
                )
            _writable(index_path, lambda: index_path.mkdir(parents=True, exist_ok=True))
            problem = persist.pointer_problem(index_path)
            if problem:
                raise IndexWriteError(f"Cannot publish a new index: {problem}.")
            _writable(index_path, lambda: lock.acquire(timeout=0))
        except Timeout:
            if lock_timeout is not None and lock_timeout <= 0:
                raise
            logger.warning("another build is writing %s/; waiting for it to finish", index_path)
            lock.acquire(timeout=-1 if lock_timeout is None else lock_timeout)
    except Timeout as exc:
        raise BuildLockedError(
            f"Another build is writing {index_path}/ (it holds the lock {lock_path}); "
            "wait for it to finish, then run `qa build` again."
        ) from exc
    try:
        return _build_locked(seeds_path, index_path, emb, chunker, full, progress, started)
    finally:
        lock.release()


def check_apart(seeds_path: Path, index_path: Path) -> None:
    """Refuse an index folder that is the seeds folder, lies inside it, or holds it: a build
    writes and deletes in the index folder, and the seeds are the user's."""
    try:
        seeds, index = seeds_path.resolve(), index_path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise IndexWriteError(
            f"Cannot resolve the seeds folder {seeds_path} or the index folder {index_path} "
            f"({exc}); pass plain folders."
        ) from exc
    where = None
    if index == seeds:
        where = f"The index folder {index_path} is the seeds folder"
    elif index.is_relative_to(seeds):
        where = f"The index folder {index_path} is inside the seeds folder {seeds_path}"
    elif seeds.is_relative_to(index):
        where = f"The seeds folder {seeds_path} is inside the index folder {index_path}"
    if where:
        raise IndexWriteError(
            f"{where}; keep them apart (for example `qa build --seeds seeds --index index`). "
            "Nothing was written."
        )


def _build_locked(
    seeds_path: Path,
    index_path: Path,
    emb: Embedder,
    chunker: Chunker,
    full: bool,
    progress: ProgressCallback | None,
    started: float,
) -> IndexStats:
    plan = plan_build(seeds_path, index_path, emb, chunker, full=full)
    if plan.up_to_date:
        manifest = plan.previous.manifest
        assert manifest is not None
        # Nothing to write; still clear folders a killed build may have left behind.
        persist.remove_old_versions(
            index_path, keep=[manifest.replaces] if manifest.replaces else []
        )
        logger.info("index %s is up to date (%s)", index_path, plan.previous.version)
        return _stats(plan, manifest, started, chunks_embedded=0)

    embedded = embed_work(plan.work, emb, progress)
    persist.checkpoint("embedded")
    version, manifest = _write(plan, embedded, started)
    persist.checkpoint("version-written")
    mode = plan.scan.file_mode
    _writable(index_path, lambda: persist.publish(index_path, version, file_mode=mode))
    persist.checkpoint("published")
    prev = plan.previous
    persist.remove_old_versions(index_path, keep=[prev.version] if prev.version else [])
    if prev.reason:
        logger.info("full build: %s", prev.reason)
    stats = _stats(plan, manifest, started, sum(len(w.chunks) for w in plan.work))
    logger.info(
        "built %s (%s): %d documents, %d chunks (%d embedded, %d reused) in %.2fs",
        index_path,
        version.name,
        stats.documents,
        stats.chunks,
        stats.chunks_embedded,
        stats.chunks_reused,
        stats.seconds,
    )
    return stats


def _retarget(items: Sequence[Any], source: str) -> list[Any]:
    """The same records under a new source name (a renamed or copied file keeps its vectors)."""
    return [
        item if item.source == source else dataclasses.replace(item, source=source)
        for item in items
    ]


def _write_extractions(plan: BuildPlan, version: Path) -> list[str]:
    """Each distinct content's text and location map: new ones written, others carried over."""
    names: dict[str, str] = {}
    for doc in plan.scan.documents:
        key = doc.content_key
        if key in names:
            continue
        locations = plan.scan.locations.get(key)
        if locations is not None:
            names[key] = extractions.save_extraction(version, key, doc.text, locations)
        else:  # known to the live index: its file checked out when the plan was made
            assert plan.previous.path is not None
            names[key] = extractions.carry_extraction(plan.previous.path, version, key)
    for record in plan.carried:  # unreadable just now: their stored text stays with them
        key = record.content_key
        if key not in names:
            assert plan.previous.path is not None
            names[key] = extractions.carry_extraction(plan.previous.path, version, key)
    return list(names.values())


def _write(plan: BuildPlan, embedded: dict[str, Reusable], started: float) -> tuple[Path, Manifest]:
    """Third step: assemble every document's records and vectors and write a new version."""
    all_chunks: list[Chunk] = []
    all_sentences: list[Sentence] = []
    chunk_parts: list[Vectors] = []
    sentence_parts: list[Vectors] = []
    latent_parts: list[LatentVectors] = []
    records = []
    documents = [
        DocumentRecord(
            source=doc.source,
            sha256=doc.sha256,
            chars=len(doc.text),
            body_start=doc.body_start,
            date=doc.date,
            authors=doc.authors,
            language=plan.languages[doc.source],
            chunks=0,
            sentences=0,
            kind=doc.kind,
            title=doc.title,
            pages=doc.pages,
        )
        for doc in plan.scan.documents
    ]
    # Documents whose files cannot be read just now stay as the live index holds them.
    for record in sorted((*documents, *plan.carried), key=lambda r: r.source):
        key = record.content_key
        item = embedded.get(key) or plan.previous.reusable[key]
        chunks = _retarget(item.chunks, record.source)
        sentences = _retarget(item.sentences, record.source)
        all_chunks.extend(chunks)
        all_sentences.extend(sentences)
        chunk_parts.append(item.chunk_vectors)
        sentence_parts.append(item.sentence_vectors)
        latent_parts.append(item.sentence_latent)
        records.append(dataclasses.replace(record, chunks=len(chunks), sentences=len(sentences)))
    settings = plan.settings
    dim = settings.embedder.dimension
    chunk_store = VectorStore.from_vectors(np.concatenate(chunk_parts), dim)
    sentence_store = VectorStore.from_vectors(
        np.concatenate(sentence_parts) if sentence_parts else np.zeros((0, dim), np.float32), dim
    )
    latent_dim = settings.latent.dimension if settings.latent else 0
    sentence_latent = LatentVectors.concat(latent_parts, latent_dim)
    manifest = Manifest(
        settings=settings,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3),
        replaces=plan.previous.version,
        documents=tuple(records),
        skipped=plan.scan.skipped,
        skipped_sha256=plan.scan.skipped_hashes,
        counts=Counts(len(records), len(all_chunks), len(all_sentences)),
    )
    index_path = plan.index_path
    version = _writable(index_path, lambda: persist.new_version_dir(index_path))
    try:
        manifest = persist.write_version(
            version,
            manifest,
            all_chunks,
            all_sentences,
            chunk_store,
            sentence_store,
            sentence_latent,
            file_mode=plan.scan.file_mode,
            extra=_write_extractions(plan, version),
        )
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        shutil.rmtree(version, ignore_errors=True)
        raise _write_error(index_path, exc) from exc
    return version, manifest


def _stats(plan: BuildPlan, manifest: Manifest, started: float, chunks_embedded: int) -> IndexStats:
    changes = plan.changes
    return IndexStats(
        index_dir=str(plan.index_path),
        documents=manifest.counts.documents,
        chunks=manifest.counts.chunks,
        embedder=manifest.settings.embedder.name,
        dimension=manifest.settings.embedder.dimension,
        built_at=manifest.built_at,
        seconds=round(time.perf_counter() - started, 3),
        documents_added=changes.added,
        documents_changed=changes.changed,
        documents_removed=changes.removed,
        documents_unchanged=changes.unchanged,
        chunks_embedded=chunks_embedded,
        chunks_reused=manifest.counts.chunks - chunks_embedded,
        full_rebuild_reason=plan.previous.reason,
        skipped=plan.scan.skipped,
        unreadable=plan.scan.unreadable,
    )


def _write_error(index_path: Path, exc: OSError | RuntimeError) -> IndexWriteError:
    if isinstance(exc, OSError):
        reason = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    else:
        # faiss: "Error in faiss::FileIOWriter… Error: 'f' failed: could not open … for writing"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        reason = reason.split(" failed: ", 1)[-1]
    return IndexWriteError(
        f"Cannot write the index in {index_path}/: {reason}. Choose a "
        "writable folder (`qa build --index DIR`) or fix this one's permissions or free disk "
        "space; the live index, if any, is unchanged."
    )


def _writable(index_path: Path, step: Callable[[], T]) -> T:
    """Run one step that writes to the index folder; an OS error becomes IndexWriteError."""
    try:
        return step()
    except Timeout:  # filelock's Timeout is an OSError too; the caller handles it
        raise
    except OSError as exc:
        raise _write_error(index_path, exc) from exc
