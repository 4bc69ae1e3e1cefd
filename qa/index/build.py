"""Build stage: (re)build an index from the seeds under a lock — plan, embed, write, publish."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from filelock import FileLock, Timeout

from ..config import (
    DEFAULT_INDEX_DIR,
    DEFAULT_SEEDS_DIR,
    Engine,
    EngineSettings,
    IndexSettings,
)
from ..embed.embedders import Embedder, get_embedder
from ..errors import BuildLockedError, IndexWriteError
from ..ingest.chunking import Chunker
from ..types import IndexStats
from . import extractions, layout, persist
from .arrays import open_array
from .manifest import Counts, DocumentRecord, Manifest
from .plan import BuildPlan, DocumentWork, plan_build
from .shards import PartialStore
from .vectors import EmbedOutcome, ProgressCallback, embed_work
from .writer import DocumentRows, VersionWriter

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
    settings: IndexSettings | None = None,
    engine: str | EngineSettings = "local",
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
    :class:`BuildLockedError`). ``settings`` lays out the index (exact or approximate chunk
    search, see :class:`IndexSettings`); a change rewrites it without embedding anything.
    ``engine`` runs the model in this process (``"local"``) or on Ray (``"ray"``, or an
    :class:`EngineSettings`; needs ``pip install 'qa[ray]'``); both write the same index.

    Embedded vectors are saved as the build goes (``index/.partial``): a build that was
    killed or failed is resumed by the next one, which embeds only what is missing
    (``IndexStats.texts_resumed``).

    >>> stats = build_index("seeds", "index")            # doctest: +SKIP
    >>> stats.documents_added, stats.chunks_embedded      # doctest: +SKIP
    (1, 3)
    """
    started = time.perf_counter()
    seeds_path, index_path = Path(seeds_dir), Path(index_dir)
    check_apart(seeds_path, index_path)
    emb = get_embedder(embedder)
    chunker = chunker or Chunker()
    settings = settings or IndexSettings()
    engine_settings = (
        engine if isinstance(engine, EngineSettings) else EngineSettings(cast(Engine, engine))
    )
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
        return _build_locked(
            seeds_path,
            index_path,
            emb,
            chunker,
            full,
            progress,
            started,
            settings,
            engine_settings,
        )
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
    settings: IndexSettings,
    engine: EngineSettings,
) -> IndexStats:
    plan = plan_build(seeds_path, index_path, emb, chunker, full=full)
    store = PartialStore(index_path, plan.settings)
    manifest = plan.previous.manifest
    if (
        plan.up_to_date
        and manifest is not None
        and layout.matches(manifest.chunk_index, manifest.counts.chunks, settings)
    ):
        # Nothing to write; still clear what a killed build may have left behind.
        store.clear()
        persist.remove_old_versions(
            index_path, keep=[manifest.replaces] if manifest.replaces else []
        )
        logger.info("index %s is up to date (%s)", index_path, plan.previous.version)
        return _stats(plan, manifest, started, EmbedOutcome(0, 0))

    outcome = embed_work(plan.work, emb, progress, store, engine)
    persist.checkpoint("embedded")
    version, manifest = _write(plan, store, emb, settings, started)
    persist.checkpoint("version-written")
    mode = plan.scan.file_mode
    _writable(index_path, lambda: persist.publish(index_path, version, file_mode=mode))
    persist.checkpoint("published")
    store.clear()
    prev = plan.previous
    persist.remove_old_versions(index_path, keep=[prev.version] if prev.version else [])
    if prev.reason:
        logger.info("full build: %s", prev.reason)
    stats = _stats(plan, manifest, started, outcome)
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


def _new_rows(item: DocumentWork, store: PartialStore, emb: Embedder, latent: int) -> DocumentRows:
    """A newly embedded document's records and vectors (read back from ``.partial``)."""
    key = item.document.content_key
    n_chunks, n_sentences = len(item.chunks), len(item.sentences)
    return DocumentRows(
        text=item.document.text,
        language="",
        chunks=np.array([(c.start, c.end) for c in item.chunks], np.int64).reshape(-1, 2),
        sentences=np.array([(s.start, s.end) for s in item.sentences], np.int64).reshape(-1, 2),
        chunk_vectors=store.vectors("chunk", key, n_chunks, emb.dimension),
        sentence_vectors=store.vectors("sentence", key, n_sentences, emb.dimension),
        sentence_latent=store.latent(key, n_sentences, latent)
        if latent
        else _no_latent(n_sentences),
        chunk_pages=[c.page or 0 for c in item.chunks],
        chunk_labels=[c.location or "" for c in item.chunks],
        sentence_pages=[s.page or 0 for s in item.sentences],
        sentence_labels=[s.location or "" for s in item.sentences],
    )


