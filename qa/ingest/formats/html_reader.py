"""HTML seeds: the main content (trafilatura) as blocks, metadata from the page's head."""

from __future__ import annotations

import codecs
import logging
import re
from typing import Any

from ...errors import SeedError
from .blocks import Block, join_blocks
from .extraction import Extraction
from .limits import MAX_HTML_BYTES, MAX_HTML_ELEMENTS
from .metadata import clean_title, normalise_date, split_authors

logger = logging.getLogger(__name__)

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DATE_KEYS = (
    "article:published_time",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "pubdate",
    "publish-date",
    "og:article:published_time",
)


def decode_html(data: bytes) -> str:
    """The page as text: BOM, then ``<meta charset>``, then UTF-8, then Windows-1252."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le")):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    declared = _CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"), "replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _text(element: Any) -> str:
    return " ".join("".join(element.itertext()).split())


def _head_metadata(tree: Any) -> tuple[str | None, tuple[str, ...], str | None]:
    """``(title, authors, date)`` from ``<meta>``, ``<h1>`` and ``<title>``."""
    meta: dict[str, str] = {}
    for element in tree.iter("meta"):
        key = (element.get("name") or element.get("property") or "").strip().lower()
        if key and key not in meta and element.get("content"):
            meta[key] = element.get("content")
    titles = [meta.get("og:title"), meta.get("dc.title")]
    titles += [_text(h1) for h1 in tree.iter("h1")][:1]
    titles += [_text(t) for t in tree.iter("title")][:1]
    title = next((clean_title(t) for t in titles if t and t.strip()), None)
    authors = split_authors(meta.get("author") or meta.get("article:author") or "")
    date = next((d for d in (normalise_date(meta.get(k)) for k in _DATE_KEYS) if d), None)
    return title, authors, date


def _main_blocks(body: Any) -> list[Block]:
    """Blocks from trafilatura's output tree (``head``, ``p``, ``list``, ``table``, ...)."""
    blocks: list[Block] = []
    tables = paragraphs = 0

    def paragraph(text: str) -> None:
        nonlocal paragraphs
        if text:
            paragraphs += 1
            blocks.append(Block(text, f"¶ {paragraphs}"))

    for element in body:
        if element.tag == "table":
            tables += 1
            for number, row in enumerate(element.iter("row"), start=1):
                cells = [_text(cell) for cell in row.iter("cell")]
                if any(cells):
                    blocks.append(Block(" | ".join(cells), f"table {tables}, row {number}", tables))
        elif element.tag == "list":
            for item in element.iter("item"):
                paragraph(_text(item))
        else:
            paragraph(_text(element))
    return blocks


def read_html(data: bytes, source: str) -> Extraction:
    """Read an HTML seed's main content; :class:`SeedError` if too large or without text."""
    if len(data) > MAX_HTML_BYTES:
        raise SeedError(
            f"Seed {source} is {len(data):,} bytes, over the {MAX_HTML_BYTES:,}-byte limit for "
            "HTML pages; save the article alone or as .txt."
        )
    import lxml.html
    import trafilatura

    markup = _XML_DECLARATION.sub("", decode_html(data), count=1)
    try:
        tree = lxml.html.document_fromstring(markup)
    except Exception as exc:  # lxml's ParserError, or ValueError for an empty document
        raise SeedError(
            f"Seed {source} cannot be parsed as HTML ({exc}); save the page again or as .txt."
        ) from exc
    elements = sum(1 for _ in tree.iter())
    if elements > MAX_HTML_ELEMENTS:
        raise SeedError(
            f"Seed {source} has {elements:,} HTML elements, over the {MAX_HTML_ELEMENTS:,} "
            "limit; save the article alone or as .txt."
        )
    title, authors, date = _head_metadata(tree)
    # trafilatura drops navigation, scripts, styles, footers and boilerplate; its tree is
    # small and regular (head, p, list/item, table/row/cell, quote, code).
    result = trafilatura.bare_extraction(
        tree,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        with_metadata=False,
    )
    body = getattr(result, "body", None)
    blocks = _main_blocks(body) if body is not None else []
    if not blocks:
        raise SeedError(
            f"Seed {source} is an HTML page in which no main text was found; save the article "
            "text as .txt."
        )
    if title and not blocks[0].text.startswith(title):
        blocks.insert(0, Block(title, "title"))
    text, locations = join_blocks(blocks, "html", source)
    return Extraction(
        text=text, kind="html", locations=locations, title=title, authors=authors, date=date
    )
