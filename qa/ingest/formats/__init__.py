"""Seed formats: PDF, Word, HTML, Markdown and text read into cited, located canonical text.

>>> from qa.ingest.formats import extract                       # doctest: +SKIP
>>> extraction = extract(path.read_bytes(), "bericht.pdf")       # doctest: +SKIP
>>> extraction.location(start), extraction.boxes(start, end)     # doctest: +SKIP
('p. 3', [(3, 72.0, 110.9, 268.1, 123.7)])

Importing this package loads no parser: each reader imports its library when first used.
"""

from __future__ import annotations

from .dispatch import MAX_BYTES, SUPPORTED_SUFFIXES, extract, kind_of
from .extraction import Box, Extraction, Kind, LocationMap
from .render import page_count, render_pdf_page

__all__ = [
    "MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "Box",
    "Extraction",
    "Kind",
    "LocationMap",
    "extract",
    "kind_of",
    "page_count",
    "render_pdf_page",
]
