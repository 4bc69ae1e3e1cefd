"""Magic bytes: what a seed's bytes really are, whatever its extension says."""

from __future__ import annotations

import re
from typing import Literal

Sniffed = Literal["pdf", "zip", "html", "text", "binary"]

#: Formats we recognise only to name them in the refusal.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.xls/.ppt)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"{\\rtf", "an RTF document"),
)
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S
)
_HTML_TAG = re.compile(rb"<(?:html|head|body)\b", re.I)
#: The PDF header may follow up to 1 KiB of junk (ISO 32000-1, annex H.3).
_PDF_WINDOW = 1024


def sniff(data: bytes) -> tuple[Sniffed, str]:
    """``(kind, description)`` of ``data`` from its first bytes.

    >>> sniff(b"%PDF-1.7\\n...")
    ('pdf', 'a PDF')
    >>> sniff(b"PK\\x03\\x04...")[0]
    'zip'
    """
    if b"%PDF-" in data[:_PDF_WINDOW]:
        return "pdf", "a PDF"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip", "a zip archive"
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            return "binary", what
    head = data[:4096]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if b"\x00" in data[:8192]:
        return "binary", "a binary file"
    if _HTML_START.match(head) or (head.lstrip().startswith(b"<") and _HTML_TAG.search(head)):
        return "html", "an HTML page"
    return "text", "plain text"
