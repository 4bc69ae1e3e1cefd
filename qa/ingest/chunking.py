"""Chunking stage: split documents into overlapping chunks with exact file offsets."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ..config import CHUNK_OVERLAP, CHUNK_SIZE
from ..errors import SettingsError
from ..types import Chunk, Document

#: A period after these does not end a sentence: one letter or digit ("z. B.", "E. Golovin",
#: "am 2. März"), a two-digit day ("am 12. März") and common German/English abbreviations.
#: The price: a sentence that ends in such a word is split at a clause instead.
_NO_BREAK_AFTER: tuple[str, ...] = (
    *(r"\w", r"\d\d"),
    *"Dr Prof Nr St Mr Mrs Ms Jr ca bzw vgl ggf evtl Mio Mrd Jh Abs Bd Str".split(),
)
_NOT_AN_ABBREVIATION = "".join(rf"(?<!\b{word}\.)" for word in _NO_BREAK_AFTER)

#: Paragraphs, lines, then sentence ends (German and English share . ! ? and closing quotes),
#: then clauses, words, characters. Regexes: the sentence end keeps its punctuation.
SEPARATORS: tuple[str, ...] = (
    r"\n[ \t]*\n",
    r"\n",
    rf"(?<=[.!?…]){_NOT_AN_ABBREVIATION}[\"'”“»«]?\s+",
    r"(?<=[;:])\s+",
    r"(?<=,)\s+",
    r"\s+",
    r"",
)


@dataclass(frozen=True)
class Chunker:
    """Recursive character splitting on sentence-aware separators (langchain)."""

    chunk_size: int = CHUNK_SIZE
    chunk_overlap: int = CHUNK_OVERLAP

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            raise SettingsError(
                f"chunk_size must be positive, got {self.chunk_size}; pass a size in characters."
            )
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise SettingsError(
                f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap}; "
                "pass an overlap smaller than the chunk size."
            )

    @property
    def settings(self) -> dict[str, Any]:
        """What the manifest records; a change here forces a full rebuild."""
        return {
            "splitter": "langchain_text_splitters.RecursiveCharacterTextSplitter",
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "separators": list(SEPARATORS),
        }

    @cached_property
    def _splitter(self) -> RecursiveCharacterTextSplitter:
        return RecursiveCharacterTextSplitter(
            separators=list(SEPARATORS),
            is_separator_regex=True,
            keep_separator="end",
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            strip_whitespace=True,
        )

    def split(self, document: Document) -> list[Chunk]:
        """Chunks of the document body; offsets are relative to the whole file."""
        text = document.text
        chunks: list[Chunk] = []
        search_from = document.body_start
        for piece in self._splitter.split_text(document.body):
            start = text.find(piece, search_from)
            if start < 0:  # pragma: no cover - the splitter only returns substrings
                raise AssertionError(f"chunk not found in {document.source}: {piece[:60]!r}")
            end = start + len(piece)
            chunks.append(Chunk(source=document.source, start=start, end=end, text=piece))
            # The next chunk starts after this one's start, at most `overlap` characters back.
            search_from = max(start + 1, end - self.chunk_overlap - 1)
        return chunks
