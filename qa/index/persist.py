"""Index storage: versioned folders, an atomic ``CURRENT`` pointer, and checked, mapped loading.

Layout of an index folder::

    index/
      CURRENT              name of the live version folder (replaced atomically)
      .lock                held by the one build that may write
      .partial/            vectors a build has embedded so far (``qa.index.shards``); a killed
                           build's successor reuses them; deleted once a version is published
      v-<utc time>-<id>/   one version; only the live one and the one it replaced are kept
        .qa-version        marks the folder as made by a build (nothing else is ever deleted)
        manifest.json      format, embedder, chunker, qa version, documents (sha256, kind,
                           title, pages, ...), skipped seeds, the chunk index kind and
                           parameters, files (bytes, sha256), the version it replaces
        manifest.sha256    sha256 of manifest.json (written last)
        texts.bin          UTF-8 canonical text of every document, one after another
        documents.npy      per document: byte offset and length in texts.bin
        chunks.npy         per chunk: document, start, end (characters in the canonical text),
                           byte start and end (in the document's text), its sentence rows
                           [first, end), page (0: none), its location label's byte range in
                           labels.bin
        sentences.npy      per sentence: document, start, end, byte start and end, page,
                           location label's byte range
        labels.bin         UTF-8 location labels ("p. 3", "line 40"), one after another
        chunks.vectors.npy     float32 chunk vectors (L2-normalised)
        chunks.faiss       the chunk vectors' search index: IndexFlatIP, or IVF<nlist>,Flat
        sentences.vectors.npy  float16 sentence vectors
        chunks.latent.*.npy    chunks' latent-term rows (CSR: indptr, uint16 terms, float16
        sentences.latent.*.npy weights); the sentences' rows likewise
        bm25.*.npy         BM25 score matrix (bm25s's CSC arrays) and sorted vocabulary
        extractions/<content key>.npz  one per distinct content: its canonical text (UTF-8)
                           and location map (numpy arrays; see ``qa.index.extractions``)

Rows are in document order and a document's rows are contiguous. Every file but the manifest
and the FAISS index is a plain ``.npy`` array (no pickle: object arrays are refused) or raw
UTF-8, and everything is memory-mapped when loaded: opening a version reads headers, not data.

A build writes a new version folder completely (files fsynced, the manifest and its checksum
last), then replaces ``CURRENT``. A reader that opens ``CURRENT`` therefore sees either the old
or the new index, never a mix, and a build killed at any point leaves the old one in place.
After publishing, the build deletes every version folder it made (marked by ``.qa-version``)
but the new one and the one it replaced (a reader that read ``CURRENT`` just before the swap
may still be opening it); folders of killed builds go then too. Anything else in the index
folder is never touched. A version folder is created owner-only and gets the permissions of
the seeds it holds once written. No file is ever unpickled.

Checks: loading compares every file's size with the manifest and its sha256 too when the
file is at most ``FULL_CHECK_BYTES``; a larger file is checked by the sha256 of evenly spaced
blocks (``sampled_sha256``), so that opening a million-passage index does not read gigabytes.
A build reads the whole previous version before reusing its vectors (``verify="full"``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..config import INDEX_FORMAT_VERSION
from ..embed.latent import LatentVectors, segment_cosines
from ..errors import IndexCorruptError, IndexNotFoundError
from ..ingest.seeds import file_sha256
from ..types import Chunk, Sentence
from .arrays import RowReader, open_array
from .lexical import FILES as BM25_FILES
from .lexical import Bm25Index
from .manifest import FileRecord, Manifest
from .store import ChunkIndex

CURRENT = "CURRENT"
LOCK = ".lock"
MARKER = ".qa-version"
PARTIAL = ".partial"
MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.sha256"
TEXTS = "texts.bin"
LABELS = "labels.bin"
DOCUMENTS = "documents.npy"
CHUNKS = "chunks.npy"
SENTENCES = "sentences.npy"
CHUNK_VECTORS = "chunks.vectors.npy"
CHUNK_INDEX = "chunks.faiss"
SENTENCE_VECTORS = "sentences.vectors.npy"
CHUNK_LATENT = "chunks.latent"
SENTENCE_LATENT = "sentences.latent"
_LATENT_PARTS = ("indptr", "terms", "weights")
FILES = (
    TEXTS,
    LABELS,
    DOCUMENTS,
    CHUNKS,
    SENTENCES,
    CHUNK_VECTORS,
    CHUNK_INDEX,
    SENTENCE_VECTORS,
    *(f"{kind}.{part}.npy" for kind in (CHUNK_LATENT, SENTENCE_LATENT) for part in _LATENT_PARTS),
    *BM25_FILES,
)
#: Columns of chunks.npy and sentences.npy (``page`` 0: the format has no pages; ``label_*``:
#: the location label's bytes in labels.bin).
CHUNK_COLUMNS = (
    "document",
    "start",
    "end",
    "byte_start",
    "byte_end",
    "first",
    "end_row",
    "page",
    "label_start",
    "label_end",
)
SENTENCE_COLUMNS = (
    "document",
    "start",
    "end",
    "byte_start",
    "byte_end",
    "page",
    "label_start",
    "label_end",
)
#: Files up to this size are checked in full (sha256) whenever a version is loaded.
FULL_CHECK_BYTES = 32 * 1024 * 1024
_SAMPLE_BLOCKS = 16
_SAMPLE_BLOCK_BYTES = 64 * 1024
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

Verify = Literal["quick", "full"]


def checkpoint(name: str) -> None:
    """Mark a named point of a build; does nothing.

    Fault-injection tests replace this function (in a subprocess) to kill a build exactly at
    ``"embedding"`` (after each embedded batch), ``"checkpointed"`` (after embedded vectors
    were saved to ``.partial/``), ``"embedded"``, ``"files-written"``, ``"version-written"``
    or ``"published"``.
    """


def latent_files(kind: str) -> tuple[str, str, str]:
    """The three array files of a kind's latent rows (indptr, term ids, weights)."""
    indptr, terms, weights = (f"{kind}.{part}.npy" for part in _LATENT_PARTS)
    return indptr, terms, weights


