"""Seed files: find them, read them safely, hash them, and read them into documents."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..config import MAX_SEED_BYTES
from ..errors import SeedError
from ..types import Document, DocumentKind, SkippedSeed
from .formats import MAX_BYTES, SUPPORTED_SUFFIXES, LocationMap, extract, kind_of
from .formats.dispatch import SUFFIX_KINDS

logger = logging.getLogger(__name__)

# ` date 2022-03 Von William Boston und Tim Higgins` — a date, then optionally the authors.
_METADATA = re.compile(
    r"^[ \t]*date[ \t]+(?P<date>\d{4}-\d{2}(?:-\d{2})?)"
    r"(?:[ \t]+(?:von|by)[ \t]+(?P<authors>[^\n]+?))?[ \t]*(?:\r?\n|$)",
    re.IGNORECASE,
)
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|\bund\b|\band\b|&)\s*", re.IGNORECASE)


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
    #: The location map of each document read in this scan, by content key (documents that
    #: were known before have none here).
    locations: Mapping[str, LocationMap] = field(default_factory=dict)

    @property
    def skipped_hashes(self) -> dict[str, str]:
        """sha256 of each skipped seed whose bytes could be read."""
        return {s.source: self.hashes[s.source] for s in self.skipped if s.source in self.hashes}


def parse_metadata(text: str) -> tuple[int, str | None, tuple[str, ...]]:
    """Return ``(body_start, date, authors)`` for a text that may open with a metadata line.

    >>> parse_metadata(" date 2022-03 Von A B und C D\\n\\nText")
    (28, '2022-03', ('A B', 'C D'))
    """
    match = _METADATA.match(text)
    if not match:
        return 0, None, ()
    authors_raw = match.group("authors") or ""
    authors = tuple(a for a in _AUTHOR_SPLIT.split(authors_raw.strip()) if a)
    body_start = match.end()
    while body_start < len(text) and text[body_start] in "\r\n":
        body_start += 1
    return body_start, match.group("date"), authors


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_seed_name(relative: PurePath) -> bool:
    """Whether a path relative to the seeds folder names a seed: visible, a seed suffix.

    The one rule the scan, the document viewer and ``qa watch`` share; the suffixes are
    those the format readers support (``qa.ingest.formats.SUPPORTED_SUFFIXES``).

    >>> is_seed_name(PurePath("de/notes.md")), is_seed_name(PurePath(".cache/x.txt"))
    (True, False)
    >>> is_seed_name(PurePath("Bericht.PDF")), is_seed_name(PurePath("bild.png"))
    (True, False)
    """
    hidden = any(part.startswith(".") for part in relative.parts)
    return not hidden and relative.suffix.lower() in SUPPORTED_SUFFIXES


def seed_byte_limit(source: str) -> int:
    """The most bytes seed ``source`` may have: 5 MiB for text and Markdown, else its format's.

    >>> seed_byte_limit("a.txt"), seed_byte_limit("b.pdf")
    (5242880, 104857600)
    """
    kind = SUFFIX_KINDS.get(PurePath(source).suffix.lower())
    if kind is None or kind in ("text", "markdown"):
        return MAX_SEED_BYTES
    return MAX_BYTES[kind]


def iter_seed_paths(seeds_dir: Path) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, source)`` for every visible seed file under ``seeds_dir``, sorted.

    Symlinked folders are never descended into (a folder linked from inside ``seeds_dir`` is
    read at its real place). Links to files or folders outside ``seeds_dir`` are yielded too,
    so that the caller reports them as skipped instead of silently ignoring them.
    """
    for dirpath, dirnames, filenames in os.walk(seeds_dir, followlinks=False):
        visible = sorted(d for d in dirnames if not d.startswith("."))
        dirnames[:] = visible
        for name in visible:
            path = Path(dirpath) / name
            if path.is_symlink() and _outside(path, seeds_dir):
                yield path, path.relative_to(seeds_dir).as_posix()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            relative = path.relative_to(seeds_dir)
            if is_seed_name(relative):
                yield path, relative.as_posix()


def _outside(path: Path, seeds_root: Path) -> bool:
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return True
    return not target.is_relative_to(seeds_root.resolve())


