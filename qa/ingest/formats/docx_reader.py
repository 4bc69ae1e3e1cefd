"""Word .docx seeds: zip checks first, then paragraphs, headings and tables in order."""

from __future__ import annotations

import io
import logging
import zipfile
from typing import Any

from ...errors import SeedError
from .blocks import Block, join_blocks
from .extraction import Extraction
from .limits import (
    MAX_DOCX_BYTES,
    MAX_DOCX_UNCOMPRESSED,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_RATIO,
)
from .metadata import clean_title, normalise_date, split_authors

logger = logging.getLogger(__name__)

_RATIO_FLOOR = 1024 * 1024  # members smaller than this may compress as well as they like


def check_docx_zip(data: bytes, source: str) -> None:
    """Refuse a .docx that is not a zip, not Word, or would inflate too far.

    Only the zip's central directory is read. Python's zipfile stops inflating a member at the
    size its directory entry declares, so the declared sizes checked here bound the memory
    python-docx can use later, even if a crafted stream would inflate further.
    """
    if len(data) > MAX_DOCX_BYTES:
        raise SeedError(
            f"Seed {source} is {len(data):,} bytes, over the {MAX_DOCX_BYTES:,}-byte limit for "
            ".docx files; split it into smaller files."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SeedError(
            f"Seed {source} is not a valid .docx (not a readable zip archive: {exc}); "
            "save it again from Word as .docx."
        ) from exc
    if len(members) > MAX_ZIP_MEMBERS:
        raise SeedError(
            f"Seed {source} holds {len(members):,} files in its zip, over the "
            f"{MAX_ZIP_MEMBERS:,} limit; this is not an ordinary Word document."
        )
    total = sum(member.file_size for member in members)
    if total > MAX_DOCX_UNCOMPRESSED:
        raise SeedError(
            f"Seed {source} would unpack to {total:,} bytes, over the "
            f"{MAX_DOCX_UNCOMPRESSED:,}-byte limit (a zip bomb?); it is not read."
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FLOOR and ratio > MAX_ZIP_RATIO:
            raise SeedError(
                f"Seed {source}: {member.filename} would inflate {ratio:,.0f}-fold, over the "
                f"{MAX_ZIP_RATIO}-fold limit (a zip bomb?); it is not read."
            )
        if member.flag_bits & 0x1:
            raise SeedError(f"Seed {source} is an encrypted .docx; save a copy without a password.")
    if not any(member.filename == "word/document.xml" for member in members):
        raise SeedError(
            f"Seed {source} is a zip archive but not a Word document (no word/document.xml); "
            "save it from Word as .docx or remove it."
        )


def _cell_text(cell: Any) -> str:
    return " ".join(" ".join(p.text.split()) for p in cell.paragraphs if p.text.strip())


def _blocks(document: Any) -> list[Block]:
    """Every non-empty paragraph and table row, in document order."""
    from docx.table import Table

    blocks: list[Block] = []
    paragraphs = tables = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            tables += 1
            for number, row in enumerate(item.rows, start=1):
                seen: set[int] = set()
                cells: list[str] = []
                for cell in row.cells:
                    # A merged cell appears once per grid column it spans; read it once.
                    if id(cell._tc) in seen:
                        continue
                    seen.add(id(cell._tc))
                    cells.append(_cell_text(cell))
                if any(cells):
                    blocks.append(Block(" | ".join(cells), f"table {tables}, row {number}", tables))
        else:
            text = item.text.strip()
            if text:
                paragraphs += 1
                blocks.append(Block(text, f"¶ {paragraphs}"))
    return blocks


def read_docx(data: bytes, source: str) -> Extraction:
    """Read a .docx seed; :class:`SeedError` for a non-zip, a zip bomb, or no text."""
    check_docx_zip(data, source)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = _blocks(document)
        properties = document.core_properties
        title, author, created = properties.title, properties.author, properties.created
    except SeedError:
        raise
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors, ...
        raise SeedError(
            f"Seed {source} cannot be read as a Word document ({type(exc).__name__}: {exc}); "
            "save it again from Word as .docx."
        ) from exc
    if not blocks:
        raise SeedError(f"Seed {source} is a Word document without text; add text or remove it.")
    text, locations = join_blocks(blocks, "docx", source)
    return Extraction(
        text=text,
        kind="docx",
        locations=locations,
        title=clean_title(title),
        authors=split_authors(author),
        date=normalise_date(created),
    )
