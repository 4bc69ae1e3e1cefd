"""Blocks (paragraphs, table rows) to canonical text and a labelled location map."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import SeedError
from .extraction import Kind, LocationMap
from .limits import MAX_TEXT_CHARS


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph, heading, list item or table row, with its location label."""

    text: str
    label: str
    #: the 1-based table a row belongs to; 0 for everything that is not a table row
    table: int = 0


def join_blocks(blocks: list[Block], kind: Kind, source: str) -> tuple[str, LocationMap]:
    """Blocks separated by blank lines (rows of one table by a newline), and their map.

    The chunker and the sentence splitter split on blank lines, so a table stays one piece
    while each paragraph starts a new one.
    """
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    length = 0
    previous_table = 0
    for block in blocks:
        if parts:
            same_table = block.table and block.table == previous_table
            separator = "\n" if same_table else "\n\n"
            parts.append(separator)
            length += len(separator)
        starts.append(length)
        parts.append(block.text)
        length += len(block.text)
        ends.append(length)
        previous_table = block.table
        if length > MAX_TEXT_CHARS:
            raise SeedError(
                f"Seed {source} holds more than {MAX_TEXT_CHARS:,} characters of text; "
                "split it into smaller files."
            )
    labels = [block.label for block in blocks]
    return "".join(parts), LocationMap.build(kind, starts, ends, labels=labels)