@dataclass(frozen=True, eq=False)
class StoredIndex:
    """One index version, opened (memory-mapped) and checked."""

    path: Path
    manifest: Manifest
    texts: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.uint8]
    documents: npt.NDArray[np.int64]
    chunks: npt.NDArray[np.int64]
    sentences: npt.NDArray[np.int64]
    chunk_vectors: npt.NDArray[np.float32]
    sentence_vectors: npt.NDArray[np.float16]
    chunk_latent: LatentVectors
    sentence_latent: LatentVectors
    chunk_index: ChunkIndex
    bm25: Bm25Index
    #: The two vector arrays and the chunks' latent-term rows again, read with ``pread``
    #: (queries use these: see :class:`qa.index.arrays.RowReader`).
    chunk_vector_rows: RowReader
    sentence_vector_rows: RowReader
    chunk_latent_terms: RowReader
    chunk_latent_weights: RowReader

    @property
    def version(self) -> str:
        return self.path.name

    @cached_property
    def sources(self) -> tuple[str, ...]:
        return tuple(d.source for d in self.manifest.documents)

    @cached_property
    def chunk_offsets(self) -> npt.NDArray[np.int64]:
        """Row of each document's first chunk (and the total last): rows are in document order."""
        return _offsets([d.chunks for d in self.manifest.documents])

    @cached_property
    def sentence_offsets(self) -> npt.NDArray[np.int64]:
        return _offsets([d.sentences for d in self.manifest.documents])

    def __len__(self) -> int:
        return len(self.chunks)

    def _text(self, document: int, start: int, end: int) -> str:
        base = int(self.documents[document, 0])
        return bytes(self.texts[base + start : base + end]).decode("utf-8")

    def document_text(self, document: int) -> str:
        base, length = (int(v) for v in self.documents[document])
        return bytes(self.texts[base : base + length]).decode("utf-8")

    def label(self, start: int, end: int) -> str:
        """The location label in bytes ``[start, end)`` of labels.bin (``""``: none)."""
        return bytes(self.labels[start:end]).decode("utf-8")

    def chunk(self, i: int) -> Chunk:
        doc, start, end, b0, b1, _, _, page, l0, l1 = (int(v) for v in self.chunks[i])
        text = self._text(doc, b0, b1)
        where = self.label(l0, l1) or None
        return Chunk(self.sources[doc], start, end, text, page=page or None, location=where)

    def sentence(self, j: int) -> Sentence:
        doc, start, end, b0, b1, page, l0, l1 = (int(v) for v in self.sentences[j])
        text = self._text(doc, b0, b1)
        where = self.label(l0, l1) or None
        return Sentence(self.sources[doc], start, end, text, page=page or None, location=where)

    def chunk_latent_cosines(
        self, rows: Sequence[int], query: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Latent-term cosine of the chunks ``rows`` with a dense query (0 for empty rows or
        query), as :meth:`LatentVectors.rows_cosine` gives it, with the rows read by pread."""
        indptr = self.chunk_latent.indptr
        bounds = [(int(indptr[i]), int(indptr[i + 1])) for i in rows]
        return segment_cosines(
            self.chunk_latent_terms.ranges(bounds),
            self.chunk_latent_weights.ranges(bounds),
            [b - a for a, b in bounds],
            query,
        )

    def chunk_source(self, i: int) -> str:
        return self.sources[int(self.chunks[i, 0])]

    def chunk_sentences(self, i: int) -> range:
        """Rows of the sentences that overlap chunk ``i`` (contiguous, in text order)."""
        return range(int(self.chunks[i, 5]), int(self.chunks[i, 6]))

    def iter_chunks(self) -> Iterator[Chunk]:
        for i in range(len(self.chunks)):
            yield self.chunk(i)

    def iter_sentences(self) -> Iterator[Sentence]:
        for j in range(len(self.sentences)):
            yield self.sentence(j)


def _offsets(counts: list[int]) -> npt.NDArray[np.int64]:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sampled_sha256(path: Path) -> str:
    """sha256 of the file's size and of evenly spaced blocks (the first and last included)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        last = max(0, size - _SAMPLE_BLOCK_BYTES)
        for k in range(_SAMPLE_BLOCKS):
            handle.seek(last * k // (_SAMPLE_BLOCKS - 1))
            digest.update(handle.read(_SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


def file_record(path: Path) -> FileRecord:
    """Size and checksums of a written file (fsynced first)."""
    _fsync_file(path)
    size = path.stat().st_size
    sampled = sampled_sha256(path) if size > FULL_CHECK_BYTES else None
    return FileRecord(size, file_sha256(path), sampled)


def write_manifest(
    path: Path, manifest: Manifest, *, file_mode: int = 0o600, extra: Collection[str] = ()
) -> Manifest:
    """Finish a version folder whose files are written: record every file's size and
    checksums in the manifest, write it and then its own checksum (atomically, last), give
    the files ``file_mode`` (the folder is owner-only until then) and fsync the folder.

    ``extra`` names further files the build put into the folder (``extractions/…``); they are
    synced and checksummed with the others. Returns the manifest as written.
    """
    files = {name: file_record(path / name) for name in (*FILES, *extra)}
    folders = {(path / name).parent for name in extra} - {path}
    for folder in folders:
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
    for name in (*FILES, *extra, MANIFEST, MANIFEST_SHA256, MARKER):
        os.chmod(path / name, file_mode)
    for folder in folders:
        os.chmod(folder, dir_mode(file_mode))
    os.chmod(path, dir_mode(file_mode))
    _fsync_dir(path)
    return manifest


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


def check_file(
    version: Path, name: str, expected: FileRecord | None, verify: Verify = "full"
) -> None:
    """:class:`IndexCorruptError` naming the file unless it matches its manifest entry."""
    path = version / name
    try:
        size = path.stat().st_size
        if expected is not None and size == expected.bytes:
            if verify == "full" or expected.sampled_sha256 is None:
                good = file_sha256(path) == expected.sha256
            else:
                good = sampled_sha256(path) == expected.sampled_sha256
        else:
            good = False
    except OSError as exc:
        raise IndexCorruptError(
            f"Index file {path} is missing or unreadable ({exc.strerror or exc}); "
            "run `qa build` to rebuild."
        ) from exc
    if not good:
        wanted = "no entry" if expected is None else f"expected {expected.bytes}"
        raise IndexCorruptError(
            f"Index file {path} does not match its checksum in {MANIFEST} "
            f"({size} bytes, {wanted}); it is truncated or was "
            "changed. Run `qa build` to rebuild the index."
        )


def _latent(version: Path, kind: str, rows: int, dimension: int) -> LatentVectors:
    indptr_name, terms_name, weights_name = latent_files(kind)
    indptr = open_array(version / indptr_name, dtype=np.int64, rows=rows + 1)
    terms = open_array(version / terms_name, dtype=np.uint16, random=True)
    weights = open_array(version / weights_name, dtype=np.float16, rows=len(terms), random=True)
    if len(indptr) and (indptr[0] != 0 or indptr[-1] != len(terms)):
        raise IndexCorruptError(
            f"The latent-term rows in {version / indptr_name} are inconsistent; "
            "run `qa build` to rebuild the index."
        )
    return LatentVectors(indptr, terms, weights, dimension)


def read_version(version: Path, *, verify: Verify = "quick") -> StoredIndex:
    """Open and check one version folder; every problem raises an error naming the file.

    ``verify="quick"`` (loading) checks sizes, and sha256 of files up to
    ``FULL_CHECK_BYTES`` or sampled blocks of larger ones; ``"full"`` hashes every file.
    """
    manifest = read_manifest(version)
    if manifest.settings.format_version != INDEX_FORMAT_VERSION:
        raise IndexCorruptError(
            f"The index in {version} has format version {manifest.settings.format_version}; "
            f"this qa reads version {INDEX_FORMAT_VERSION}. Run `qa build` to rebuild it."
        )
    for name in FILES:
        check_file(version, name, manifest.files.get(name), verify)
    counts = manifest.counts
    dimension = manifest.settings.embedder.dimension
    latent_dimension = manifest.settings.latent.dimension if manifest.settings.latent else 0
    texts = _map_bytes(version / TEXTS)
    labels = _map_bytes(version / LABELS)
    documents = open_array(
        version / DOCUMENTS, dtype=np.int64, row_shape=(2,), rows=counts.documents
    )
    chunks = open_array(
        version / CHUNKS,
        dtype=np.int64,
        row_shape=(len(CHUNK_COLUMNS),),
        rows=counts.chunks,
        random=True,
    )
    sentences = open_array(
        version / SENTENCES,
        dtype=np.int64,
        row_shape=(len(SENTENCE_COLUMNS),),
        rows=counts.sentences,
        random=True,
    )
    chunk_vectors = open_array(
        version / CHUNK_VECTORS,
        dtype=np.float32,
        row_shape=(dimension,),
        rows=counts.chunks,
        random=True,
    )
    sentence_vectors = open_array(
        version / SENTENCE_VECTORS,
        dtype=np.float16,
        row_shape=(dimension,),
        rows=counts.sentences,
        random=True,
    )
    chunk_latent = _latent(version, CHUNK_LATENT, counts.chunks, latent_dimension)
    _, chunk_terms, chunk_weights = latent_files(CHUNK_LATENT)
    chunk_index = ChunkIndex.load(version / CHUNK_INDEX)
    if len(chunk_index) != counts.chunks or chunk_index.dimension != dimension:
        raise IndexCorruptError(
            f"Index file {version / CHUNK_INDEX} holds {len(chunk_index)} vectors of dimension "
            f"{chunk_index.dimension}, but the index has {counts.chunks} records of dimension "
            f"{dimension}; run `qa build` to rebuild."
        )
    if chunk_index.kind != manifest.chunk_index.kind:
        raise IndexCorruptError(
            f"Index file {version / CHUNK_INDEX} is a {chunk_index.kind} index, but "
            f"{MANIFEST} records {manifest.chunk_index.kind}; run `qa build` to rebuild."
        )
    return StoredIndex(
        path=version,
        manifest=manifest,
        texts=texts,
        labels=labels,
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        chunk_latent=chunk_latent,
        sentence_latent=_latent(version, SENTENCE_LATENT, counts.sentences, latent_dimension),
        chunk_index=chunk_index,
        bm25=Bm25Index.open(version, counts.chunks),
        chunk_vector_rows=RowReader(version / CHUNK_VECTORS, chunk_vectors),
        sentence_vector_rows=RowReader(version / SENTENCE_VECTORS, sentence_vectors),
        chunk_latent_terms=RowReader(version / chunk_terms, chunk_latent.indices),
        chunk_latent_weights=RowReader(version / chunk_weights, chunk_latent.values),
    )


def _map_bytes(path: Path) -> npt.NDArray[np.uint8]:
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return np.zeros(0, np.uint8)
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise IndexCorruptError(
            f"Index file {path} is missing or unreadable ({exc.strerror or exc}); "
            "run `qa build` to rebuild."
        ) from exc
    mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=np.uint8)


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