def _no_latent(rows: int) -> Any:
    from ..embed.latent import LatentVectors

    return LatentVectors.empty(rows=rows)


def _write(
    plan: BuildPlan, store: PartialStore, emb: Embedder, settings: IndexSettings, started: float
) -> tuple[Path, Manifest]:
    """Third step: write every document's records and vectors into a new version."""
    index_path = plan.index_path
    build = plan.settings
    latent_dim = build.latent.dimension if build.latent else 0
    new = {item.document.content_key: item for item in plan.work}
    version = _writable(index_path, lambda: persist.new_version_dir(index_path))
    writer: VersionWriter | None = None
    try:
        writer = VersionWriter(
            version,
            dimension=build.embedder.dimension,
            latent_dimension=latent_dim,
            terms=build.latent_terms,
        )
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
        texts = {doc.content_key: doc.text for doc in plan.scan.documents}
        records = []
        # Documents whose files cannot be read just now stay as the live index holds them.
        for record in sorted((*documents, *plan.carried), key=lambda r: r.source):
            key, language = record.content_key, record.language
            if key in new:
                rows = _new_rows(new[key], store, emb, latent_dim)
                rows = dataclasses.replace(rows, language=language)
            else:
                rows = plan.previous.rows(key, language, texts.get(key))
            writer.add(rows)
            records.append(
                dataclasses.replace(record, chunks=len(rows.chunks), sentences=len(rows.sentences))
            )
        writer.close()
        chunk_index = layout.build_chunk_index(
            version,
            settings,
            lambda n: _query_vectors(version, emb, n),
            plan.previous.stored,
        )
        persist.checkpoint("files-written")
        manifest = Manifest(
            settings=build,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
            replaces=plan.previous.version,
            documents=tuple(records),
            skipped=plan.scan.skipped,
            skipped_sha256=plan.scan.skipped_hashes,
            counts=Counts(len(records), writer.chunks, writer.sentences),
            chunk_index=chunk_index,
        )
        manifest = persist.write_manifest(
            version,
            manifest,
            file_mode=plan.scan.file_mode,
            extra=_write_extractions(plan, version),
        )
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        _discard(version, writer)
        raise _write_error(index_path, exc) from exc
    except BaseException:
        _discard(version, writer)
        raise
    return version, manifest


def _discard(version: Path, writer: VersionWriter | None) -> None:
    """Remove a version folder whose writing failed, its files closed first."""
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.abort()
    shutil.rmtree(version, ignore_errors=True)


def _query_vectors(version: Path, emb: Embedder, n: int) -> npt.NDArray[np.float32]:
    """Query vectors of up to ``n`` sentences sampled from the version (for the recall check).

    Questions are embedded with the ``query:`` prefix and sit apart from passages; sentences
    embedded the same way are the closest stand-in the corpus itself offers.
    """
    rows = open_array(version / persist.SENTENCES, dtype=np.int64)
    documents = open_array(version / persist.DOCUMENTS, dtype=np.int64)
    texts_file = version / persist.TEXTS
    if not len(rows):
        rows = open_array(version / persist.CHUNKS, dtype=np.int64)[:, :5]
    picked = np.sort(
        np.random.default_rng(7).choice(len(rows), size=min(n, len(rows)), replace=False)
    )
    texts = []
    with open(texts_file, "rb") as handle:
        for doc, _, _, b0, b1 in rows[picked, :5].tolist():
            handle.seek(int(documents[doc, 0]) + b0)
            texts.append(handle.read(b1 - b0).decode("utf-8"))
    return emb.embed_queries(texts)


def _stats(
    plan: BuildPlan, manifest: Manifest, started: float, outcome: EmbedOutcome
) -> IndexStats:
    changes = plan.changes
    chunks_embedded = sum(len(w.chunks) for w in plan.work)
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
        texts_embedded=outcome.embedded,
        texts_resumed=outcome.resumed,
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
