"""Viewer: read one seed document for display, refusing anything outside the seeds folder."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..config import DEFAULT_SEEDS_DIR
from ..errors import SeedError
from ..types import Document, DocumentKind
from .formats import SUPPORTED_SUFFIXES, LocationMap, kind_of
from .seeds import extract_seed, is_seed_name, read_seed_bytes, seed_name_problem, sha256_bytes

#: Longer ``source`` strings are refused before touching the file system.
MAX_SOURCE_CHARS = 1000
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")


def _refuse(source: object, why: str) -> SeedError:
    shown = repr(source)
    if len(shown) > 80:
        shown = shown[:79] + "…"
    return SeedError(
        f"Cannot show {shown}: {why}. Only seed files inside the seeds folder can be shown; "
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
    if not isinstance(source, str):
        raise _refuse(type(source).__name__, "a file name is text")
    if not source.strip():
        raise _refuse(source, "no file name was given")
    if len(source) > MAX_SOURCE_CHARS or "\x00" in source:
        raise _refuse(source, "that is not a file name")
    if source.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(source):
        raise _refuse(source, "absolute paths are not allowed")
    parts = PurePosixPath(source).parts
    if any(part == ".." for part in parts):
        raise _refuse(source, "it leaves the seeds folder")
    problem = seed_name_problem(PurePosixPath(source))
    if problem:  # the scan skips such names too, so no indexed source has one
        raise _refuse(source, problem)
    if not is_seed_name(PurePosixPath(source)):
        hidden = any(part.startswith(".") for part in parts)
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise _refuse(
            source, "hidden files are not seeds" if hidden else f"only {kinds} files are seeds"
        )
    root = Path(seeds_dir).resolve()
    path = root.joinpath(*parts)
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        raise _refuse(source, "it is a symlink loop") from None
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
