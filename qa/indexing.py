"""Indexing stage: (re)build an index from the seeds, incrementally and under a lock."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from . import persist
from .chunking import Chunker
from .config import DEFAULT_INDEX_DIR, DEFAULT_SEEDS_DIR, INDEX_FORMAT_VERSION
from .documents import hash_seeds, scan_seeds
from .embedding import Embedder, Vectors, get_embedder
from .errors import BuildLockedError, IndexCorruptError, IndexNotFoundError
from .sentences import detect_language, split_sentences
from .store import VectorStore
from .types import BuildProgress, Chunk, Document, IndexInfo, IndexStats, Sentence, SkippedSeed

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[BuildProgress], None]

_BATCH = 32


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@dataclass(slots=True)
class _Reusable:
    """Chunks, sentences and their vectors of one document, keyed by its sha256."""

    chunks: list[Chunk]
    chunk_vectors: Vectors
    sentences: list[Sentence]
    sentence_vectors: Vectors


def _settings(embedder: Embedder, chunker: Chunker) -> dict[str, Any]:
    return {
        "format_version": INDEX_FORMAT_VERSION,
        "embedder": {"name": embedder.name, "dimension": embedder.dimension},
        "chunker": chunker.settings,
        "sentences": {"splitter": "pysbd", "languages": ["de", "en"]},
    }


def _previous(index_dir: Path, settings: dict[str, Any]) -> tuple[dict[str, _Reusable], str | None]:
    """Vectors of the previous version by document sha256, or why none can be reused."""
    try:
        stored = persist.read_current(index_dir)
    except IndexNotFoundError:
        return {}, "no previous index"
    except IndexCorruptError as exc:
        logger.warning("previous index unusable, rebuilding from the seeds: %s", exc)
        return {}, f"previous index unreadable: {exc}"
    manifest = stored.manifest
    for key in ("format_version", "embedder", "chunker", "sentences"):
        if manifest.get(key) != settings[key]:
            return {}, (
                f"{key} changed ({manifest.get(key)!r} -> {settings[key]!r}); rebuilding everything"
            )
    chunk_vectors = stored.chunk_store.vectors()
    sentence_vectors = stored.sentence_store.vectors()
    chunk_rows: dict[str, list[int]] = {}
    for i, chunk in enumerate(stored.chunks):
        chunk_rows.setdefault(chunk.source, []).append(i)
    sentence_rows: dict[str, list[int]] = {}
    for i, sentence in enumerate(stored.sentences):
        sentence_rows.setdefault(sentence.source, []).append(i)
    reusable: dict[str, _Reusable] = {}
    for doc in manifest["documents"]:
        rows = chunk_rows.get(doc["source"], [])
        srows = sentence_rows.get(doc["source"], [])
        reusable[doc["sha256"]] = _Reusable(
            [stored.chunks[i] for i in rows],
            chunk_vectors[rows],
            [stored.sentences[i] for i in srows],
            sentence_vectors[srows],
        )
    return reusable, None


def _retarget(items: Sequence[Any], source: str) -> list[Any]:
    """The same records under a new source name (a renamed file keeps its vectors)."""
    return [
        type(item)(source=source, start=item.start, end=item.end, text=item.text) for item in items
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

    Only new and changed seeds are embedded; unchanged ones reuse their stored vectors.
    Bad seeds are skipped with a warning (see ``IndexStats.skipped``). A change of embedder or
    chunker settings rebuilds everything. ``lock_timeout`` is how long to wait for another
    build (``None`` waits, ``0`` fails at once with :class:`BuildLockedError`).

    >>> stats = build_index("seeds", "index")            # doctest: +SKIP
    >>> stats.documents, stats.chunks_embedded            # doctest: +SKIP
    (1, 3)
    """
    started = time.perf_counter()
    seeds_path, index_path = Path(seeds_dir), Path(index_dir)
    emb = get_embedder(embedder)
    chunker = chunker or Chunker()
    index_path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_path / persist.LOCK))
    try:
        lock.acquire(timeout=-1 if lock_timeout is None else lock_timeout)
    except Timeout as exc:
        raise BuildLockedError(
            f"Another build is writing {index_path}/ (lock {index_path / persist.LOCK}); "
            "wait for it to finish, then run `qa build` again."
        ) from exc
    try:
        return _build_locked(seeds_path, index_path, emb, chunker, full, progress, started)
    finally:
        lock.release()


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
    settings = _settings(emb, chunker)
    reusable: dict[str, _Reusable] = {}
    reason: str | None = "full rebuild requested"
    if not full:
        reusable, reason = _previous(index_path, settings)
    try:
        old_docs = {
            d["source"]: d["sha256"]
            for d in persist.read_manifest(persist.current_version(index_path))["documents"]
        }
    except (IndexNotFoundError, IndexCorruptError):
        old_docs = {}

    plans: list[tuple[Document, list[Chunk] | None]] = []
    for doc in scan.documents:
        plans.append((doc, None if doc.sha256 in reusable else chunker.split(doc)))
    total = sum(len(chunks) for _, chunks in plans if chunks is not None)
    done = 0
    embed_started = time.perf_counter()

    all_chunks: list[Chunk] = []
    all_sentences: list[Sentence] = []
    chunk_parts: list[Vectors] = []
    sentence_parts: list[Vectors] = []
    records = []
    reused = 0
    for doc, chunks in plans:
        if chunks is None:
            old = reusable[doc.sha256]
            chunks, sentences = (
                _retarget(old.chunks, doc.source),
                _retarget(old.sentences, doc.source),
            )
            chunk_vecs, sentence_vecs = old.chunk_vectors, old.sentence_vectors
            reused += len(chunks)
        else:
            language = detect_language(doc.body[:2000])
            sentences = split_sentences(doc.text, doc.source, doc.body_start, language=language)
            vec_parts = []
            for i in range(0, len(chunks), _BATCH):
                batch = chunks[i : i + _BATCH]
                vec_parts.append(emb.embed_passages([c.text for c in batch]))
                done += len(batch)
                if progress is not None:
                    progress(BuildProgress(done, total, time.perf_counter() - embed_started))
            chunk_vecs = np.concatenate(vec_parts)
            sentence_vecs = emb.embed_passages([s.text for s in sentences])
        all_chunks.extend(chunks)
        all_sentences.extend(sentences)
        chunk_parts.append(chunk_vecs)
        sentence_parts.append(sentence_vecs)
        records.append(_document_record(doc, len(chunks), len(sentences)))

    dim = emb.dimension
    chunk_store = VectorStore.from_vectors(
        np.concatenate(chunk_parts) if chunk_parts else np.zeros((0, dim), np.float32), dim
    )
    sentence_store = VectorStore.from_vectors(
        np.concatenate(sentence_parts) if sentence_parts else np.zeros((0, dim), np.float32), dim
    )
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    new_docs = {d.source: d.sha256 for d in scan.documents}
    manifest = {
        **settings,
        "package_version": package_version(),
        "built_at": built_at,
        "build_seconds": round(time.perf_counter() - started, 3),
        "documents": records,
        "skipped": [{"source": s.source, "reason": s.reason} for s in scan.skipped],
        "skipped_sha256": _skipped_hashes(seeds_path, scan.skipped),
        "counts": {
            "documents": len(records),
            "chunks": len(all_chunks),
            "sentences": len(all_sentences),
        },
    }
    version = persist.new_version_dir(index_path)
    persist.write_version(version, manifest, all_chunks, all_sentences, chunk_store, sentence_store)
    persist.publish(index_path, version)
    persist.remove_old_versions(index_path)
    if reason:
        logger.info("full build: %s", reason)
    stats = IndexStats(
        index_dir=str(index_path),
        documents=len(records),
        chunks=len(all_chunks),
        embedder=emb.name,
        dimension=dim,
        built_at=built_at,
        seconds=round(time.perf_counter() - started, 3),
        documents_added=sum(s not in old_docs for s in new_docs),
        documents_changed=sum(s in old_docs and old_docs[s] != h for s, h in new_docs.items()),
        documents_removed=sum(s not in new_docs for s in old_docs),
        documents_unchanged=sum(old_docs.get(s) == h for s, h in new_docs.items()),
        chunks_embedded=total,
        chunks_reused=reused,
        full_rebuild_reason=reason,
        skipped=scan.skipped,
    )
    logger.info(
        "built %s: %d documents, %d chunks (%d embedded, %d reused) in %.2fs",
        index_path,
        stats.documents,
        stats.chunks,
        total,
        reused,
        stats.seconds,
    )
    return stats


def _skipped_hashes(seeds_path: Path, skipped: tuple[SkippedSeed, ...]) -> dict[str, str]:
    hashes = hash_seeds(seeds_path)
    return {s.source: hashes[s.source] for s in skipped if s.source in hashes}


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
        persist.read_current(Path(index_dir))
    except IndexNotFoundError:
        return "no index yet"
    except IndexCorruptError as exc:
        return f"index unreadable: {exc}"
    if embedder is not None and info.embedder != get_embedder(embedder).name:
        return f"index built with {info.embedder}, {embedder} requested"
    if info.stale:
        return (
            f"seeds changed since the last build ({len(info.seeds_added)} added, "
            f"{len(info.seeds_changed)} changed, {len(info.seeds_removed)} removed)"
        )
    return None
