"""Choosing a reader for a seed by its extension and its magic bytes, and calling it."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Final

from ...errors import SeedError
from .extraction import Extraction, Kind
from .limits import MAX_DOCX_BYTES, MAX_HTML_BYTES, MAX_PDF_BYTES, MAX_TEXT_BYTES
from .sniff import sniff

logger = logging.getLogger(__name__)

#: What each supported extension promises.
SUFFIX_KINDS: Final[dict[str, Kind]] = {
    ".txt": "text",
    ".md": "markdown",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
}
SUPPORTED_SUFFIXES: Final = frozenset(SUFFIX_KINDS)
#: The largest input each kind of seed may be; a caller may bound files by these.
MAX_BYTES: Final[dict[Kind, int]] = {
    "text": MAX_TEXT_BYTES,
    "markdown": MAX_TEXT_BYTES,
    "pdf": MAX_PDF_BYTES,
    "docx": MAX_DOCX_BYTES,
    "html": MAX_HTML_BYTES,
}
_NAMES: Final[dict[Kind, str]] = {
    "text": "a text file",
    "markdown": "a Markdown file",
    "pdf": "a PDF",
    "docx": "a Word .docx document",
    "html": "an HTML page",
}
_PLURALS: Final[dict[Kind, str]] = {
    "text": "text files",
    "markdown": "Markdown files",
    "pdf": "PDFs",
    "docx": "Word documents",
    "html": "HTML pages",
}


def kind_of(data: bytes, source: str) -> Kind:
    """The reader for ``data``: its real format where the extension lies, else a SeedError.

    A PDF, a Word document or an HTML page under another supported extension is read as what
    it is (with a warning): the bytes cannot be misread, and the user loses nothing. Images,
    archives, old Office files and other binaries are refused, and so is plain text named
    .pdf or .docx (it would have been read as garbage before this check).
    """
    suffix = PurePosixPath(source).suffix.lower()
    declared = SUFFIX_KINDS.get(suffix)
    if declared is None:
        raise SeedError(
            f"Seed {source} has an unsupported extension {suffix or '(none)'!r}; supported: "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))}."
        )
    actual, what = sniff(data)
    kind: Kind | None
    if actual == "pdf":
        kind = "pdf"
    elif actual == "zip":
        # A .docx is checked by its reader, which says what is wrong with it; under another
        # name only a real Word document is read as one.
        kind = "docx" if declared == "docx" or _is_word(data) else None
    elif actual == "binary":
        kind = None
    elif actual == "html":
        # Markdown and text may legitimately hold HTML; only other binary kinds are re-read.
        kind = declared if declared in ("text", "markdown", "html") else "html"
    else:
        kind = declared if declared in ("text", "markdown", "html") else None
    if kind is None:
        raise SeedError(
            f"Seed {source} is named {suffix} but is {what}, not {_NAMES[declared]}; "
            "remove it or save it in a supported format."
        )
    if kind != declared:
        logger.warning("Seed %s is named %s but is %s; it is read as such.", source, suffix, what)
    return kind


def _is_word(data: bytes) -> bool:
    """Whether a zip's directory (not its content) names a Word document's main part."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _reader(kind: Kind) -> Callable[[bytes, str], Extraction]:
    # Imported on demand: each reader pulls in its own heavy library (PDFium, lxml, ...).
    if kind == "pdf":
        from .pdf_reader import read_pdf

        return read_pdf
    if kind == "docx":
        from .docx_reader import read_docx

        return read_docx
    if kind == "html":
        from .html_reader import read_html

        return read_html
    from .text_reader import read_text

    if kind == "markdown":
        return lambda data, source: read_text(data, source, kind="markdown")
    return read_text


def extract(data: bytes, source: str, *, kind: Kind | None = None) -> Extraction:
    """Read one seed's bytes (already size-bounded by the caller) into an :class:`Extraction`.

    ``source`` is the seed's name relative to the seeds folder; its extension and the bytes
    choose the reader (``kind``, when the caller already has it from :func:`kind_of`). Every
    problem with the file is a :class:`~qa.errors.SeedError` that names it, says what is
    wrong and what to do.

    >>> extract(b"date 2022-03 Von A und B\\n\\nText.", "notiz.txt").authors
    ('A', 'B')
    """
    if kind is None:
        kind = kind_of(data, source)
    if len(data) > MAX_BYTES[kind]:
        raise SeedError(
            f"Seed {source} is {len(data):,} bytes, over the {MAX_BYTES[kind]:,}-byte limit for "
            f"{_PLURALS[kind]}; split it into smaller files."
        )
    return _reader(kind)(data, source)
