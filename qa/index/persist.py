"""Index storage: versioned folders, an atomic ``CURRENT`` pointer, and verified loading.

Layout of an index folder::

    index/
      CURRENT              name of the live version folder (replaced atomically)
      .lock                held by the one build that may write
      v-<utc time>-<id>/   one version; only the live one and the one it replaced are kept
        .qa-version        marks the folder as made by a build (nothing else is ever deleted)
        manifest.json      format, embedder, chunker, qa version, documents (sha256, kind,
                           title, pages, ...), skipped seeds, files (bytes, sha256), the
                           version it replaces
        manifest.sha256    sha256 of manifest.json (written last)
        chunks.jsonl       one chunk a line: source, start, end, text, page, location
        sentences.jsonl    one sentence a line: source, start, end, text, page, location
        chunks.faiss       chunk vectors (IndexFlatIP, same order as chunks.jsonl)
        sentences.faiss    sentence vectors (same order as sentences.jsonl)
        sentences.latent.npz  sparse latent-term vectors of the sentences (numpy CSR arrays;
                           no rows' entries when the embedder has no latent head)
        extractions/<content key>.npz  one per distinct content: its canonical text (UTF-8)
                           and location map (numpy arrays; see ``qa.index.extractions``)

A build writes a new version folder completely (files fsynced, the manifest and its checksum
last), then replaces ``CURRENT``. A reader that opens ``CURRENT`` therefore sees either the old
or the new index, never a mix, and a build killed at any point leaves the old one in place.
After publishing, the build deletes every version folder it made (marked by ``.qa-version``)
but the new one and the one it replaced (a reader that read ``CURRENT`` just before the swap
may still be opening it); folders of killed builds go then too. Anything else in the index
folder is never touched. A version folder is created owner-only and gets the permissions of
the seeds it holds once written. No file is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
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
MARKER = ".qa-version"
MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.sha256"
CHUNKS = "chunks.jsonl"
SENTENCES = "sentences.jsonl"
CHUNK_VECTORS = "chunks.faiss"
SENTENCE_VECTORS = "sentences.faiss"
SENTENCE_LATENT = "sentences.latent.npz"
_FILES = (CHUNKS, SENTENCES, CHUNK_VECTORS, SENTENCE_VECTORS, SENTENCE_LATENT)
_VERSION_PREFIX = "v-"
#: A version folder's name as :func:`new_version_dir` makes it.
_VERSION_NAME = re.compile(r"v-\d{8}T\d{6}\.\d{6}-[0-9a-f]{8}")
_CURRENT_TMP = re.compile(r"CURRENT\.[0-9a-f]{8}\.tmp")
_MARKER_TEXT = "qa index version folder; made by `qa build`, removed by later builds\n"
#: What ``CURRENT`` may name (older builds' names included); anything else is refused unread.
_POINTER_NAME = re.compile(r"v-[A-Za-z0-9._-]{1,100}")
#: ``CURRENT`` holds one version name; more than this is not one.
_MAX_POINTER_BYTES = 256
#: Index format from which every manifest has its ``manifest.sha256``.
_CHECKSUMMED_FROM = 3
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


def dir_mode(file_mode: int) -> int:
    """A folder's permission bits for files of ``file_mode``: enterable where readable.

    >>> oct(dir_mode(0o640))
    '0o750'
    """
    return file_mode | ((file_mode & 0o444) >> 2)


def new_version_dir(index_dir: Path) -> Path:
    """Create an empty version folder, owner-only while it is written, marked as a build's."""
    index_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
    path = index_dir / f"{_VERSION_PREFIX}{stamp}-{secrets.token_hex(4)}"
    path.mkdir(mode=0o700)
    (path / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    return path


def is_own_version(path: Path) -> bool:
    """Whether ``path`` is a version folder a build made: marked, or (from builds before the
    marker) named like one and holding a qa manifest. Nothing else is ever deleted."""
    if path.is_symlink() or not path.is_dir() or not _VERSION_NAME.fullmatch(path.name):
        return False
    if (path / MARKER).is_file():
        return True
    try:
        Manifest.from_json(json.loads((path / MANIFEST).read_text(encoding="utf-8")), path)
    except (OSError, ValueError, IndexCorruptError):
        return False
    return True


def write_version(
    path: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    sentences: list[Sentence],
    chunk_store: VectorStore,
    sentence_store: VectorStore,
    sentence_latent: LatentVectors,
    *,
    file_mode: int = 0o600,
    extra: Collection[str] = (),
) -> Manifest:
    """Write every file of a version folder, then its manifest with the files' checksums and
    the manifest's own checksum; then give the files ``file_mode`` (the folder is owner-only
    until then).

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
    data = (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for name, content in (
        (MANIFEST, data),
        (MANIFEST_SHA256, (hashlib.sha256(data).hexdigest() + "\n").encode("ascii")),
    ):
        tmp = path / (name + ".tmp")
        tmp.write_bytes(content)
        _fsync_file(tmp)
        os.replace(tmp, path / name)
    for name in (*_FILES, *extra, MANIFEST, MANIFEST_SHA256, MARKER):
        os.chmod(path / name, file_mode)
    for folder in {(path / name).parent for name in extra} - {path}:
        os.chmod(folder, dir_mode(file_mode))
    os.chmod(path, dir_mode(file_mode))
    _fsync_dir(path)
    return manifest


def pointer_problem(index_dir: Path) -> str | None:
    """Why ``CURRENT`` cannot be replaced by a build (it is something a build did not make),
    or ``None``. A missing pointer, a file or a symlink (replaced, never followed) is fine."""
    try:
        info = (index_dir / CURRENT).lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{index_dir / CURRENT} cannot be inspected ({exc.strerror or exc})"
    if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
        return None
    kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
    return (
        f"{index_dir / CURRENT} is {kind}, which a build did not make and will not replace; "
        "move it out of the index folder"
    )


def publish(index_dir: Path, version: Path, *, file_mode: int = 0o600) -> None:
    """Point ``CURRENT`` at ``version`` atomically (a failed swap leaves no temporary file)."""
    tmp = index_dir / f"{CURRENT}.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(version.name + "\n", encoding="utf-8")
        os.chmod(tmp, file_mode)
        _fsync_file(tmp)
        os.replace(tmp, index_dir / CURRENT)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(index_dir)


def _read_pointer(pointer: Path) -> str:
    """The version name in ``CURRENT``; never follows a symlink nor quotes a stray file."""
    fix = "run `qa build` to rebuild the index"
    try:
        info = pointer.lstat()
    except FileNotFoundError:
        raise IndexNotFoundError(
            f"No index at {pointer.parent}/ — run `qa build` (or qa.build_index()) to create it."
        ) from None
    except OSError as exc:
        raise IndexCorruptError(f"{pointer} is unreadable ({exc.strerror}); {fix}.") from exc
    if stat.S_ISLNK(info.st_mode):
        raise IndexCorruptError(
            f"{pointer} is a symbolic link, not the plain file a build writes; {fix} "
            "(it replaces the link, not what it points to)."
        )
    if not stat.S_ISREG(info.st_mode):
        raise IndexCorruptError(f"{pointer} is not a file; move it away, then {fix}.")
    try:
        with open(pointer, "rb") as handle:
            raw = handle.read(_MAX_POINTER_BYTES + 1)
    except OSError as exc:
        raise IndexCorruptError(f"{pointer} is unreadable ({exc.strerror}); {fix}.") from exc
    text = raw.decode("utf-8", "replace")
    name = text.strip()
    if _POINTER_NAME.fullmatch(name):
        return name
    if len(raw) <= 80 and "\ufffd" not in text and text.rstrip("\n").isprintable():
        raise IndexCorruptError(
            f"{pointer} names {name!r}, which is not an index version in {pointer.parent}/; {fix}."
        )
    raise IndexCorruptError(
        f"{pointer} does not name an index version (it holds {len(raw)}"
        f"{'+' if len(raw) > _MAX_POINTER_BYTES else ''} bytes that are not a version name); "
        f"{fix}."
    )


def current_version(index_dir: Path) -> Path:
    """The live version folder named by ``CURRENT``."""
    pointer = index_dir / CURRENT
    name = _read_pointer(pointer)
    if not (index_dir / name).is_dir():
        raise IndexCorruptError(
            f"{pointer} names {name!r}, which is not an index version in {index_dir}/; "
            "run `qa build` to rebuild the index."
        )
    return index_dir / name


def remove_old_versions(index_dir: Path, *, keep: Collection[str] = ()) -> list[str]:
    """Delete every version folder a build made except the live one and those in ``keep``.

    A build passes the version it replaced: a reader that read ``CURRENT`` just before the
    swap can still open it. Unpublished folders of killed builds go too (call this only while
    holding the build lock). Folders a build did not make (see :func:`is_own_version`) stay,
    whatever their names. Returns the names deleted.
    """
    try:
        live = current_version(index_dir).name
    except (IndexNotFoundError, IndexCorruptError):
        live = None
    keep_names = {live, *keep}
    removed = []
    for path in sorted(index_dir.glob(f"{_VERSION_PREFIX}*")):
        if path.name not in keep_names and is_own_version(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    for tmp in index_dir.glob(f"{CURRENT}.*.tmp"):
        if _CURRENT_TMP.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
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
    """The version's manifest, checked against ``manifest.sha256`` and field by field."""
    path = version / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise IndexCorruptError(
            f"Index file {path} is missing; run `qa build` to rebuild the index."
        ) from exc
    except OSError as exc:
        raise IndexCorruptError(
            f"Index file {path} is unreadable ({exc.strerror or exc}); run `qa build` to rebuild."
        ) from exc
    try:
        expected: str | None = (version / MANIFEST_SHA256).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        expected = None
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(
            f"Index file {version / MANIFEST_SHA256} is unreadable ({exc}); run `qa build` to "
            "rebuild."
        ) from exc
    if expected is not None and hashlib.sha256(raw).hexdigest() != expected:
        raise IndexCorruptError(
            f"Index file {path} does not match its checksum in {MANIFEST_SHA256}; it is "
            "truncated or was changed. Run `qa build` to rebuild the index."
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise IndexCorruptError(
            f"Index file {path} is not valid JSON ({exc}); run `qa build` to rebuild."
        ) from exc
    manifest = Manifest.from_json(data, path)
    if expected is None and manifest.settings.format_version >= _CHECKSUMMED_FROM:
        raise IndexCorruptError(
            f"Index file {version / MANIFEST_SHA256} is missing; run `qa build` to rebuild."
        )
    return manifest


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
