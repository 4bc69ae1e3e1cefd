"""The side panel's document: a seed read safely, a PDF page rendered with its highlights.

The seed's bytes are read only through ``qa.ingest.viewer`` (which refuses anything outside
the seeds folder); its text and location map come from the live index when it holds these
very bytes, so a PDF is not parsed again for every click.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from ..index.extractions import stored_document
from ..ingest.formats import Box, render_pdf_page
from ..ingest.viewer import SeedView, view_seed
from ..types import Document
from .render import PageImage, document_html, pdf_page_html

#: Render scale of a page: an A4 page becomes ~890 pixels wide, sharp in the 460-pixel panel
#: on screens with two pixels a point.
PAGE_SCALE = 1.5


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk follows the signature
    return int(width), int(height)


def _union(
    boxes: list[Box], page: int, size: tuple[int, int]
) -> tuple[float, float, float, float] | None:
    """The boxes of ``page`` as one rectangle in fractions of the rendered image.

    Exact for unrotated pages; on a rotated page it only guides scrolling.
    """
    on_page = [b for b in boxes if b[0] == page]
    if not on_page:
        return None
    width, height = (n / PAGE_SCALE for n in size)
    x0 = max(0.0, min(b[1] for b in on_page) / width)
    top = max(0.0, min(b[2] for b in on_page) / height)
    x1 = min(1.0, max(b[3] for b in on_page) / width)
    bottom = min(1.0, max(b[4] for b in on_page) / height)
    return x0, top, max(0.0, x1 - x0), max(0.0, bottom - top)


def _view(
    seeds_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str], source: str
) -> SeedView:
    return view_seed(
        source,
        seeds_dir=seeds_dir,
        stored=lambda name, sha256, kind: stored_document(Path(index_dir), name, sha256, kind),
    )


def read_document(
    seeds_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str], source: str
) -> Document:
    """``qa.read_document`` for the app: the same checks and text, taken from the live index
    when it holds these very bytes (a large PDF is not parsed again for each request)."""
    return _view(seeds_dir, index_dir, source).document


def document_view(
    seeds_dir: str | os.PathLike[str],
    index_dir: str | os.PathLike[str],
    source: str,
    start: int,
    end: int,
    span: tuple[int, int] | None = None,
    page: int | None = None,
) -> str:
    """The side panel's HTML for ``source`` with ``[start, end)`` (canonical-text offsets)
    marked and the answer ``span`` in it stronger.

    A PDF shows ``page`` (default: the cited sentence's) as an image with the sentence's
    boxes highlighted and page buttons; other formats show their text, marked.
    Raises :class:`~qa.errors.SeedError` for a source outside the seeds and
    :class:`~qa.errors.InvalidQueryError` for a page out of range.
    """
    view = _view(seeds_dir, index_dir, source)
    document, locations = view.document, view.locations
    if document.kind != "pdf":
        return document_html(document, start, end, span)
    cited_page = locations.page_at(start) if 0 <= start < end else None
    shown = page if page is not None else cited_page or 1
    highlight = locations.boxes(start, end)
    strong = locations.boxes(*span) if span is not None else []
    png = render_pdf_page(
        view.data, shown, highlight=highlight, strong=strong, scale=PAGE_SCALE, source=source
    )
    mark = _union(highlight, shown, _png_size(png))
    image = PageImage(png, shown, document.pages, cited_page, mark)
    return pdf_page_html(document, image, start, end, span)
