"""Seed files of every format, made inside the suite: PDFs (fpdf2), Word (python-docx), HTML."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FONTS = Path("/usr/share/fonts/truetype/dejavu")
SIZE = 11.0  # body font size of the test PDFs, points
LEFT = 72.0  # left margin, points


def new_fpdf() -> Any:
    """An A4 fpdf2 document in points with DejaVu (regular and bold), no automatic breaks."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(False)
    return pdf


def pdf_output(pdf: Any) -> bytes:
    """The PDF's bytes; its font files are closed (fpdf2 leaves them to the collector)."""
    try:
        return bytes(pdf.output())
    finally:
        for font in pdf.fonts.values():
            if hasattr(font, "close"):
                font.close()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- the format corpus: one fact per file, each asked for by a test -------------------------

#: Pages of the report: a heading and its printed lines each. The ferry fact is on page 2.
REPORT_PAGES = [
    (
        "Jahresbericht der Werft Möwenbrück",
        [
            "Die Werft Möwenbrück baut seit 1950 Fähren und Fischkutter",
            "für die Ostsee. Im Berichtsjahr beschäftigte sie 412 Menschen.",
        ],
    ),
    (
        "Die neue Fähre",
        [
            "Die Fähre Seeschwalbe wurde am 14. Juni 2022 in Kiel getauft.",
            "Sie bietet Platz für 320 Fahrgäste und 48 Autos.",
        ],
    ),
    (
        "Ausblick",
        ["Für das Jahr 2024 plant die Werft den Bau eines Forschungsschiffs."],
    ),
]
FERRY = "Die Fähre Seeschwalbe wurde am 14. Juni 2022 in Kiel getauft."
BOARD = "Der Aufsichtsrat der Werft tagte am 3. Februar 2023 im Hotel Adler in Lübeck."
MIRROR = "The main mirror of the Halvard telescope is 4.2 metres wide and was cast in Mainz."
LAKE = "Der Almsee liegt auf 1240 Metern Höhe und ist im Sommer bis zu 19 Grad warm."


def make_report_pdf(
    pages: list[tuple[str, list[str]]] | None = None, *, password: str | None = None
) -> bytes:
    """A PDF with a heading and a paragraph on each page (``REPORT_PAGES`` by default)."""
    pdf = new_fpdf()
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    pdf.set_title("Jahresbericht 2022")
    pdf.set_author("Anna Müller und Tom Reed")
    pdf.set_creation_date(datetime(2023, 4, 18, 9, 0, tzinfo=UTC))
    for heading, lines in pages or REPORT_PAGES:
        pdf.add_page()
        pdf.set_font("DejaVu", "B", 16)
        pdf.text(LEFT, 80, heading)
        pdf.set_font("DejaVu", "", SIZE)
        for number, line in enumerate(lines):
            pdf.text(LEFT, 120 + 14 * number, line)
    return pdf_output(pdf)


def make_scanned_pdf() -> bytes:
    """A PDF whose only page is an image of text: no text layer."""
    from PIL import Image, ImageDraw

    scan = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(scan).text((20, 80), "Gescannter Text ohne Textebene", fill=0)
    pdf = new_fpdf()
    pdf.add_page()
    pdf.image(scan, x=LEFT, y=100, w=450)
    return pdf_output(pdf)


def make_minutes_docx() -> bytes:
    import docx

    document = docx.Document()
    properties = document.core_properties
    properties.title = "Protokoll der Aufsichtsratssitzung"
    properties.author = "Jonas Weber"
    properties.created = datetime(2023, 2, 3, 10, 0)
    document.add_heading("Sitzung des Aufsichtsrats", level=1)
    document.add_paragraph(BOARD)
    document.add_paragraph("Er bestätigte den Vorstand für weitere fünf Jahre.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


ARTICLE_HTML = f"""<!doctype html><html lang="en"><head>
<title>Halvard Observatory opens | Northern Times</title>
<meta charset="utf-8"><meta name="author" content="Maria Keller">
<meta property="article:published_time" content="2021-09-30T08:00:00Z">
<script>var tracking = "must not be indexed";</script></head><body>
<nav><a href="/">Home</a> <a href="/science">Science</a></nav>
<article><h1>Halvard Observatory opens</h1>
<p>The Halvard Observatory on Mount Brann opened its new telescope in September 2021.</p>
<p>{MIRROR} It took two years to polish.</p>
</article><footer><p>© 2021 Northern Times. Imprint.</p></footer></body></html>"""

NOTE_MD = f"""---
title: Wanderung zum Almsee
date: 2020-08-15
authors: [Lena Berger, Paul Huber]
---

# Wanderung zum Almsee

{LAKE}
Der Weg vom Parkplatz dauert zwei Stunden.
"""


def write_bad_seeds(folder: Path) -> list[str]:
    """Bad seeds of every kind (encrypted, corrupt, scanned, zip bomb, lying name, oversized)
    into ``folder``; returns their names."""
    bad = {
        "geheim.pdf": make_report_pdf(password="geheim"),
        "kaputt.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n",
        "scan.pdf": make_scanned_pdf(),
        "bombe.docx": zip_bytes(
            {"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(50_000_000)}
        ),
        "bild.txt": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "riesig.html": b"<html><body><p>" + b" " * (20 * 1024 * 1024) + b"</p></body></html>",
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    return sorted(bad)


def write_format_seeds(folder: Path) -> Path:
    """A seeds folder with one PDF, DOCX, HTML and Markdown (front matter) file each."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bericht.pdf").write_bytes(make_report_pdf())
    (folder / "protokoll.docx").write_bytes(make_minutes_docx())
    (folder / "web").mkdir(exist_ok=True)
    (folder / "web" / "observatory.html").write_text(ARTICLE_HTML, encoding="utf-8")
    (folder / "almsee.md").write_text(NOTE_MD, encoding="utf-8")
    return folder
