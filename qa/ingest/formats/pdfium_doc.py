"""Opening a PDF with PDFium: one lock for the library, and load failures as SeedErrors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ...errors import SeedError
from .limits import MAX_PDF_BYTES

if TYPE_CHECKING:
    import pypdfium2

#: PDFium is not thread-safe (pypdfium2's documentation says so): the build and the app's
#: page renderer may run in different threads, so every use of it holds this lock.
PDFIUM_LOCK = threading.RLock()
_EOF_WINDOW = 1024


def check_pdf_bytes(data: bytes, source: str) -> None:
    """Refuse, before parsing, a PDF that is too large or visibly cut short."""
    if len(data) > MAX_PDF_BYTES:
        raise SeedError(
            f"Seed {source} is {len(data):,} bytes, over the {MAX_PDF_BYTES:,}-byte limit for "
            "PDFs; split it into smaller files."
        )
    # Every complete PDF ends with %%EOF; PDFium would silently recover what it can from a
    # cut-off copy, and half a document would be indexed as if it were all of it.
    if b"%%EOF" not in data[-_EOF_WINDOW:]:
        raise SeedError(
            f"Seed {source} is a truncated or corrupt PDF (it does not end with %%EOF); "
            "copy the file again or export it anew."
        )


@contextmanager
def open_pdf(data: bytes, source: str) -> Iterator[pypdfium2.PdfDocument]:
    """The PDF in ``data``, opened under :data:`PDFIUM_LOCK` and closed afterwards."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    check_pdf_bytes(data, source)
    with PDFIUM_LOCK:
        try:
            pdf = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
                raise SeedError(
                    f"Seed {source} is an encrypted PDF that needs a password; save a copy "
                    "without a password (or its text as .txt) in the seeds folder."
                ) from exc
            raise SeedError(
                f"Seed {source} is a corrupt PDF that cannot be opened ({exc}); export it "
                "anew or add its text as .txt."
            ) from exc
        try:
            yield pdf
        finally:
            pdf.close()
