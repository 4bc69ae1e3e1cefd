"""PDF seeds: PDFium's text layer with character boxes, read in layout order, and metadata."""

from __future__ import annotations

import ctypes
import logging
import time
import unicodedata
from collections import deque
from typing import TYPE_CHECKING, Any

from ...errors import SeedError
from .extraction import Extraction
from .limits import MAX_PDF_PAGE_CHARS, MAX_PDF_PAGES, MAX_PDF_SECONDS
from .metadata import clean_title, normalise_date, read_xmp, split_authors
from .pdf_layout import Char, Flows, Line, page_lines
from .pdf_text import RunningLines, TextBuilder
from .pdfium_doc import open_pdf

if TYPE_CHECKING:
    import pypdfium2

logger = logging.getLogger(__name__)

_DROP = frozenset({0, 0xFFFD, 0xFFFE, 0xFFFF})


def _text_of(code: int) -> str:
    """The text of one PDFium character code; ``""`` for ones that carry no text."""
    if code == 2:
        return "-"  # PDFium's mark for a hyphen it found at a line end
    if code == 9:
        return " "
    if code < 32 or code == 127 or code in _DROP or 0xD800 <= code <= 0xDFFF:
        return ""
    text = chr(code)
    if 0xFB00 <= code <= 0xFB06:  # ligatures: "ﬁ" is indexed and searched as "fi"
        return unicodedata.normalize("NFKC", text)
    return text


def page_chars(pdf: pypdfium2.PdfDocument, index: int, source: str) -> list[Char]:
    """The characters of page ``index`` (0-based) with boxes from the crop box's top left."""
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    try:
        left, _bottom, _right, top = page.get_bbox()
        textpage = page.get_textpage()
        try:
            count = textpage.count_chars()
            if count > MAX_PDF_PAGE_CHARS:
                raise SeedError(
                    f"Seed {source}: page {index + 1} holds {count:,} characters, over the "
                    f"{MAX_PDF_PAGE_CHARS:,} limit for one page; this is not ordinary text. "
                    "Add its text as .txt instead."
                )
            raw: Any = textpage.raw
            rect = pdfium_c.FS_RECTF()
            chars: list[Char] = []
            for i in range(count):
                code = pdfium_c.FPDFText_GetUnicode(raw, i)
                if code in (10, 13):  # PDFium's own line breaks; we lay lines out ourselves
                    continue
                text = _text_of(code)
                if not text:
                    continue
                generated = pdfium_c.FPDFText_IsGenerated(raw, i) == 1
                # Loose boxes span the font's ascent to descent: even line heights, so the
                # highlight of a line does not jump with its letters.
                pdfium_c.FPDFText_GetLooseCharBox(raw, i, ctypes.byref(rect))
                chars.append(
                    Char(
                        text,
                        rect.left - left,
                        top - rect.top,
                        rect.right - left,
                        top - rect.bottom,
                        generated,
                    )
                )
            return chars
        finally:
            textpage.close()
    finally:
        page.close()


def read_pdf(data: bytes, source: str) -> Extraction:
    """Read a PDF seed; :class:`SeedError` if it is encrypted, corrupt, scanned or too large."""
    import pypdfium2

    started = time.monotonic()
    builder = TextBuilder(source)
    flows = Flows()
    with open_pdf(data, source) as pdf:
        pages = len(pdf)
        if pages > MAX_PDF_PAGES:
            raise SeedError(
                f"Seed {source} has {pages:,} pages, over the {MAX_PDF_PAGES:,}-page limit; "
                "split it into smaller files."
            )
        info = pdf.get_metadata_dict(skip_empty=True)
        running = RunningLines(pages)
        waiting: deque[tuple[int, list[Line]]] = deque()
        for index in range(pages):
            if time.monotonic() - started > MAX_PDF_SECONDS:
                raise SeedError(
                    f"Seed {source}: reading its text took over {MAX_PDF_SECONDS:.0f} s "
                    f"(stopped at page {index + 1} of {pages}); split it or add it as .txt."
                )
            try:
                chars = page_chars(pdf, index, source)
            except pypdfium2.PdfiumError as exc:
                raise SeedError(
                    f"Seed {source}: page {index + 1} of {pages} cannot be read ({exc}); the "
                    "PDF is corrupt. Export it anew or add its text as .txt."
                ) from exc
            lines = page_lines(chars, flows)
            running.add(lines)
            waiting.append((index + 1, lines))
            while waiting and running.ready(waiting[0][0]):
                page, ready = waiting.popleft()
                builder.add_page(page, running.strip(page, ready))
    if builder.ink == 0:
        raise SeedError(
            f"Seed {source} has no text layer (scanned?); add a PDF with text or its text as .txt."
        )
    text, locations = builder.finish()
    xmp_title, xmp_authors, xmp_date = read_xmp(data)
    logger.debug("%s: %d pages, %d characters", source, pages, len(text))
    return Extraction(
        text=text,
        kind="pdf",
        locations=locations,
        title=xmp_title or clean_title(info.get("Title")),
        authors=xmp_authors or split_authors(info.get("Author")),
        date=xmp_date or normalise_date(info.get("CreationDate")),
        pages=pages,
    )
