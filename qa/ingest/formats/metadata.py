"""Metadata values from any format: dates to ``YYYY-MM[-DD]``, author lists, XMP packets."""

from __future__ import annotations

import html
import re
from datetime import date, datetime

# "D:20220314093000Z" (PDF), "2022-03-14T09:30:00Z" (XMP, HTML), "2022-03", "14.03.2022".
_ISO = re.compile(r"^\s*(?:D:)?(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?")
_GERMAN = re.compile(r"^\s*(\d{1,2})\.\s*(\d{1,2})\.\s*(\d{4})\b")
_AUTHOR_SPLIT = re.compile(r"\s*(?:[,;/]|\bund\b|\band\b|&)\s*", re.IGNORECASE)
# ` date 2022-03 Von William Boston und Tim Higgins` — a date, then optionally the authors.
_METADATA_LINE = re.compile(
    r"^[ \t]*date[ \t]+(?P<date>\d{4}-\d{2}(?:-\d{2})?)"
    r"(?:[ \t]+(?:von|by)[ \t]+(?P<authors>[^\n]+?))?[ \t]*(?:\r?\n|$)",
    re.IGNORECASE,
)
_LINE_AUTHOR_SPLIT = re.compile(r"\s*(?:,|\bund\b|\band\b|&)\s*", re.IGNORECASE)
#: An XMP packet longer than this is not read (real ones are a few KiB).
_XMP_MAX = 256 * 1024


def normalise_date(value: object) -> str | None:
    """``YYYY-MM-DD`` or ``YYYY-MM`` for a date in a common notation, else ``None``.

    >>> normalise_date("D:20220314093000+01'00'"), normalise_date("2022-03")
    ('2022-03-14', '2022-03')
    """
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    if not isinstance(value, str):
        return None
    german = _GERMAN.match(value)
    if german:
        return _checked(int(german.group(3)), int(german.group(2)), int(german.group(1)))
    match = _ISO.match(value)
    if not match or match.group(2) is None:
        return None
    iso_day = int(match.group(3)) if match.group(3) else None
    return _checked(int(match.group(1)), int(match.group(2)), iso_day)


def _checked(year: int, month: int, day: int | None) -> str | None:
    if not 1000 <= year <= 9999 or not 1 <= month <= 12:
        return None
    if day is None:
        return f"{year:04d}-{month:02d}"
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def split_authors(value: object) -> tuple[str, ...]:
    """Author names from ``"A und B"``, ``"A, B; C"`` or a list.

    >>> split_authors("Anna Müller und Tom Reed")
    ('Anna Müller', 'Tom Reed')
    """
    if isinstance(value, list | tuple):
        return tuple(name for item in value for name in split_authors(item))
    if not isinstance(value, str):
        return ()
    return tuple(part for part in _AUTHOR_SPLIT.split(value.strip()) if part)


def clean_title(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    title = " ".join(value.split())
    return title or None


def _tag_text(packet: str, tag: str) -> list[str]:
    """Texts of ``<tag>`` in an XMP packet: its ``rdf:li`` items, or its own text."""
    found: list[str] = []
    for block in re.findall(rf"<{tag}\b[^>]*?(?:/>|>(.*?)</{tag}>)", packet, re.S):
        items = re.findall(r"<rdf:li\b[^>]*>(.*?)</rdf:li>", block, re.S) or [block]
        found.extend(html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items)
    attribute = re.search(rf'\b{tag}="([^"]*)"', packet)
    if attribute:
        found.append(html.unescape(attribute.group(1)).strip())
    return [text for text in found if text]


def read_xmp(data: bytes) -> tuple[str | None, tuple[str, ...], str | None]:
    """``(title, authors, date)`` from the last uncompressed XMP packet in ``data``.

    XMP packets are meant to be found by scanning the bytes (XMP spec part 3, "packet
    scanning"), which is what we do: regular expressions over a bounded window, no XML parser,
    so a hostile packet cannot expand entities. Compressed metadata streams are not seen.
    """
    # The last packet wins: an incremental update appends the newer one.
    begin = data.rfind(b"<x:xmpmeta")
    end = data.find(b"</x:xmpmeta>", begin, begin + _XMP_MAX) if begin >= 0 else -1
    if end < 0:
        return None, (), None
    packet = data[begin:end].decode("utf-8", "replace")
    titles = _tag_text(packet, "dc:title")
    creators = _tag_text(packet, "dc:creator")
    dates = _tag_text(packet, "xmp:CreateDate") or _tag_text(packet, "dc:date")
    return (
        clean_title(titles[0]) if titles else None,
        tuple(name for creator in creators for name in split_authors(creator)),
        normalise_date(dates[0]) if dates else None,
    )


def parse_metadata(text: str) -> tuple[int, str | None, tuple[str, ...]]:
    """Return ``(body_start, date, authors)`` for a text that may open with a metadata line.

    >>> parse_metadata(" date 2022-03 Von A B und C D\\n\\nText")
    (31, '2022-03', ('A B', 'C D'))
    """
    match = _METADATA_LINE.match(text)
    if not match:
        return 0, None, ()
    authors_raw = match.group("authors") or ""
    authors = tuple(a for a in _LINE_AUTHOR_SPLIT.split(authors_raw.strip()) if a)
    body_start = match.end()
    while body_start < len(text) and text[body_start] in "\r\n":
        body_start += 1
    return body_start, match.group("date"), authors
