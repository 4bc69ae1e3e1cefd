"""Index storage: versioned folders, an atomic ``CURRENT`` pointer, and verified loading.

Layout of an index folder::

    index/
      CURRENT              name of the live version folder (replaced atomically)
      .lock                held by the one build that may write
      v-<utc time>-<id>/   one version; only the live one and the one it replaced are kept
        manifest.json      format, embedder, chunker, qa version, documents (sha256, kind,
                           title, pages, ...), skipped seeds, files (bytes, sha256), the
                           version it replaces
        chunks.jsonl       one chunk a line: source, start, end, text, page, location
        sentences.jsonl    one sentence a line: source, start, end, text, page, location
        chunks.faiss       chunk vectors (IndexFlatIP, same order as chunks.jsonl)
        sentences.faiss    sentence vectors (same order as sentences.jsonl)
        sentences.latent.npz  sparse latent-term vectors of the sentences (numpy CSR arrays;
                           no rows' entries when the embedder has no latent head)
        extractions/<content key>.npz  one per distinct content: its canonical text (UTF-8)
                           and location map (numpy arrays; see ``qa.index.extractions``)

A build writes a new version folder completely (files fsynced, the manifest last), then
replaces ``CURRENT``. A reader that opens ``CURRENT`` therefore sees either the old or the new
index, never a mix, and a build killed at any point leaves the old one in place. After
publishing, the build deletes every version folder but the new one and the one it replaced
(a reader that read ``CURRENT`` just before the swap may still be opening it); folders of
killed builds go then too. No file is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..embed.latent import LatentVectors
from ..errors import IndexCorruptError, IndexNotFoundError
from ..ingest.seeds import file_sha256
from ..types import Chunk, Sentence
from .manifest import FileRecord, Manifest
from .store import VectorStore

CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
SENTENCES = "sentences.jsonl"
CHUNK_VECTORS = "chunks.faiss"
SENTENCE_VECTORS = "sentences.faiss"
SENTENCE_LATENT = "sentences.latent.npz"
_FILES = (CHUNKS, SENTENCES, CHUNK_VECTORS, SENTENCE_VECTORS, SENTENCE_LATENT)
_VERSION_PREFIX = "v-"
#: How often a reader retries when builds keep replacing the version it is opening.
_READ_ATTEMPTS = 5


def checkpoint(name: str) -> None:
    """Mark a named point of a build; does nothing.

    Fault-injection tests replace this function (in a subprocess) to kill a build exactly at
    ``"embedding"``, ``"embedded"``, ``"files-written"``, ``"version-written"`` or
    ``"published"``.
    """


@dataclass(frozen=True, slots=True)
class StoredIndex:
    """One index version, read from disk and checked."""

    path: Path
    manifest: Manifest
    chunks: tuple[Chunk, ...]
    sentences: tuple[Sentence, ...]
    chunk_store: VectorStore
    sentence_store: VectorStore
    sentence_latent: LatentVectors

    @property
    def version(self) -> str:
        return self.path.name


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")


def new_version_dir(index_dir: Path) -> Path:
    index_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
    path = index_dir / f"{_VERSION_PREFIX}{stamp}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def write_version(
    path: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    sentences: list[Sentence],
    chunk_store: VectorStore,
    sentence_store: VectorStore,
    sentence_latent: LatentVectors,
    *,
    extra: Collection[str] = (),
) -> Manifest:
    """Write every file of a version folder, then its manifest with the files' checksums.

    ``extra`` names files the caller already put into the folder (``extractions/…``); they
    are synced and checksummed with the others. Returns the manifest as written (with its
    ``files``).
    """
    _write_jsonl(path / CHUNKS, [_row(c) for c in chunks])
    _write_jsonl(path / SENTENCES, [_row(s) for s in sentences])
    chunk_store.save(path / CHUNK_VECTORS)
    sentence_store.save(path / SENTENCE_VECTORS)
    sentence_latent.save(path / SENTENCE_LATENT)
    checkpoint("files-written")
    files = {}
    for name in (*_FILES, *extra):
        _fsync_file(path / name)
        files[name] = FileRecord((path / name).stat().st_size, file_sha256(path / name))
    for folder in {(path / name).parent for name in extra} - {path}:
        _fsync_dir(folder)
    manifest = dataclasses.replace(manifest, files=files)
    tmp = path / (MANIFEST + ".tmp")
    text = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    _fsync_file(tmp)
    os.replace(tmp, path / MANIFEST)
    _fsync_dir(path)
    return manifest


def publish(index_dir: Path, version: Path) -> None:
    """Point ``CURRENT`` at ``version`` atomically."""
    tmp = index_dir / f"{CURRENT}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(version.name + "\n", encoding="utf-8")
    _fsync_file(tmp)
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def current_version(index_dir: Path) -> Path:
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        raise IndexNotFoundError(
            f"No index at {index_dir}/ — run `qa build` (or qa.build_index()) to create it."
        )
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(
            f"{pointer} is unreadable ({exc}); run `qa build` to rebuild the index."
        ) from exc
    if not name.startswith(_VERSION_PREFIX) or "/" in name or not (index_dir / name).is_dir():
        raise IndexCorruptError(
            f"{pointer} names {name!r}, which is not an index version in {index_dir}/; "
            "run `qa build` to rebuild the index."
        )
    return index_dir / name


def remove_old_versions(index_dir: Path, *, keep: Collection[str] = ()) -> list[str]:
    """Delete every version folder except the live one and those named in ``keep``.

    A build passes the version it replaced: a reader that read ``CURRENT`` just before the
    swap can still open it. Unpublished folders of killed builds go too (call this only while
    holding the build lock). Returns the names deleted.
    """
    try:
        live = current_version(index_dir).name
    except (IndexNotFoundError, IndexCorruptError):
        live = None
    keep_names = {live, *keep}
    removed = []
    for path in sorted(index_dir.glob(f"{_VERSION_PREFIX}*")):
        if path.is_dir() and path.name not in keep_names:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    for tmp in index_dir.glob(f"{CURRENT}.*.tmp"):
        tmp.unlink(missing_ok=True)
    return removed


def _row(item: Chunk | Sentence) -> dict[str, Any]:
    return {
        "source": item.source,
        "start": item.start,
        "end": item.end,
        "text": item.text,
        "page": item.page,
        "location": item.location,
    }


def _read_jsonl(path: Path, kind: type[Chunk] | type[Sentence]) -> list[Any]:
    rows = []
    line_no = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):  # noqa: B007 - used in the error
                row = json.loads(line)
                rows.append(
                    kind(
                        source=row["source"],
                        start=int(row["start"]),
                        end=int(row["end"]),
                        text=row["text"],
                        page=None if row["page"] is None else int(row["page"]),
                        location=row["location"],
                    )
                )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = f" line {line_no}" if line_no else ""
        raise IndexCorruptError(
            f"Index file {path}{where} is unreadable ({exc}); run `qa build` to rebuild."
        ) from exc
    return rows


def read_manifest(version: Path) -> Manifest:
    path = version / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(
            f"Index file {path} is missing; run `qa build` to rebuild the index."
        ) from exc
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(
            f"Index file {path} is not valid JSON ({exc}); run `qa build` to rebuild."
        ) from exc
    return Manifest.from_json(data, path)


def check_file(version: Path, name: str, expected: FileRecord | None) -> None:
    """:class:`IndexCorruptError` naming the file unless it matches its manifest entry."""
    path = version / name
    try:
        size = path.stat().st_size
        digest = file_sha256(path)
    except OSError as exc:
        raise IndexCorruptError(
            f"Index file {path} is missing or unreadable ({exc.strerror or exc}); "
            "run `qa build` to rebuild."
        ) from exc
    if expected is None or size != expected.bytes or digest != expected.sha256:
        wanted = "no entry" if expected is None else f"expected {expected.bytes}"
        raise IndexCorruptError(
            f"Index file {path} does not match its checksum in {MANIFEST} "
            f"({size} bytes, {wanted}); it is truncated or was "
            "changed. Run `qa build` to rebuild the index."
        )


def read_version(version: Path) -> StoredIndex:
    """Load and verify one version folder; every problem raises an error naming the file.

    The extraction files are not loaded here: ``qa.index.extractions`` checks each one
    against the manifest when it is needed.
    """
    manifest = read_manifest(version)
    for name in _FILES:
        check_file(version, name, manifest.files.get(name))
    chunks = _read_jsonl(version / CHUNKS, Chunk)
    sentences = _read_jsonl(version / SENTENCES, Sentence)
    chunk_store = VectorStore.load(version / CHUNK_VECTORS)
    sentence_store = VectorStore.load(version / SENTENCE_VECTORS)
    sentence_latent = LatentVectors.load(version / SENTENCE_LATENT)
    if len(sentence_latent) != len(sentences):
        raise IndexCorruptError(
            f"Index file {version / SENTENCE_LATENT} holds {len(sentence_latent)} rows, but the "
            f"index has {len(sentences)} sentences; run `qa build` to rebuild."
        )
    dimension = manifest.settings.embedder.dimension
    for name, store, rows in (
        (CHUNK_VECTORS, chunk_store, chunks),
        (SENTENCE_VECTORS, sentence_store, sentences),
    ):
        if len(store) != len(rows) or store.dimension != dimension:
            raise IndexCorruptError(
                f"Index file {version / name} holds {len(store)} vectors of dimension "
                f"{store.dimension}, but the index has {len(rows)} records of dimension "
                f"{dimension}; run `qa build` to rebuild."
            )
    return StoredIndex(
        path=version,
        manifest=manifest,
        chunks=tuple(chunks),
        sentences=tuple(sentences),
        chunk_store=chunk_store,
        sentence_store=sentence_store,
        sentence_latent=sentence_latent,
    )


def read_current(index_dir: Path) -> StoredIndex:
    """Load the live version; retry while concurrent builds replace (and delete) it mid-read."""
    for attempt in range(1, _READ_ATTEMPTS + 1):
        version = current_version(index_dir)
        try:
            return read_version(version)
        except IndexCorruptError:
            if attempt < _READ_ATTEMPTS and current_version(index_dir) != version:
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover
