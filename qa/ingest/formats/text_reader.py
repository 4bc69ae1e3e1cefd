"""Plain text and Markdown: the file as is, plus YAML front matter or the metadata line."""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from ...errors import SeedError
from .extraction import Extraction, Kind, LocationMap
from .limits import MAX_FRONT_MATTER_BYTES, MAX_TEXT_CHARS
from .metadata import clean_title, normalise_date, parse_metadata, split_authors

logger = logging.getLogger(__name__)

# "---" on the first line, "---" or "..." closing it (Jekyll, Hugo, Pandoc).
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def decode_text(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text, or :class:`SeedError` naming the file and what to do."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeedError(
            f"Seed {source} is not valid UTF-8 (byte {exc.start}); save it as UTF-8."
        ) from exc
    if not text.strip():
        raise SeedError(f"Seed {source} is empty; add text or remove the file.")
    if len(text) > MAX_TEXT_CHARS:
        raise SeedError(
            f"Seed {source} holds {len(text):,} characters, over the {MAX_TEXT_CHARS:,} "
            "limit; split it into smaller files."
        )
    return text


def line_map(text: str, kind: Kind) -> LocationMap:
    """One segment per line, labelled ``line N`` (what an editor shows)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    newlines = np.flatnonzero(codes == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(text)]))
    return LocationMap.build(kind, starts, ends)


def parse_front_matter(text: str, source: str) -> tuple[int, dict[str, Any]]:
    """``(body_start, fields)`` of YAML front matter at the start of ``text``.

    PyYAML's ``safe_load`` builds plain values only (no objects, no code), and the block is
    bounded to a few KiB so that alias expansion cannot grow. A tiny ``key: value`` parser
    would miss quoting, flow lists (``[A, B]``) and block lists; PyYAML is already installed
    with Gradio. A block that is not a YAML mapping stays in the body as text.
    """
    match = _FRONT_MATTER.match(text)
    if not match or len((match.group(1) or "").encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        return 0, {}
    import yaml  # lazily: only Markdown seeds with front matter need it

    try:
        fields = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError as exc:
        logger.warning("%s: front matter is not valid YAML (%s); it is read as text", source, exc)
        return 0, {}
    if not isinstance(fields, dict):
        return 0, {}
    return match.end(), fields


def read_text(data: bytes, source: str, *, kind: Kind = "text") -> Extraction:
    """A .txt or .md seed: offsets are the decoded file's offsets, as before this format work."""
    text = decode_text(data, source)
    bom = 1 if text.startswith("\ufeff") else 0
    front_end, fields = parse_front_matter(text[bom:], source)
    body_start, date, authors = parse_metadata(text[bom + front_end :])
    body_start += bom + front_end
    if fields:
        date = normalise_date(fields.get("date")) or date
        authors = split_authors(fields.get("authors") or fields.get("author")) or authors
    while body_start < len(text) and text[body_start] in "\r\n":
        body_start += 1
    if not text[body_start:].strip():
        raise SeedError(f"Seed {source} has metadata but no text; add text or remove the file.")
    return Extraction(
        text=text,
        kind=kind,
        locations=line_map(text, kind),
        title=clean_title(fields.get("title")),
        authors=authors,
        date=date,
        body_start=body_start,
    )
