"""PDF lines to canonical text: paragraphs, hyphenation, and the per-character location map."""

from __future__ import annotations

import itertools
import math
import re
from array import array

from ...errors import SeedError
from .extraction import LocationMap
from .limits import MAX_TEXT_CHARS
from .pdf_layout import Char, Line

HYPHENS = frozenset("-\u2010\u00ad\x02")  # \x02: PDFium's mark for a hyphen it saw at a line end
#: A hyphen before one of these words is a suspended compound ("Vor- und Nachteile").
_CONJUNCTIONS = frozenset("und oder bzw sowie bis als and or nor to".split())
_SENTENCE_END = re.compile(r"[.!?:;][\"'”“«»)\]]*$")
_ORDINAL_END = re.compile(r"(?:^|\s)\d{1,2}\.$")
_PAGE_NUMBER = re.compile(r"^(?:[-–—]\s*)?\d{1,4}(?:\s*[-–—])?$")
#: A line further below the previous one than this many times the page's usual line pitch
#: starts a new paragraph; so does a change of line height by more than a fifth (a heading).
PARAGRAPH_PITCH = 1.35
SIZE_CHANGE = 0.2
#: A line at least this share of its column's widest line is full: its paragraph goes on.
FULL_LINE = 0.85


def hyphen_join(before: str, after: str) -> str:
    """How a line ending in a hyphen joins the next: ``""`` (drop it), ``"-"`` or ``"- "``.

    ``before`` is the line up to and including the hyphen, ``after`` the next line. The hyphen
    goes when a letter precedes it and a lowercase letter follows ("Verein-|barung"); it
    stays, unspaced, before a capital or digit ("E-|Mail", "Porsche-|Chef", "2021-|2022"), and
    stays with a space before a conjunction ("Vor-|und Nachteile"). A soft hyphen always goes.

    >>> hyphen_join("Verein-", "barung"), hyphen_join("E-", "Mail"), hyphen_join("Vor-", "und")
    ('', '-', '- ')
    """
    if before.endswith("\u00ad"):
        return ""
    word = re.match(r"\w+", after)
    if word and word.group().lower() in _CONJUNCTIONS:
        return "- "
    if len(before) >= 2 and before[-2].isalpha() and after[:1].islower():
        return ""
    return "-"


class TextBuilder:
    """Accumulates lines into the canonical text, recording each line as a map segment."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.length = 0
        self.ink = 0  # non-space characters read from the PDF
        self.char_x = array("f")  # x0, x1 per text character, NaN where we made it up
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.pages: list[int] = []
        self.rects = array("f")
        self._previous: Line | None = None
        self._previous_page = 0
        self._previous_text = ""
        self._previous_full = False
        self._hyphen: Char | None = None  # a line-final hyphen, held until the next line

    def _emit(self, text: str, x0: float = math.nan, x1: float = math.nan) -> None:
        if not text:
            return
        self.parts.append(text)
        self.length += len(text)
        self.char_x.extend((x0, x1) * len(text))
        self._check_length()

    def _check_length(self) -> None:
        if self.length > MAX_TEXT_CHARS:
            raise SeedError(
                f"Seed {self.source} holds more than {MAX_TEXT_CHARS:,} characters of text; "
                "split it into smaller files."
            )

    def add_page(self, page: int, lines: list[Line]) -> None:
        """Append one page's lines (in reading order)."""
        lines = [line for line in lines if line.chars]
        # A lone page number at the top or bottom is furniture, not text.
        for edge in (-1, 0):
            if lines and _PAGE_NUMBER.match(lines[edge].text.strip()):
                lines.pop(edge)
        pitch = _usual_pitch(lines)
        widths: dict[int, float] = {}
        for line in lines:
            widths[line.flow] = max(widths.get(line.flow, 0.0), line.x1 - line.x0)
        for line in lines:
            self._add_line(page, line, pitch)
            self._previous_full = line.x1 - line.x0 >= FULL_LINE * widths[line.flow]

    def _separator(self, page: int, line: Line, pitch: float | None) -> str:
        previous = self._previous
        if previous is None:
            return ""
        if page != self._previous_page or line.flow != previous.flow:
            # A paragraph runs on over a page or column break when the last line stops
            # mid-sentence and either filled its column or the next line starts lowercase
            # (German nouns are capitalised, so the case alone does not tell).
            # A German ordinal ("am 28. | Mai") ends a full line without ending the sentence.
            ends = bool(_SENTENCE_END.search(self._previous_text)) and not (
                self._previous_full and _ORDINAL_END.search(self._previous_text)
            )
            continues = (
                not previous.table
                and not line.table
                and not ends
                and (self._previous_full or line.text.lstrip()[:1].islower())
            )
            return " " if continues else "\n\n"
        if previous.table or line.table:
            return "\n"
        step = line.top - previous.top
        taller = max(line.height, previous.height, 1e-6)
        if (
            step <= 0
            or (pitch is not None and step > PARAGRAPH_PITCH * pitch)
            or abs(line.height - previous.height) > SIZE_CHANGE * taller
        ):
            return "\n\n"
        return " "

    def _add_line(self, page: int, line: Line, pitch: float | None) -> None:
        separator = self._separator(page, line, pitch)
        last = len(line.chars) - 1
        chars = [c for i, c in enumerate(line.chars) if c.text != "\u00ad" or i == last]
        text = "".join(c.text for c in chars)
        hyphen = self._hyphen
        self._hyphen = None
        if hyphen is not None:
            # Only a line that continues the paragraph can complete a hyphenated word.
            joined = hyphen_join(self._previous_text, text) if separator == " " else "-" + separator
            if joined.startswith("-"):
                self._emit("-" if hyphen.text == "\u00ad" else hyphen.text, hyphen.x0, hyphen.x1)
                self.ends[-1] = self.length
            separator = joined.removeprefix("-")
        self._emit(separator)
        ends_in_hyphen = len(chars) > 1 and chars[-1].text in HYPHENS
        if ends_in_hyphen and not line.table and not chars[-2].text.isspace():
            self._hyphen = chars.pop()
        start = self.length
        nan = math.nan
        line_text: list[str] = []
        xs: list[float] = []
        for char in chars:
            line_text.append(char.text)
            if char.virtual:
                xs.extend((nan, nan) * len(char.text))
            else:
                xs.extend((char.x0, char.x1) * len(char.text))
                self.ink += not char.text.isspace()
        joined = "".join(line_text)
        self.parts.append(joined)
        self.length += len(joined)
        self.char_x.extend(xs)
        self._check_length()
        self.starts.append(start)
        self.ends.append(self.length)
        self.pages.append(page)
        self.rects.extend((line.x0, line.top, line.x1, line.bottom))
        self._previous, self._previous_page, self._previous_text = line, page, text

    def finish(self) -> tuple[str, LocationMap]:
        """The canonical text and its map (a trailing hyphen is kept: nothing follows it)."""
        if self._hyphen is not None:
            self._emit("-", self._hyphen.x0, self._hyphen.x1)
            self.ends[-1] = self.length
            self._hyphen = None
        text = "".join(self.parts)
        locations = LocationMap.build(
            "pdf",
            self.starts,
            self.ends,
            pages=self.pages,
            rects=self.rects,
            char_x=self.char_x,
        )
        return text, locations


