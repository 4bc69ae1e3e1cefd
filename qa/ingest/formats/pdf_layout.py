"""PDF layout: positioned characters of a page to lines in reading order (columns, tables).

Library-independent: the PDF reader hands in characters with boxes (top-left origin, points)
and gets printed lines back, ordered as a person reads them. The rules, in order:

1. Characters in content-stream order form *runs* that end where the text jumps to another
   baseline or moves backwards; a run splits into *fragments* at gaps that are wide both
   absolutely and for that line's word spaces (a gutter or a cell border, not justification).
2. Fragments that share a baseline form a *row*.
3. A *gutter* is a vertical strip in the middle 60 % of the text that (almost) no row crosses
   and that at least :data:`MIN_SPLIT_ROWS` rows have text on both sides of. Consecutive rows
   that do not cross it form a section. A section whose fragments are long (prose wrapping in
   a column) is read column by column, each column recursively; one whose fragments are short
   (cells) is read row by row as a table, cells joined by ``" | "``.
4. Rows crossing the gutter, and pages without one, are read row by row.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from statistics import median
from typing import NamedTuple

#: A horizontal gap wider than this many line heights may split a line into fragments ...
GAP_EMS = 1.0
#: ... if it is also this many times the line's median word gap ...
GAP_RATIO = 2.5
#: ... or, on a line with fewer than three word gaps, at least this many line heights.
LONE_GAP_EMS = 2.0
#: Gaps narrower than this are letter spacing, not word spaces.
WORD_GAP_EMS = 0.1
#: A gutter needs this many rows with text on both of its sides.
MIN_SPLIT_ROWS = 3
#: Prose columns: the median fragment fills at least this share of its column's width.
COLUMN_FILL = 0.55
_MAX_DEPTH = 3


class Char(NamedTuple):
    """One character: its text (usually one code point), box, and whether PDFium made it up.

    A named tuple, not a dataclass: a page makes thousands, and tuples are built fastest.
    """

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    virtual: bool = False


@dataclass(slots=True)
class Fragment:
    chars: list[Char] = field(default_factory=list)
    x0: float = math.inf
    top: float = math.inf
    x1: float = -math.inf
    bottom: float = -math.inf

    def add(self, char: Char) -> None:
        self.chars.append(char)
        if char.virtual:
            return
        # Plain comparisons: this runs once per character of the document.
        if char.x0 < self.x0:
            self.x0 = char.x0
        if char.x1 > self.x1:
            self.x1 = char.x1
        if char.top < self.top:
            self.top = char.top
        if char.bottom > self.bottom:
            self.bottom = char.bottom

    @property
    def height(self) -> float:
        return self.bottom - self.top

    def stripped(self) -> list[Char]:
        """The characters without leading and trailing spaces."""
        chars = self.chars
        lo, hi = 0, len(chars)
        while lo < hi and chars[lo].text.isspace():
            lo += 1
        while hi > lo and chars[hi - 1].text.isspace():
            hi -= 1
        return chars[lo:hi]


@dataclass(slots=True)
class Line:
    """One printed line (or table row) in reading order, ready to be joined into text."""

    chars: list[Char]
    x0: float
    top: float
    x1: float
    bottom: float
    #: lines of one flow (a column, a table) are read on; a new flow starts a paragraph
    flow: int
    table: bool = False

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def text(self) -> str:
        return "".join(char.text for char in self.chars)


def fragments(chars: list[Char]) -> list[Fragment]:
    """Split content-stream characters into same-baseline runs without wide gaps."""
    found: list[Fragment] = []
    for run in _runs(chars):
        found.extend(_split_gaps(run))
    return [fragment for fragment in found if fragment.stripped()]


def _runs(chars: list[Char]) -> list[Fragment]:
    """Runs of characters on one baseline, moving rightwards."""
    found: list[Fragment] = []
    current = Fragment()
    last_ink: Char | None = None  # the last non-space character of the current run
    for char in chars:
        if char.virtual or char.text.isspace():
            if current.chars:
                current.add(char)
            continue
        if last_ink is not None and _new_line(current, last_ink, char):
            found.append(current)
            current = Fragment()
        current.add(char)
        last_ink = char
    if current.chars:
        found.append(current)
    return found


def _new_line(fragment: Fragment, last: Char, char: Char) -> bool:
    height = max(fragment.height, char.bottom - char.top, 1.0)
    centre = (char.top + char.bottom) / 2
    if not fragment.top - 0.2 * height <= centre <= fragment.bottom + 0.2 * height:
        return True  # another baseline
    return char.x0 < last.x0 - 0.5 * height  # moved backwards: a new line on the same band


def _split_gaps(run: Fragment) -> list[Fragment]:
    """Split a run at gaps that are wide for a word space *and* for this run's spaces.

    Justified text stretches every space of a line alike, so a gap splits the run only when it
    is also :data:`GAP_RATIO` times the run's median gap; with one or two gaps (no median to
    trust) it must be :data:`LONE_GAP_EMS` line heights wide, like a table's cell spacing.
    """
    height = max(run.height, 1.0)
    ink = [c for c in run.chars if not (c.virtual or c.text.isspace())]
    gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(ink)]
    words = sorted(g for g in gaps if g > WORD_GAP_EMS * height)
    if len(words) >= 3:
        threshold = max(GAP_EMS * height, GAP_RATIO * words[len(words) // 2])
    else:
        threshold = LONE_GAP_EMS * height
    if not gaps or max(gaps) <= threshold:
        return [run]
    found: list[Fragment] = []
    current = Fragment()
    last_ink: Char | None = None
    for char in run.chars:
        ink_char = not (char.virtual or char.text.isspace())
        if ink_char and last_ink is not None and char.x0 - last_ink.x1 > threshold:
            found.append(current)
            current = Fragment()
        if ink_char or current.chars:
            current.add(char)
        if ink_char:
            last_ink = char
    found.append(current)
    return found


def rows(found: list[Fragment]) -> list[list[Fragment]]:
    """Group fragments sharing a baseline; rows top to bottom, fragments left to right."""
    grouped: list[list[Fragment]] = []
    bands: list[tuple[float, float]] = []
    for fragment in sorted(found, key=lambda f: (f.top + f.bottom) / 2):
        centre = (fragment.top + fragment.bottom) / 2
        if bands and bands[-1][0] <= centre <= bands[-1][1]:
            grouped[-1].append(fragment)
            top, bottom = bands[-1]
            bands[-1] = (min(top, fragment.top), max(bottom, fragment.bottom))
        else:
            grouped.append([fragment])
            bands.append((fragment.top, fragment.bottom))
    return [sorted(row, key=lambda f: f.x0) for row in grouped]


class Flows:
    """Hands out flow numbers: every column and every table is a flow of its own."""

    def __init__(self) -> None:
        self.count = 0

    def new(self) -> int:
        self.count += 1
        return self.count


def _join(parts: list[Fragment], separator: str) -> list[Char]:
    chars: list[Char] = []
    for index, part in enumerate(parts):
        if index:
            anchor = chars[-1]
            chars.extend(
                Char(s, anchor.x1, anchor.top, anchor.x1, anchor.bottom, True) for s in separator
            )
        chars.extend(part.stripped())
    return chars


def _line(parts: list[Fragment], flow: int, *, table: bool) -> Line:
    separator = " | " if table else " "
    return Line(
        chars=_join(parts, separator),
        x0=min(p.x0 for p in parts),
        top=min(p.top for p in parts),
        x1=max(p.x1 for p in parts),
        bottom=max(p.bottom for p in parts),
        flow=flow,
        table=table,
    )


def _gutter(page_rows: list[list[Fragment]]) -> float | None:
    """The x of the best column gutter among ``page_rows``, or ``None``."""
    if sum(1 for row in page_rows if len(row) > 1) < MIN_SPLIT_ROWS:
        return None  # a gutter needs rows with text on both sides: most pages stop here
    x_min = min(f.x0 for row in page_rows for f in row)
    x_max = max(f.x1 for row in page_rows for f in row)
    width = x_max - x_min
    if width < 20:
        return None
    bins = max(int(width), 1)
    coverage = [0] * (bins + 1)
    for row in page_rows:
        covered = bytearray(bins + 1)
        for f in row:
            lo = max(int(f.x0 - x_min), 0)
            hi = min(math.ceil(f.x1 - x_min), bins)
            covered[lo : hi + 1] = b"\x01" * (hi + 1 - lo)
        for index, flag in enumerate(covered):
            coverage[index] += flag
    lo_bin, hi_bin = int(0.2 * bins), int(0.8 * bins)
    best = min(coverage[lo_bin : hi_bin + 1], default=None)
    if best is None:
        return None
    # The middle of the widest run of least-covered bins.
    run_start, best_run = -1, (0, -1)
    for index in range(lo_bin, hi_bin + 2):
        low = index <= hi_bin and coverage[index] == best
        if low and run_start < 0:
            run_start = index
        elif not low and run_start >= 0:
            if index - run_start > best_run[1] - best_run[0]:
                best_run = (run_start, index)
            run_start = -1
    x = x_min + (best_run[0] + best_run[1]) / 2
    split = sum(
        1
        for row in page_rows
        if any(f.x1 <= x for f in row)
        and any(f.x0 >= x for f in row)
        and not any(f.x0 < x < f.x1 for f in row)
    )
    return x if split >= MIN_SPLIT_ROWS else None


def _is_prose(section: list[list[Fragment]], gutter: float) -> bool:
    left = [f for row in section for f in row if f.x1 <= gutter]
    right = [f for row in section for f in row if f.x0 >= gutter]
    if not left or not right:
        return False
    left_width = gutter - min(f.x0 for f in left)
    right_width = max(f.x1 for f in right) - gutter
    return (
        median(f.x1 - f.x0 for f in left) >= COLUMN_FILL * left_width
        and median(f.x1 - f.x0 for f in right) >= COLUMN_FILL * right_width
    )


def _read(page_rows: list[list[Fragment]], flows: Flows, depth: int) -> list[Line]:
    if not page_rows:
        return []
    gutter = _gutter(page_rows) if depth < _MAX_DEPTH else None
    if gutter is None:
        flow = flows.new()
        return [_line(row, flow, table=len(row) > 1) for row in page_rows]
    lines: list[Line] = []
    section: list[list[Fragment]] = []
    flow = flows.new()

    def flush() -> None:
        nonlocal flow
        if not section:
            return
        if _is_prose(section, gutter):
            left = [[f for f in row if f.x1 <= gutter] for row in section]
            right = [[f for f in row if f.x0 >= gutter] for row in section]
            lines.extend(_read([r for r in left if r], flows, depth + 1))
            lines.extend(_read([r for r in right if r], flows, depth + 1))
        else:
            table_flow = flows.new()
            lines.extend(_line(row, table_flow, table=len(row) > 1) for row in section)
        section.clear()
        flow = flows.new()

    for row in page_rows:
        if any(f.x0 < gutter < f.x1 for f in row):
            flush()
            lines.append(_line(row, flow, table=len(row) > 1))
        else:
            section.append(row)
    flush()
    return lines


def page_lines(chars: list[Char], flows: Flows | None = None) -> list[Line]:
    """The printed lines of one page in reading order."""
    return _read(rows(fragments(chars)), flows or Flows(), 0)
