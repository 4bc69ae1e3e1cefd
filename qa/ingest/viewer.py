"""Viewer: read one seed document for display, refusing anything outside the seeds folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..config import DEFAULT_SEEDS_DIR
from ..errors import SeedError
from ..types import Document, DocumentKind
from .formats import SUPPORTED_SUFFIXES, LocationMap, kind_of
from .seeds import extract_seed, is_seed_name, read_seed_bytes, sha256_bytes

#: Longer ``source`` strings are refused before touching the file system.
MAX_SOURCE_CHARS = 1000


def _refuse(source: object, why: str) -> SeedError:
    return SeedError(
        f"Cannot show {source!r}: {why}. Only seed files inside the seeds folder can be shown; "
        "pick a source from an answer."
    )


def resolve_seed(seeds_dir: str | os.PathLike[str], source: str) -> Path:
    """The path of seed ``source`` (relative to ``seeds_dir``), or :class:`SeedError`.

    Absolute paths, ``..``, hidden parts, other file types and symlinks that lead out of the
    seeds folder are refused, whatever the request says.

    >>> resolve_seed("seeds", "../etc/passwd")          # doctest: +SKIP
    Traceback (most recent call last):
    qa.errors.SeedError: Cannot show '../etc/passwd': it leaves the seeds folder. ...
    """
    if not isinstance(source, str) or not source.strip():
        raise _refuse(source, "no file name was given")
    if len(source) > MAX_SOURCE_CHARS or "\x00" in source:
        raise _refuse(source[:80], "that is not a file name")
    if "\\" in source or source.startswith("/") or PurePosixPath(source).is_absolute():
        raise _refuse(source, "absolute paths are not allowed")
    parts = PurePosixPath(source).parts
    if any(part == ".." for part in parts):
        raise _refuse(source, "it leaves the seeds folder")
    if not is_seed_name(PurePosixPath(source)):
        hidden = any(part.startswith(".") for part in parts)
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise _refuse(
            source, "hidden files are not seeds" if hidden else f"only {kinds} files are seeds"
        )
    root = Path(seeds_dir).resolve()
    path = root.joinpath(*parts)
    target = path.resolve()
    if not target.is_relative_to(root):
        raise _refuse(source, "it links to a file outside the seeds folder")
    if not target.is_file():
        raise _refuse(source, "there is no such seed file")
    return path


#: Asked with ``(source, sha256, kind)`` of a seed's bytes: the document and location map an
#: index already holds for that content (so that it is not parsed again), or ``None``.
StoredLookup = Callable[[str, str, DocumentKind], tuple[Document, LocationMap] | None]


@dataclass(frozen=True, slots=True)
class SeedView:
    """One seed read for display: its document, where its text came from, and its bytes."""

    document: Document
    locations: LocationMap
    #: The file's bytes as read through :func:`resolve_seed` (a PDF page is rendered from them).
    data: bytes


def view_seed(
    source: str,
    *,
    seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR,
    stored: StoredLookup | None = None,
) -> SeedView:
    """Read seed ``source`` safely (see :func:`resolve_seed`) with its location map.

    ``stored`` may supply the extraction an index holds for these very bytes; otherwise the
    file is read by its format's reader.
    """
    path = resolve_seed(seeds_dir, source)
    data = read_seed_bytes(path, source, Path(seeds_dir))
    kind = kind_of(data, source)
    found = stored(source, sha256_bytes(data), kind) if stored is not None else None
    document, locations = found if found is not None else extract_seed(data, source, kind=kind)
    return SeedView(document, locations, data)


def read_document(
    source: str, *, seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR
) -> Document:
    """Read seed ``source`` for display; offsets into ``Document.text`` are citation offsets.

    ``text`` is the canonical text: the file itself for .txt and .md, the extracted text for
    PDF, Word and HTML seeds, so ``text[citation.start:citation.end] == citation.quote``.

    >>> read_document("000_2e679b4798c0fccf.txt").date    # doctest: +SKIP
    '2022-03'
    """
    return view_seed(source, seeds_dir=seeds_dir).document
