"""Seed files: find them, read them safely, hash them, and read them into documents."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..config import MAX_SEED_BYTES
from ..errors import SeedError
from ..types import Document, DocumentKind, SkippedSeed
from .formats import MAX_BYTES, SUPPORTED_SUFFIXES, LocationMap, extract, kind_of
from .formats.dispatch import SUFFIX_KINDS
from .formats.metadata import parse_metadata

logger = logging.getLogger(__name__)

#: Index files get these permission bits when the seeds' cannot be read (owner only).
PRIVATE_FILE_MODE = 0o600

#: What a caller already knows of a seed's content, asked with ``(source, sha256, kind)``: the
#: document as read before (not parsed again), the reason it was skipped before, or ``None``.
Known = Callable[[str, str, DocumentKind], Document | SkippedSeed | None]


@dataclass(frozen=True, slots=True)
class SeedScan:
    """The seed files found under a folder: readable documents and the skipped ones."""

    documents: tuple[Document, ...]
    skipped: tuple[SkippedSeed, ...]
    #: sha256 of every seed whose bytes could be read, skipped ones included.
    hashes: dict[str, str] = field(default_factory=dict)
    #: Files and folders (``name/``) that could not be read just now (permissions, I/O):
    #: a build keeps what the index holds of them instead of taking them as deleted.
    unreadable: tuple[SkippedSeed, ...] = ()
    #: Permission bits for index files: no more open than the least open seed read.
    file_mode: int = PRIVATE_FILE_MODE
    #: The location map of each document read in this scan, by content key (documents that
    #: were known before have none here).
    locations: Mapping[str, LocationMap] = field(default_factory=dict)

    @property
    def skipped_hashes(self) -> dict[str, str]:
        """sha256 of each skipped seed whose bytes could be read."""
        return {s.source: self.hashes[s.source] for s in self.skipped if s.source in self.hashes}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _looks_like_seed(relative: PurePath) -> bool:
    hidden = any(part.startswith(".") for part in relative.parts)
    return not hidden and relative.suffix.lower() in SUPPORTED_SUFFIXES


def seed_name_problem(relative: PurePath) -> str | None:
    """Why a seed's name cannot be indexed and shown safely, or ``None``.

    A backslash reads as a folder separator on Windows (and the viewer refuses it as one),
    control characters break logs and JSON consumers, and a name that is not UTF-8 cannot be
    written into the manifest or asked for over HTTP.

    >>> seed_name_problem(PurePath("a\\\\b.txt"))
    'its name holds a backslash'
    """
    name = relative.as_posix()
    if "\\" in name:
        return "its name holds a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "its name holds a control character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        return "its name is not valid UTF-8"
    return None


def is_seed_name(relative: PurePath) -> bool:
    """Whether a path relative to the seeds folder names a seed: visible, a seed suffix, and
    a name qa can show (see :func:`seed_name_problem`).

    The one rule the scan, the document viewer and ``qa watch`` share; the suffixes are
    those the format readers support (``qa.ingest.formats.SUPPORTED_SUFFIXES``).

    >>> is_seed_name(PurePath("de/notes.md")), is_seed_name(PurePath(".cache/x.txt"))
    (True, False)
    >>> is_seed_name(PurePath("Bericht.PDF")), is_seed_name(PurePath("bild.png"))
    (True, False)
    """
    return _looks_like_seed(relative) and seed_name_problem(relative) is None


def display_name(relative: str) -> str:
    """A seed's relative name as printable, JSON-safe text (bytes that are not UTF-8 are
    shown as ``\\xNN``)."""
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def seed_byte_limit(source: str) -> int:
    """The most bytes seed ``source`` may have: 5 MiB for text and Markdown, else its format's.

    >>> seed_byte_limit("a.txt"), seed_byte_limit("b.pdf")
    (5242880, 104857600)
    """
    kind = SUFFIX_KINDS.get(PurePath(source).suffix.lower())
    if kind is None or kind in ("text", "markdown"):
        return MAX_SEED_BYTES
    return MAX_BYTES[kind]


def iter_seed_paths(
    seeds_dir: Path, unreadable: list[SkippedSeed] | None = None
) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, source)`` for every visible seed file under ``seeds_dir``, sorted.

    Symlinked folders are never descended into (a folder linked from inside ``seeds_dir`` is
    read at its real place). Links to files or folders outside ``seeds_dir`` are yielded too,
    and so are seeds whose names qa cannot show, so that the caller reports them as skipped
    instead of silently ignoring them. Folders that cannot be listed are appended to
    ``unreadable`` (as ``name/``); the seeds folder itself unreadable is a :class:`SeedError`.
    """

    def failed(exc: OSError) -> None:
        folder = Path(exc.filename or seeds_dir)
        if folder == seeds_dir:
            raise SeedError(
                f"Cannot read the seeds folder {seeds_dir}: {exc.strerror or exc}; "
                "check its permissions."
            ) from exc
        source = display_name(folder.relative_to(seeds_dir).as_posix()) + "/"
        reason = (
            f"Cannot read seed folder {source}: {exc.strerror or exc}; check its permissions. "
            "The documents the index holds from it are kept until it can be read."
        )
        logger.warning("%s", reason)
        if unreadable is not None:
            unreadable.append(SkippedSeed(source=source, reason=reason))

    for dirpath, dirnames, filenames in os.walk(seeds_dir, onerror=failed, followlinks=False):
        visible = sorted(d for d in dirnames if not d.startswith("."))
        dirnames[:] = visible
        for name in visible:
            path = Path(dirpath) / name
            if path.is_symlink() and _outside(path, seeds_dir):
                yield path, display_name(path.relative_to(seeds_dir).as_posix())
        for name in sorted(filenames):
            path = Path(dirpath) / name
            relative = path.relative_to(seeds_dir)
            if _looks_like_seed(relative):
                yield path, display_name(relative.as_posix())