def _check_file(path: Path, source: str, seeds_root: Path | None) -> int:
    """The size of a seed that may be read; :class:`SeedError` for links out, folders, FIFOs."""
    if path.is_symlink() and seeds_root is not None and _outside(path, seeds_root):
        try:
            target = str(path.resolve())
        except (OSError, RuntimeError):
            target = os.readlink(path)
        raise SeedError(
            f"Seed {source} is a symlink to {target}, outside the seeds folder; it is not "
            "followed. Copy it into the seeds folder instead."
        )
    try:
        info = path.stat()
    except OSError as exc:
        raise SeedError(f"Cannot read seed {source}: {exc.strerror or exc}.") from exc
    if not stat.S_ISREG(info.st_mode):
        raise SeedError(f"Seed {source} is not a regular file; remove it from the seeds.")
    return info.st_size


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
    size = _check_file(path, source, seeds_root)
    if size > limit:
        raise _too_big(source, size, limit)
    try:
        with open(path, "rb") as handle:
            # Bounded: a file that grows after stat() still cannot exhaust memory.
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SeedError(
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


def _formats() -> str:
    """``.docx, .htm, .html, .md, .pdf or .txt``: the seed suffixes, for messages."""
    names = sorted(SUPPORTED_SUFFIXES)
    return ", ".join(names[:-1]) + " or " + names[-1]


def check_seeds_dir(seeds_dir: Path) -> None:
    if not seeds_dir.exists():
        raise SeedError(
            f"Seeds folder {seeds_dir} does not exist; create it and put {_formats()} files in it."
        )
    if not seeds_dir.is_dir():
        raise SeedError(f"Seeds path {seeds_dir} is not a folder; pass the folder of seed files.")


def scan_seeds(seeds_dir: str | os.PathLike[str], *, known: Known | None = None) -> SeedScan:
    """Read every seed under ``seeds_dir``; bad files are skipped and reported, not raised.

    Every seed's bytes are read and hashed; ``known`` (a build passes what the live index
    holds) may answer a content with the document read before or the reason it was skipped
    before, and then the file is not parsed again. Raises :class:`SeedError` when the folder
    is missing or holds no usable seed.
    """
    root = Path(seeds_dir)
    check_seeds_dir(root)
    documents: list[Document] = []
    skipped: list[SkippedSeed] = []
    hashes: dict[str, str] = {}
    locations: dict[str, LocationMap] = {}
    for path, source in iter_seed_paths(root):
        try:
            digest = _seed_hash(path, source, root)
            if digest is not None:
                hashes[source] = digest
            data = read_seed_bytes(path, source, root)
            hashes[source] = sha256_bytes(data)
            kind = kind_of(data, source)
            before = known(source, hashes[source], kind) if known is not None else None
            if isinstance(before, SkippedSeed):
                raise SeedError(before.reason)
            if before is not None:
                documents.append(before)
                continue
            document, where = extract_seed(data, source, kind=kind)
            documents.append(document)
            locations[document.content_key] = where
        except SeedError as exc:
            logger.warning("skipping seed: %s", exc)
            skipped.append(SkippedSeed(source=source, reason=str(exc)))
    if not documents:
        detail = "".join(f"\n  {s.reason}" for s in skipped)
        raise SeedError(f"No usable seeds in {root}: add {_formats()} files to it.{detail}")
    return SeedScan(
        documents=tuple(documents), skipped=tuple(skipped), hashes=hashes, locations=locations
    )


def _seed_hash(path: Path, source: str, root: Path) -> str | None:
    """The sha256 of a seed as :func:`hash_seeds` sees it, or ``None`` if it cannot be read."""
    try:
        if _check_file(path, source, root) <= seed_byte_limit(source):
            return None  # read (and hashed) in one go by the caller
        return file_sha256(path)
    except (SeedError, OSError):
        return None


def hash_seeds(seeds_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Map each readable seed's source to its sha256 (for staleness checks; reads bytes only).

    The same files as :func:`scan_seeds` reads, skipped ones included (with the same hashes),
    so that an unchanged bad seed does not make the index look stale.
    """
    root = Path(seeds_dir)
    check_seeds_dir(root)
    hashes: dict[str, str] = {}
    for path, source in iter_seed_paths(root):
        try:
            _check_file(path, source, root)
            hashes[source] = file_sha256(path)
        except (SeedError, OSError):
            continue
    return hashes
