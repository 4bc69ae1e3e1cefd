"""Benchmark: seed-format extraction speed (pages/s) on a generated 100-page PDF, DOCX and HTML.

``run()`` returns a Markdown section (``## Seed formats``); run directly, it prints it. The
same German text (the XQuAD documents if ``../shared/data/xquad_de/docs`` is there, else a
generated filler) is written as a 100-page PDF with fpdf2, as a .docx with python-docx and as
an HTML article, and each is read with ``qa.ingest.formats.extract``. For the PDF library
choice it also times pdfplumber's characters + ``extract_text`` on the first pages (when
pdfplumber is installed) and PDFium's plain text without positions (the floor).
"""

from __future__ import annotations

import io
import os
import platform
import time
from collections.abc import Callable
from html import escape
from pathlib import Path

from qa.ingest.formats import extract

_DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "shared/data/xquad_de/docs"
DOCS = Path(os.environ.get("QA_XQUAD_DOCS", _DEFAULT_DOCS))
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PAGES = 100
PLUMBER_PAGES = 20


def paragraphs() -> list[str]:
    """German paragraphs: the XQuAD documents' if present, else a generated filler."""
    if DOCS.is_dir():
        texts = [p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.txt"))]
        found = [" ".join(p.split()) for t in texts for p in t.split("\n\n") if p.strip()]
        # DejaVu has no CJK glyphs; such characters would not reach the text layer.
        return [p for p in found if all(ord(c) < 0x2E80 for c in p)]
    sentence = "Der Umsatz der Gesellschaft stieg im März um zwölf Prozent auf 3,1 Mrd. Euro. "
    return [sentence * (4 + i % 5) for i in range(400)]


def make_pdf(texts: list[str]) -> tuple[bytes, int]:
    """The PDF and how many paragraphs it holds (``texts`` cycled until 100 pages)."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=10)
    pdf.set_auto_page_break(True, margin=60)
    pdf.add_page()
    index = 0
    while True:
        pdf.multi_cell(0, 13, texts[index % len(texts)])
        pdf.ln(6)
        index += 1
        if pdf.page_no() >= PAGES and pdf.get_y() > 600:
            break
    data = bytes(pdf.output())
    for font in pdf.fonts.values():
        if hasattr(font, "close"):
            font.close()
    return data, index


def make_docx(texts: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for text in texts:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_html(texts: list[str]) -> bytes:
    body = "".join(f"<p>{escape(text)}</p>\n" for text in texts)
    page = (
        "<!doctype html><html lang='de'><head><meta charset='utf-8'><title>Bericht</title>"
        "</head><body><nav><a href='/'>Start</a></nav><article><h1>Bericht</h1>"
        f"{body}</article><footer>Impressum</footer></body></html>"
    )
    return page.encode("utf-8")


def _time(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float]:
    """Best ``(cpu_seconds, wall_seconds)``: CPU time is what compares on a shared machine."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def _row(what: str, library: str, pages: float, chars: int, seconds: tuple[float, float]) -> str:
    cpu, wall = seconds
    return (
        f"| {what} | {library} | {pages:.0f} | {chars:,} | {cpu:.2f} | {wall:.2f} | "
        f"{pages / cpu:.1f} | {chars / cpu / 1000:.0f}k |"
    )


def run() -> str:
    """Generate the three documents, time their extraction; return Markdown."""
    texts = paragraphs()
    pdf, written = make_pdf(texts)
    extraction = extract(pdf, "bench.pdf")
    pages = extraction.pages
    per_page = len(extraction.text) / pages
    # The DOCX and HTML hold the same paragraphs as the PDF.
    used = [texts[i % len(texts)] for i in range(written)]
    docx_bytes, html_bytes = make_docx(used), make_html(used)
    rows = [
        "| input | reader | pages | characters | CPU s | wall s | pages/CPU s | chars/CPU s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    seconds = _time(lambda: extract(pdf, "bench.pdf"), repeat=2)
    rows.append(_row("PDF", "qa (PDFium chars + layout)", pages, len(extraction.text), seconds))

    def pdfium_text_only() -> None:
        import pypdfium2

        document = pypdfium2.PdfDocument(pdf)
        for page in document:
            page.get_textpage().get_text_range()
        document.close()

    seconds = _time(pdfium_text_only, repeat=2)
    rows.append(_row("PDF", "PDFium text only, no positions", pages, len(extraction.text), seconds))
    try:
        import pdfplumber
    except ImportError:
        pdfplumber = None
    if pdfplumber is not None:

        def plumber() -> None:
            with pdfplumber.open(io.BytesIO(pdf)) as document:
                for page in document.pages[:PLUMBER_PAGES]:
                    _ = page.chars
                    page.extract_text()

        seconds = _time(plumber)
        chars = int(per_page * PLUMBER_PAGES)
        rows.append(_row("PDF", "pdfplumber chars + extract_text", PLUMBER_PAGES, chars, seconds))
    for what, data, source in (("DOCX", docx_bytes, "bench.docx"), ("HTML", html_bytes, "b.html")):
        result = extract(data, source)
        seconds = _time(lambda d=data, s=source: extract(d, s), repeat=2)
        # "pages": the same text's length in PDF pages, so the rates compare.
        rows.append(_row(what, "qa", len(result.text) / per_page, len(result.text), seconds))
    machine = (
        f"Python {platform.python_version()}, {os.cpu_count()} cores, best of 2 runs; "
        "pages/s from CPU time, which a busy shared machine inflates less than wall time"
    )
    return "\n".join(
        [
            "## Seed formats",
            "",
            f"Extraction of a generated {pages}-page A4 PDF (10 pt DejaVu, ~{per_page:,.0f} "
            f"characters a page) and of the same paragraphs as DOCX and HTML ({machine}).",
            "",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