def _outside(path: Path, seeds_root: Path) -> bool:
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return True
    return not target.is_relative_to(seeds_root.resolve())


class UnreadableSeedError(SeedError):
    """A seed exists but cannot be read just now (permissions, I/O): not the same as deleted."""


def _check_file(path: Path, source: str, seeds_root: Path | None) -> os.stat_result:
    """The ``stat`` of a seed that may be read; :class:`SeedError` for links out, loops,
    folders and FIFOs, :class:`UnreadableSeedError` when permissions or I/O stop it."""
    if path.is_symlink() and seeds_root is not None and _outside(path, seeds_root):
        try:
            target = str(path.resolve())
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
            raise SeedError(
                f"Seed {source} is a symlink loop (it never reaches a file); remove it."
            ) from None
        raise SeedError(
            f"Seed {source} is a symlink to {target}, outside the seeds folder; it is not "
            "followed. Copy it into the seeds folder instead."
        )
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SeedError(
                f"Seed {source} is a symlink loop (it never reaches a file); remove it."
            ) from exc
        if isinstance(exc, FileNotFoundError):
            raise SeedError(f"Cannot read seed {source}: {exc.strerror or exc}.") from exc
        raise UnreadableSeedError(
            f"Cannot read seed {source}: {exc.strerror or exc}; check its permissions."
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise SeedError(f"Seed {source} is not a regular file; remove it from the seeds.")
    return info


def _too_big(source: str, size: int, limit: int) -> SeedError:
    suffix = PurePath(source).suffix.lower()
    kind = "" if limit == MAX_SEED_BYTES else f" for {suffix} seeds"
    return SeedError(
        f"Seed {source} is {size:,} bytes, over the {limit:,}-byte limit{kind}; "
        "split it into smaller files."
    )


def read_seed_bytes(path: Path, source: str, seeds_root: Path | None) -> bytes:
    """A seed's bytes, bounded by :func:`seed_byte_limit`; :class:`SeedError` naming the file."""
    limit = seed_byte_limit(source)
    size = _check_file(path, source, seeds_root).st_size
    if size > limit:
        raise _too_big(source, size, limit)
    try:
        with open(path, "rb") as handle:
            # Bounded: a file that grows after stat() still cannot exhaust memory.
            data = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise SeedError(f"Cannot read seed {source}: {exc.strerror or exc}.") from exc
    except OSError as exc:
        raise UnreadableSeedError(
            f"Cannot read seed {source}: {exc.strerror or exc}; check its permissions."
        ) from exc
    if len(data) > limit:
        raise _too_big(source, len(data), limit)
    return data


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (seeds and index files alike)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_seed(path: Path, source: str, *, seeds_root: Path | None = None) -> Document:
    """Read one seed file; raise :class:`SeedError` naming the file when it cannot be used."""
    return extract_seed(read_seed_bytes(path, source, seeds_root), source)[0]


def extract_seed(
    data: bytes, source: str, *, kind: DocumentKind | None = None
) -> tuple[Document, LocationMap]:
    """The :class:`Document` of a seed's bytes and where its text came from.

    The format readers (``qa.ingest.formats``) give the canonical text; for .txt and .md it is
    the file's own text, so offsets are file offsets. Title, authors and date come from the
    file's properties (PDF/XMP, Word core properties, HTML ``<meta>``, YAML front matter), else
    from a metadata line (``date 2022-03 Von A und B``) opening the text, which the body skips.
    Raises :class:`SeedError` naming the file when it cannot be used.
    """
    extraction = extract(data, source, kind=kind)
    text, body_start = extraction.text, extraction.body_start
    date, authors = extraction.date, extraction.authors
    if extraction.kind not in ("text", "markdown"):  # the text reader applies the line itself
        line_end, line_date, line_authors = parse_metadata(text[body_start:])
        if line_end:
            body_start += line_end
            date, authors = date or line_date, authors or line_authors
            if not text[body_start:].strip():
                raise SeedError(
                    f"Seed {source} has metadata but no text; add text or remove the file."
                )
    document = Document(
        source=source,
        text=text,
        sha256=sha256_bytes(data),
        body_start=body_start,
        date=date,
        authors=authors,
        kind=extraction.kind,
        title=extraction.title,
        pages=extraction.pages,
    )
    return document, extraction.locations


def seed_formats() -> str:
    """``.docx, .htm, .html, .md, .pdf or .txt``: the seed suffixes, for messages."""
    names = sorted(SUPPORTED_SUFFIXES)
    return ", ".join(names[:-1]) + " or " + names[-1]


def check_seeds_dir(seeds_dir: Path) -> None:
    if not seeds_dir.exists():
        raise SeedError(
            f"Seeds folder {seeds_dir} does not exist; "
            f"create it and put {seed_formats()} files in it."
        )
    if not seeds_dir.is_dir():
        raise SeedError(f"Seeds path {seeds_dir} is not a folder; pass the folder of seed files.")


def index_file_mode(seed_modes: list[int], root_mode: int | None) -> int:
    """Permission bits for index files: what every seed read allows (the index holds their
    text), narrowed to the classes that can enter the seeds folder; always owner read/write.

    >>> oct(index_file_mode([0o100644, 0o100600], 0o40755))
    '0o600'
    >>> oct(index_file_mode([0o100644], 0o40750))
    '0o640'
    """
    if not seed_modes:
        return PRIVATE_FILE_MODE
    mode = 0o666
    for seed_mode in seed_modes:
        mode &= seed_mode
    if root_mode is not None:
        for shift in (3, 0):  # group, others: no way into the folder, no access
            if not root_mode & (0o1 << shift):
                mode &= ~(0o7 << shift)
    return (mode & 0o066) | PRIVATE_FILE_MODE


def scan_seeds(seeds_dir: str | os.PathLike[str], *, known: Known | None = None) -> SeedScan:
    """Read every seed under ``seeds_dir``; bad files are skipped and reported, not raised.

    Every seed's bytes are read and hashed; ``known`` (a build passes what the live index
    holds) may answer a content with the document read before or the reason it was skipped
    before, and then the file is not parsed again. Files and folders that exist but cannot be
    read just now are reported in ``SeedScan.unreadable`` (with a warning) rather than as
    skipped, so that a build keeps their documents. Raises :class:`SeedError` when the folder
    is missing or unreadable or holds no usable seed.
    """
    root = Path(seeds_dir)
    check_seeds_dir(root)
    documents: list[Document] = []
    skipped: list[SkippedSeed] = []
    unreadable: list[SkippedSeed] = []
    hashes: dict[str, str] = {}
    modes: list[int] = []
    locations: dict[str, LocationMap] = {}
    for path, source in iter_seed_paths(root, unreadable):
        try:
            digest = _seed_hash(path, source, root)
            if digest is not None:
                hashes[source] = digest
            info = _check_file(path, source, root)
            data = read_seed_bytes(path, source, root)
            hashes[source] = sha256_bytes(data)
            problem = seed_name_problem(path.relative_to(root))
            if problem:
                raise SeedError(f"Seed {source} is not indexed: {problem}; rename the file.")
            kind = kind_of(data, source)
            before = known(source, hashes[source], kind) if known is not None else None
            if isinstance(before, SkippedSeed):
                raise SeedError(before.reason)
            modes.append(info.st_mode)
            if before is not None:
                documents.append(before)
                continue
            document, where = extract_seed(data, source, kind=kind)
            documents.append(document)
            locations[document.content_key] = where
        except UnreadableSeedError as exc:
            logger.warning("cannot read seed: %s", exc)
            unreadable.append(SkippedSeed(source=source, reason=str(exc)))
        except SeedError as exc:
            logger.warning("skipping seed: %s", exc)
            skipped.append(SkippedSeed(source=source, reason=str(exc)))
    if not documents and not unreadable:
        detail = "".join(f"\n  {s.reason}" for s in skipped)
        raise SeedError(f"No usable seeds in {root}: add {seed_formats()} files to it.{detail}")
    try:
        root_mode: int | None = root.stat().st_mode
    except OSError:
        root_mode = None
    return SeedScan(
        documents=tuple(documents),
        skipped=tuple(skipped),
        hashes=hashes,
        unreadable=tuple(unreadable),
        file_mode=index_file_mode(modes, root_mode),
        locations=locations,
    )


def is_under(source: str, unreadable: tuple[SkippedSeed, ...]) -> bool:
    """Whether seed ``source`` is one of the unreadable files or inside an unreadable folder
    (``""`` stands for the whole seeds folder)."""
    return any(
        source == u.source
        or u.source == ""
        or (u.source.endswith("/") and source.startswith(u.source))
        for u in unreadable
    )


def _seed_hash(path: Path, source: str, root: Path) -> str | None:
    """The sha256 of a seed as :func:`hash_seeds` sees it, or ``None`` if it cannot be read."""
    try:
        if _check_file(path, source, root).st_size <= seed_byte_limit(source):
            return None  # read (and hashed) in one go by the caller
        return file_sha256(path)
    except (SeedError, OSError):
        return None


@dataclass(frozen=True, slots=True)
class SeedHashes:
    """The sha256 of each readable seed, and the files and folders that cannot be read now."""

    hashes: dict[str, str]
    unreadable: tuple[SkippedSeed, ...] = ()


def seed_hashes(seeds_dir: str | os.PathLike[str]) -> SeedHashes:
    """Each readable seed's sha256 (for staleness checks; reads bytes only), and what could
    not be read.

    The same files as :func:`scan_seeds` reads, skipped ones included (with the same hashes),
    so that an unchanged bad seed does not make the index look stale.
    """
    root = Path(seeds_dir)
    check_seeds_dir(root)
    hashes: dict[str, str] = {}
    unreadable: list[SkippedSeed] = []
    for path, source in iter_seed_paths(root, unreadable):
        try:
            _check_file(path, source, root)
            hashes[source] = file_sha256(path)
        except UnreadableSeedError as exc:
            unreadable.append(SkippedSeed(source=source, reason=str(exc)))
        except FileNotFoundError:
            continue
        except OSError as exc:
            reason = f"Cannot read seed {source}: {exc.strerror or exc}; check its permissions."
            unreadable.append(SkippedSeed(source=source, reason=reason))
        except SeedError:
            continue
    return SeedHashes(hashes, tuple(unreadable))


def hash_seeds(seeds_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Map each readable seed's source to its sha256 (see :func:`seed_hashes`)."""
    return seed_hashes(seeds_dir).hashes
