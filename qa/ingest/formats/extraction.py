"""The result of reading one seed file: canonical text, metadata and a text-to-source map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: What a seed was read as (after sniffing, which may overrule its extension).
Kind = Literal["pdf", "docx", "html", "markdown", "text"]
#: One highlight rectangle: ``(page, x0, top, x1, bottom)`` in PDF points, origin at the top
#: left of the page's crop box, unrotated (pdfplumber's convention).
Box = tuple[int, float, float, float, float]

_KINDS: tuple[Kind, ...] = ("pdf", "docx", "html", "markdown", "text")


def _ints(values: Sequence[int] | npt.ArrayLike, dtype: type = np.int64) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = np.asarray(values, dtype=dtype)
    array.setflags(write=False)
    return array


def _floats(values: npt.ArrayLike, width: int) -> npt.NDArray[np.float32]:
    array = np.asarray(values, dtype=np.float32).reshape(-1, width)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True, eq=False)
class LocationMap:
    """Where each stretch of the canonical text came from, as run-length segments.

    Segment ``i`` covers text offsets ``starts[i]:ends[i]`` (sorted, not overlapping); an
    offset between segments (a joining space, a paragraph break) belongs to the segment before
    it. For PDFs a segment is one printed line: ``pages[i]`` is its 1-based page and
    ``rects[i]`` its box, and ``char_x`` holds every text character's ``x0, x1`` (NaN where
    the extractor inserted the character), so that a highlight can start mid-line. For the
    other formats a segment is a block (paragraph, heading, table row; a line for plain text)
    and ``labels`` names it. Everything is a plain numpy array: see :meth:`to_arrays`.
    """

    kind: Kind
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    pages: npt.NDArray[np.int32] = field(default_factory=lambda: _ints([], np.int32))
    rects: npt.NDArray[np.float32] = field(default_factory=lambda: _floats([], 4))
    char_x: npt.NDArray[np.float32] = field(default_factory=lambda: _floats([], 2))
    labels: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        kind: Kind,
        starts: Sequence[int] | npt.ArrayLike,
        ends: Sequence[int] | npt.ArrayLike,
        *,
        pages: npt.ArrayLike = (),
        rects: npt.ArrayLike = (),
        char_x: npt.ArrayLike = (),
        labels: Sequence[str] = (),
    ) -> LocationMap:
        """A map from plain sequences; arrays are copied to their canonical dtypes, read-only."""
        built = cls(
            kind=kind,
            starts=_ints(starts),
            ends=_ints(ends),
            pages=_ints(pages, np.int32),
            rects=_floats(rects, 4),
            char_x=_floats(char_x, 2),
            labels=tuple(labels),
        )
        built._check()
        return built

    def _check(self) -> None:
        count = len(self.starts)
        if len(self.ends) != count or (self.labels and len(self.labels) != count):
            raise ValueError("LocationMap: starts, ends and labels differ in length")
        if self.kind == "pdf" and (len(self.pages) != count or len(self.rects) != count):
            raise ValueError("LocationMap: a PDF map needs a page and a box per segment")
        if count and (np.any(np.diff(self.starts) < 0) or np.any(self.ends < self.starts)):
            raise ValueError("LocationMap: segments must be sorted and non-empty")

    def __len__(self) -> int:
        return len(self.starts)

    def segment_at(self, offset: int) -> int | None:
        """The index of the segment holding text ``offset`` (or the one before a gap)."""
        index = int(np.searchsorted(self.starts, offset, side="right")) - 1
        return index if 0 <= index < len(self.starts) else None

    def page_at(self, offset: int) -> int | None:
        """The 1-based page of text ``offset``, or ``None`` for formats without pages."""
        if self.kind != "pdf":
            return None
        index = self.segment_at(offset)
        return None if index is None else int(self.pages[index])

    def location(self, offset: int) -> str:
        """A short label for where ``offset`` is: ``"p. 3"``, ``"¶ 12"``, ``"line 40"``."""
        index = self.segment_at(offset)
        if index is None:
            return ""
        if self.kind == "pdf":
            return f"p. {int(self.pages[index])}"
        if self.labels:
            return self.labels[index]
        return f"line {index + 1}" if self.kind in ("text", "markdown") else f"¶ {index + 1}"

    def boxes(self, start: int, end: int) -> list[Box]:
        """The rectangles that cover text ``start:end``, one per printed line it touches.

        Empty for formats without pages. Each box spans the line's height and the characters'
        horizontal extent, so a sentence that starts mid-line starts its first box there.
        """
        if self.kind != "pdf" or end <= start or not len(self.starts):
            return []
        first = max(self.segment_at(start) or 0, 0)
        last = int(np.searchsorted(self.starts, end, side="left"))
        found: list[Box] = []
        for index in range(first, last):
            lo, hi = max(start, int(self.starts[index])), min(end, int(self.ends[index]))
            if lo >= hi:
                continue
            xs = self.char_x[lo:hi]
            x0, top, x1, bottom = (float(v) for v in self.rects[index])
            if len(xs) and not np.all(np.isnan(xs)):
                x0, x1 = float(np.nanmin(xs[:, 0])), float(np.nanmax(xs[:, 1]))
            found.append((int(self.pages[index]), x0, top, x1, bottom))
        return found

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Plain numpy arrays (for ``np.savez``; loadable with ``allow_pickle=False``)."""
        return {
            "kind": np.array(self.kind),
            "starts": self.starts,
            "ends": self.ends,
            "pages": self.pages,
            "rects": self.rects,
            "char_x": self.char_x,
            "labels": np.array(self.labels, dtype=np.str_),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> LocationMap:
        """The map :meth:`to_arrays` wrote; ``ValueError`` when the arrays do not fit together."""
        kind = next((k for k in _KINDS if k == str(arrays["kind"])), None)
        if kind is None:
            raise ValueError(f"LocationMap: unknown kind {arrays['kind']!r}")
        return cls.build(
            kind,
            arrays["starts"],
            arrays["ends"],
            pages=arrays["pages"],
            rects=arrays["rects"],
            char_x=arrays["char_x"],
            labels=[str(label) for label in arrays["labels"]],
        )

    def to_json(self) -> dict[str, Any]:
        """The map as JSON-ready lists (NaN becomes ``None``); :meth:`from_json` reads it."""

        def plain(array: npt.NDArray[Any]) -> list[Any]:
            return [None if v != v else v for v in array.ravel().tolist()]  # v != v: NaN

        return {
            "kind": self.kind,
            "starts": self.starts.tolist(),
            "ends": self.ends.tolist(),
            "pages": self.pages.tolist(),
            "rects": plain(self.rects),
            "char_x": plain(self.char_x),
            "labels": list(self.labels),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocationMap:
        def floats(values: list[float | None]) -> list[float]:
            return [np.nan if v is None else v for v in values]

        arrays = {
            "kind": np.array(data["kind"]),
            "starts": np.asarray(data["starts"], dtype=np.int64),
            "ends": np.asarray(data["ends"], dtype=np.int64),
            "pages": np.asarray(data["pages"], dtype=np.int32),
            "rects": np.asarray(floats(data["rects"]), dtype=np.float32),
            "char_x": np.asarray(floats(data["char_x"]), dtype=np.float32),
            "labels": np.array(data["labels"], dtype=np.str_),
        }
        return cls.from_arrays(arrays)


@dataclass(frozen=True, slots=True)
class Extraction:
    """One seed read into canonical text; every citation offset is an offset into ``text``.

    ``body_start`` skips front matter or a metadata line (like ``Document.body_start``);
    ``pages`` is the page count of a PDF and 0 otherwise.

    >>> extraction = extract(data, "bericht.pdf")           # doctest: +SKIP
    >>> extraction.location(120), extraction.boxes(120, 180)  # doctest: +SKIP
    ('p. 1', [(1, 72.0, 110.9, 268.1, 123.7)])
    """

    text: str
    kind: Kind
    locations: LocationMap
    title: str | None = None
    authors: tuple[str, ...] = ()
    date: str | None = None
    body_start: int = 0
    pages: int = 0

    @property
    def body(self) -> str:
        return self.text[self.body_start :]

    def page_at(self, offset: int) -> int | None:
        """The 1-based page of text ``offset`` (``None`` unless a PDF)."""
        return self.locations.page_at(offset)

    def boxes(self, start: int, end: int) -> list[Box]:
        """Highlight rectangles for ``text[start:end]``, merged per printed line (PDF only)."""
        return self.locations.boxes(start, end)

    def location(self, start: int) -> str:
        """A short label for where ``start`` is in the source: ``"p. 3"``, ``"¶ 12"``."""
        return self.locations.location(start)
