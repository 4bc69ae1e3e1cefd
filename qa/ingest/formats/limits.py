"""Bounds on what one seed may cost to read: bytes, pages, characters, seconds, zip sizes."""

from __future__ import annotations

from typing import Final

#: Input size per format, checked before any parsing. The seeds reader bounds every file too
#: (``MAX_SEED_BYTES``); these are the ceilings a caller may raise it to for each format.
MAX_PDF_BYTES: Final = 100 * 1024 * 1024
MAX_DOCX_BYTES: Final = 50 * 1024 * 1024
MAX_HTML_BYTES: Final = 20 * 1024 * 1024
MAX_TEXT_BYTES: Final = 20 * 1024 * 1024

#: Canonical text longer than this is refused: ~1,500 dense A4 pages, far past a document
#: anyone reads, and it keeps one seed's chunks and embeddings within minutes.
MAX_TEXT_CHARS: Final = 5_000_000

#: A PDF with more pages is refused before its text is read (at ~30 pages/s, ~70 s).
MAX_PDF_PAGES: Final = 2_000
#: A dense A4 page holds ~5,000 characters; ten times that is not prose (glyph soup, a
#: rasterised chart exported as text) and would stall the layout step.
MAX_PDF_PAGE_CHARS: Final = 50_000
#: Wall-clock budget for one PDF, checked between pages (PDFium cannot be interrupted inside
#: one page; the per-page character bound keeps a single page short).
MAX_PDF_SECONDS: Final = 120.0

#: A .docx is a zip: its central directory is checked before anything is decompressed.
MAX_DOCX_UNCOMPRESSED: Final = 200 * 1024 * 1024
#: Real Word XML compresses 5–30×; zip bombs 1,000× and more. Checked per member over 1 MiB.
MAX_ZIP_RATIO: Final = 200
MAX_ZIP_MEMBERS: Final = 10_000

#: A page with more elements is refused before main-content extraction (a long news page has
#: a few thousand); libxml2 itself caps nesting at 256 levels, so a pathologically deep page
#: cannot make trafilatura recurse without bound.
MAX_HTML_ELEMENTS: Final = 500_000

#: YAML front matter longer than this is not metadata; it is read as text.
MAX_FRONT_MATTER_BYTES: Final = 16 * 1024