def _usual_pitch(lines: list[Line]) -> float | None:
    """The page's usual distance from one line's top to the next's, within prose flows."""
    steps = sorted(
        b.top - a.top
        for a, b in itertools.pairwise(lines)
        if a.flow == b.flow and not a.table and not b.table and b.top > a.top
    )
    if not steps:
        return None
    return steps[len(steps) // 4]


def _edge_key(line: Line) -> str | None:
    text = " ".join(line.text.lower().split())
    if not text or len(text) > 120:
        return None
    # "Kapitel 2 | 14" and "Kapitel 2 | 15" are one header; "#" alone marks a page number.
    return re.sub(r"\d+", "#", text)


class RunningLines:
    """Running headers and footers: a page's top or bottom line that recurs on nearby pages.

    A line counts when its text, digits masked, is also the top (bottom) line of at least
    :attr:`REPEATS` other pages within :attr:`WINDOW` pages (odd and even pages may alternate
    two headers), or of one other page if it carries a number (a folio: "Kapitel 2 | 14").
    Deciding needs the pages after one too, so pages wait in the reader until :meth:`ready`.
    """

    WINDOW = 4
    REPEATS = 2

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.keys: list[tuple[str | None, str | None]] = []

    @staticmethod
    def _edges(lines: list[Line]) -> tuple[Line | None, Line | None]:
        if not lines:
            return None, None
        return min(lines, key=lambda x: x.top), max(lines, key=lambda x: x.bottom)

    def add(self, lines: list[Line]) -> None:
        """Record the next page's top and bottom line."""
        top, bottom = self._edges(lines)
        self.keys.append((_edge_key(top) if top else None, _edge_key(bottom) if bottom else None))

    def ready(self, page: int) -> bool:
        return len(self.keys) >= min(page + self.WINDOW, self.pages)

    def strip(self, page: int, lines: list[Line]) -> list[Line]:
        """``lines`` of 1-based ``page`` without its running header and footer."""
        top, bottom = self._edges(lines)
        nearby = range(max(page - self.WINDOW, 1), min(page + self.WINDOW, len(self.keys)) + 1)
        drop: list[Line] = []
        for edge, line in enumerate((top, bottom)):
            key = self.keys[page - 1][edge]
            repeats = sum(1 for q in nearby if q != page and self.keys[q - 1][edge] == key)
            needed = 1 if key is not None and "#" in key.split() else self.REPEATS
            if line is not None and key is not None and repeats >= needed:
                drop.append(line)
        return [line for line in lines if not any(line is d for d in drop)]
