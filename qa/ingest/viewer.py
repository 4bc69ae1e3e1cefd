"""Viewer: read one seed document for display, refusing anything outside the seeds folder."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..config import DEFAULT_SEEDS_DIR, SEED_SUFFIXES
from ..errors import SeedError
from ..types import Document
from .seeds import is_seed_name, read_seed

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
        kinds = ", ".join(sorted(SEED_SUFFIXES))
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


def read_document(
    source: str, *, seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR
) -> Document:
    """Read seed ``source`` for display; offsets into ``Document.text`` are file offsets.

    >>> read_document("000_2e679b4798c0fccf.txt").date    # doctest: +SKIP
    '2022-03'
    """
    path = resolve_seed(seeds_dir, source)
    return read_seed(path, source, seeds_root=Path(seeds_dir))
