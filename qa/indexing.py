"""Indexing stage: (re)build an index from the seeds, incrementally and under a lock."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from . import persist
from .chunking import Chunker
from .config import DEFAULT_INDEX_DIR, DEFAULT_SEEDS_DIR
from .documents import SeedScan, hash_seeds, scan_seeds
from .embedding import Embedder, Vectors, get_embedder, latent_head
from .errors import BuildLockedError, IndexCorruptError, IndexNotFoundError, IndexWriteError
from .latent import LatentVectors
from .reuse import (
    Previous,
    Reusable,
    package_version,
    previous,
    settings_change,
    settings_of,
)
from .sentences import detect_language, split_sentences
from .store import VectorStore
from .types import BuildProgress, Chunk, Document, IndexInfo, IndexStats, Sentence, SkippedSeed

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[BuildProgress], None]
T = TypeVar("T")

_BATCH = 32


@dataclass(frozen=True, slots=True)
class _Changes:
    """How the seeds differ from the live index, by source name and sha256.

    A renamed file counts as one removed and one added document (its vectors are reused).
    """

    added: int
    changed: int
    removed: int
    unchanged: int


def _retarget(items: Sequence[Any], source: str) -> list[Any]:
    """The same records under a new source name (a renamed or copied file keeps its vectors)."""
    return [
        item
        if item.source == source
        else type(item)(source=source, start=item.start, end=item.end, text=item.text)
        for item in items
    ]


def _document_record(doc: Document, chunks: int, sentences: int) -> dict[str, Any]:
    return {
        "source": doc.source,
        "sha256": doc.sha256,
        "chars": len(doc.text),
        "body_start": doc.body_start,
        "date": doc.date,
        "authors": list(doc.authors),
        "language": detect_language(doc.body[:2000]),
        "chunks": chunks,
        "sentences": sentences,
    }


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


def _embed_documents(
    work: list[tuple[Document, list[Chunk], list[Sentence]]],
    emb: Embedder,
    progress: ProgressCallback | None,
) -> dict[str, Reusable]:
    """Embed the chunks and sentences of each document, reporting progress in chunks.

    Sentences also get latent-term vectors when the embedder has that head. A document's
    chunks count as done in proportion to its embedded texts (chunks, sentences, and
    sentences again for the latent terms), so chunks/s and the ETA include all of it.
    """
    head = latent_head(emb)
    total = sum(len(chunks) for _, chunks, _ in work)
    started = time.perf_counter()
    if progress is not None and total:
        progress(BuildProgress(0, total, 0.0))
    done_before = 0
    out: dict[str, Reusable] = {}
    for doc, chunks, sentences in work:
        # Chunks and sentences in separate batches: mixed batches pad sentences to chunk length.
        groups = [("chunks", [c.text for c in chunks]), ("sentences", [s.text for s in sentences])]
        if head is not None:
            groups.append(("latent", groups[1][1]))
        texts_total = sum(len(texts) for _, texts in groups)
        texts_done = 0
        parts: dict[str, list[Any]] = {name: [] for name, _ in groups}
        for name, texts in groups:
            for i in range(0, len(texts), _BATCH):
                batch = texts[i : i + _BATCH]
                if name == "latent":
                    assert head is not None
                    parts[name].append(head.embed_latent(batch))
                else:
                    parts[name].append(emb.embed_passages(batch))
                texts_done += len(batch)
                persist.checkpoint("embedding")
                if progress is not None:
                    done = done_before + len(chunks) * texts_done // texts_total
                    progress(BuildProgress(done, total, time.perf_counter() - started))
        vectors = [
            np.concatenate([emb.embed_passages([]), *parts[name]])
            for name in ("chunks", "sentences")
        ]
        if head is not None:
            latent = LatentVectors.concat(parts["latent"], head.latent_dimension)
        else:
            latent = LatentVectors.empty(rows=len(sentences))
        out[doc.sha256] = Reusable(chunks, vectors[0], sentences, vectors[1], latent)
        done_before += len(chunks)
    return out


def _unchanged(prev: Previous, scan: SeedScan, skipped: list[dict[str, str]]) -> bool:
    """Whether the live index already is exactly what this build would write."""
    if prev.reason is not None or prev.manifest is None:
        return False
    return (
        prev.documents == {d.source: d.sha256 for d in scan.documents}
        and prev.manifest.get("skipped") == skipped
        and prev.manifest.get("skipped_sha256") == _skipped_hashes(scan)
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
    scan = scan_seeds(seeds_path)
    settings = {**settings_of(emb, chunker), "package_version": package_version()}
    prev = previous(index_path, settings, full=full)
    old_docs = prev.documents
    new_docs = {d.source: d.sha256 for d in scan.documents}
    changes = _Changes(
        added=sum(s not in old_docs for s in new_docs),
        changed=sum(s in old_docs and old_docs[s] != h for s, h in new_docs.items()),
        removed=sum(s not in new_docs for s in old_docs),
        unchanged=sum(old_docs.get(s) == h for s, h in new_docs.items()),
    )
    skipped = [{"source": s.source, "reason": s.reason} for s in scan.skipped]

    if _unchanged(prev, scan, skipped):
        assert prev.manifest is not None and prev.version is not None
        # Nothing to write; still clear folders a killed build may have left behind.
        replaced = prev.manifest.get("replaces")
        persist.remove_old_versions(index_path, keep=[replaced] if replaced else [])
        counts = prev.manifest.get("counts", {})
        stats = IndexStats(
            index_dir=str(index_path),
            documents=len(new_docs),
            chunks=int(counts.get("chunks", 0)),
            embedder=emb.name,
            dimension=emb.dimension,
            built_at=prev.manifest.get("built_at", ""),
            seconds=round(time.perf_counter() - started, 3),
            chunks_reused=int(counts.get("chunks", 0)),
            skipped=scan.skipped,
            documents_added=changes.added,
            documents_changed=changes.changed,
            documents_removed=changes.removed,
            documents_unchanged=changes.unchanged,
        )
        logger.info("index %s is up to date (%s)", index_path, prev.version)
        return stats

    # Chunk and split what has no vectors yet, each distinct content once.
    work: list[tuple[Document, list[Chunk], list[Sentence]]] = []
    planned = set(prev.reusable)
    for doc in scan.documents:
        if doc.sha256 in planned:
            continue
        planned.add(doc.sha256)
        language = detect_language(doc.body[:2000])
        sentences = split_sentences(doc.text, doc.source, doc.body_start, language=language)
        work.append((doc, chunker.split(doc), sentences))
    embedded = _embed_documents(work, emb, progress)
    persist.checkpoint("embedded")
    chunks_embedded = sum(len(chunks) for _, chunks, _ in work)

    all_chunks: list[Chunk] = []
    all_sentences: list[Sentence] = []
    chunk_parts: list[Vectors] = []
    sentence_parts: list[Vectors] = []
    latent_parts: list[LatentVectors] = []
    records = []
    for doc in scan.documents:
        item = embedded.get(doc.sha256) or prev.reusable[doc.sha256]
        chunks = _retarget(item.chunks, doc.source)
        sentences = _retarget(item.sentences, doc.source)
        all_chunks.extend(chunks)
        all_sentences.extend(sentences)
        chunk_parts.append(item.chunk_vectors)
        sentence_parts.append(item.sentence_vectors)
        latent_parts.append(item.sentence_latent)
        records.append(_document_record(doc, len(chunks), len(sentences)))

    dim = emb.dimension
    chunk_store = VectorStore.from_vectors(np.concatenate(chunk_parts), dim)
    sentence_store = VectorStore.from_vectors(
        np.concatenate(sentence_parts) if sentence_parts else np.zeros((0, dim), np.float32), dim
    )
    head = latent_head(emb)
    sentence_latent = LatentVectors.concat(latent_parts, head.latent_dimension if head else 0)
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = {
        **settings,
        "built_at": built_at,
        "build_seconds": round(time.perf_counter() - started, 3),
        "replaces": prev.version,
        "documents": records,
        "skipped": skipped,
        "skipped_sha256": _skipped_hashes(scan),
        "counts": {
            "documents": len(records),
            "chunks": len(all_chunks),
            "sentences": len(all_sentences),
        },
    }
    version = _writable(index_path, lambda: persist.new_version_dir(index_path))
    try:
        persist.write_version(
            version,
            manifest,
            all_chunks,
            all_sentences,
            chunk_store,
            sentence_store,
            sentence_latent,
        )
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        shutil.rmtree(version, ignore_errors=True)
        raise _write_error(index_path, exc) from exc
    persist.checkpoint("version-written")
    _writable(index_path, lambda: persist.publish(index_path, version))
    persist.checkpoint("published")
    persist.remove_old_versions(index_path, keep=[prev.version] if prev.version else [])
    if prev.reason:
        logger.info("full build: %s", prev.reason)
    stats = IndexStats(
        index_dir=str(index_path),
        documents=len(records),
        chunks=len(all_chunks),
        embedder=emb.name,
        dimension=dim,
        built_at=built_at,
        seconds=round(time.perf_counter() - started, 3),
        chunks_embedded=chunks_embedded,
        chunks_reused=len(all_chunks) - chunks_embedded,
        full_rebuild_reason=prev.reason,
        skipped=scan.skipped,
        documents_added=changes.added,
        documents_changed=changes.changed,
        documents_removed=changes.removed,
        documents_unchanged=changes.unchanged,
    )
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


def _skipped_hashes(scan: SeedScan) -> dict[str, str]:
    return {s.source: scan.hashes[s.source] for s in scan.skipped if s.source in scan.hashes}


def index_info(
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    seeds_dir: str | os.PathLike[str] | None = DEFAULT_SEEDS_DIR,
) -> IndexInfo:
    """Describe the live index and which seeds were added, changed or removed since."""
    index_path = Path(index_dir)
    version = persist.current_version(index_path)
    manifest = persist.read_manifest(version)
    indexed = {d["source"]: d["sha256"] for d in manifest["documents"]}
    known = {**manifest.get("skipped_sha256", {}), **indexed}
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    if seeds_dir is not None and Path(seeds_dir).is_dir():
        now = hash_seeds(seeds_dir)
        added = sorted(s for s in now if s not in known)
        changed = sorted(s for s in now if s in known and known[s] != now[s])
        removed = sorted(s for s in known if s not in now)
    counts = manifest.get("counts", {})
    return IndexInfo(
        index_dir=str(index_path),
        version=version.name,
        documents=len(indexed),
        chunks=int(counts.get("chunks", 0)),
        sentences=int(counts.get("sentences", 0)),
        embedder=manifest["embedder"]["name"],
        dimension=int(manifest["embedder"]["dimension"]),
        built_at=manifest.get("built_at", ""),
        package_version=manifest.get("package_version", ""),
        skipped=tuple(SkippedSeed(s["source"], s["reason"]) for s in manifest.get("skipped", [])),
        seeds_added=tuple(added),
        seeds_changed=tuple(changed),
        seeds_removed=tuple(removed),
    )


def needs_build(
    seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR,
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    embedder: str | None = None,
) -> str | None:
    """Why the index must be (re)built before use, or ``None`` when it is current."""
    try:
        info = index_info(index_dir, seeds_dir)
        stored = persist.read_current(Path(index_dir))
    except IndexNotFoundError:
        return "no index yet"
    except IndexCorruptError as exc:
        return f"index unreadable: {exc}"
    if embedder is not None and info.embedder != get_embedder(embedder).name:
        return f"index built with {info.embedder}, {embedder} requested"
    # Settings of this qa (chunker, sentence splitter, format, version) against the build's.
    current = settings_of(get_embedder(embedder or info.embedder), Chunker())
    change = settings_change(stored.manifest, {**current, "package_version": package_version()})
    if change:
        return change
    if info.stale:
        return (
            f"seeds changed since the last build ({len(info.seeds_added)} added, "
            f"{len(info.seeds_changed)} changed, {len(info.seeds_removed)} removed)"
        )
    return None
