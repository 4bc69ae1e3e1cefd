"""Sentences: split text into sentences with file offsets (pysbd)."""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd

from ..types import Sentence

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_HAS_WORD = re.compile(r"\w")
_CLOSING_QUOTES = frozenset("\"'”“«»")


@lru_cache(maxsize=4)
def _segmenter(language: str) -> pysbd.Segmenter:
    return pysbd.Segmenter(language=language, clean=False, char_span=True)


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    pos = start
    for match in _BLANK_LINES.finditer(text, start, end):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, end))
    return spans


def sentence_spans(
    text: str, start: int = 0, end: int | None = None, *, language: str = "de"
) -> list[tuple[int, int]]:
    """Offsets of the sentences in ``text[start:end]``, trimmed of surrounding white space.

    Paragraph breaks always end a sentence; pieces with no word character (a lone closing
    quote) are joined to the sentence before them.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for p_start, p_end in _paragraphs(text, start, end):
        piece = text[p_start:p_end]
        if not piece.strip():
            continue
        for seg in _segmenter(language).segment(piece):
            s, e = p_start + seg.start, p_start + seg.end
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if s == e:
                continue
            # pysbd starts the next sentence with the quote that closes this one: give it back.
            if spans and spans[-1][1] == s and text[s] in _CLOSING_QUOTES and text[s - 1] in ".!?…":
                spans[-1] = (spans[-1][0], s + 1)
                s += 1
                while s < e and text[s].isspace():
                    s += 1
                if s == e:
                    continue
            if spans and not _HAS_WORD.search(text[s:e]) and spans[-1][1] >= p_start:
                spans[-1] = (spans[-1][0], e)
            else:
                spans.append((s, e))
    return spans


def split_sentences(
    text: str, source: str, start: int = 0, end: int | None = None, *, language: str = "de"
) -> list[Sentence]:
    """Sentences of ``text[start:end]`` as :class:`Sentence` records with file offsets."""
    return [
        Sentence(source=source, start=s, end=e, text=text[s:e])
        for s, e in sentence_spans(text, start, end, language=language)
    ]
