"""Seed formats: PDF, DOCX, HTML and Markdown written by real tools, read back exactly."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from seed_files import LEFT, SIZE
from seed_files import new_fpdf as _fpdf
from seed_files import pdf_output as _output
from seed_files import zip_bytes as _zip

from qa.errors import SeedError
from qa.ingest.formats import (
    SUPPORTED_SUFFIXES,
    Extraction,
    LocationMap,
    docx_reader,
    extract,
    page_count,
    render_pdf_page,
)
from qa.ingest.formats.metadata import normalise_date, read_xmp, split_authors
from qa.ingest.formats.pdf_text import hyphen_join

# Page 1: a heading and two paragraphs. Line ends: a hyphenated word, a real hyphen before a
# capital, a suspended compound ("Vor- und"), and a word joined after "E-".
PAGE1_LINES = [
    "Der Vorstand und die Grüße aus Zürich: Die Verein-",
    "barung wurde im März 2022 unterzeichnet, sagte der Porsche-",
    "Chef. Die Bestätigung kam per E-",
    "Mail an alle Mitarbeiter.",
]
PAGE1_SECOND = ["Ein zweiter Absatz wägt die Vor-", "und Nachteile ab."]
LEFT_COLUMN = [
    "Links steht der erste Satz der linken",
    "Spalte, der über drei Zeilen läuft und",
    "erst hier endet. Dann folgt links Schluss.",
]
RIGHT_COLUMN = [
    "Rechts beginnt die zweite Spalte mit",
    "einem Satz, der ebenfalls über drei",
    "Zeilen geht. Rechts ist dann auch Ende.",
]
RIGHT_X = 320.0
TABLE = [("Jahr", "Umsatz"), ("2021", "33,1 Mrd. €"), ("2022", "37,6 Mrd. €")]

PDF_TEXT = (
    "Die Vereinbarung\n\n"
    "Der Vorstand und die Grüße aus Zürich: Die Vereinbarung wurde im März 2022 "
    "unterzeichnet, sagte der Porsche-Chef. Die Bestätigung kam per E-Mail an alle "
    "Mitarbeiter.\n\n"
    "Ein zweiter Absatz wägt die Vor- und Nachteile ab.\n\n"
    "Zwei Spalten\n\n"
    "Links steht der erste Satz der linken Spalte, der über drei Zeilen läuft und erst hier "
    "endet. Dann folgt links Schluss.\n\n"
    "Rechts beginnt die zweite Spalte mit einem Satz, der ebenfalls über drei Zeilen geht. "
    "Rechts ist dann auch Ende.\n\n"
    "Umsatz in Zahlen\n\n"
    "Jahr | Umsatz\n2021 | 33,1 Mrd. €\n2022 | 37,6 Mrd. €"
)


def make_pdf(*, password: str | None = None) -> bytes:
    """Three pages: prose with line-end hyphens, two interleaved columns, a ruled table."""
    pdf = _fpdf()
    pdf.set_title("Die Vereinbarung von Zürich")
    pdf.set_author("Anna Müller, Tom Reed")
    pdf.set_creation_date(datetime(2022, 3, 14, 9, 30, tzinfo=UTC))
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.text(LEFT, 80, "Die Vereinbarung")
    pdf.set_font("DejaVu", "", SIZE)
    for number, line in enumerate(PAGE1_LINES):
        pdf.text(LEFT, 120 + 14 * number, line)
    for number, line in enumerate(PAGE1_SECOND):
        pdf.text(LEFT, 200 + 14 * number, line)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.text(LEFT, 80, "Zwei Spalten")
    pdf.set_font("DejaVu", "", SIZE)
    # Drawn row by row across both columns: reading order must come from the layout.
    for number, (left, right) in enumerate(zip(LEFT_COLUMN, RIGHT_COLUMN, strict=True)):
        pdf.text(LEFT, 120 + 14 * number, left)
        pdf.text(RIGHT_X, 120 + 14 * number, right)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.text(LEFT, 80, "Umsatz in Zahlen")
    pdf.set_font("DejaVu", "", SIZE)
    pdf.set_xy(LEFT, 110)
    with pdf.table(col_widths=(150, 150), width=300, align="L") as table:
        for cells in TABLE:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    return _output(pdf)


def string_width(text: str) -> float:
    pdf = _fpdf()
    pdf.set_font("DejaVu", "", SIZE)
    width = float(pdf.get_string_width(text))
    _output(pdf)
    return width


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return make_pdf()


@pytest.fixture(scope="module")
def pdf(pdf_bytes: bytes) -> Extraction:
    return extract(pdf_bytes, "bericht.pdf")


def span(extraction: Extraction, quote: str) -> tuple[int, int]:
    start = extraction.text.index(quote)
    end = start + len(quote)
    assert extraction.text[start:end] == quote
    return start, end


# --- PDF ------------------------------------------------------------------------------------


def test_pdf_canonical_text_is_exact(pdf: Extraction) -> None:
    assert pdf.kind == "pdf"
    assert pdf.pages == 3
    assert pdf.text == PDF_TEXT


def test_pdf_metadata_from_info_dictionary(pdf: Extraction) -> None:
    assert pdf.title == "Die Vereinbarung von Zürich"
    assert pdf.authors == ("Anna Müller", "Tom Reed")
    assert pdf.date == "2022-03-14"


@pytest.mark.parametrize(
    ("quote", "page"),
    [
        ("Die Bestätigung kam per E-Mail an alle Mitarbeiter.", 1),
        ("Vor- und Nachteile", 1),
        ("Dann folgt links Schluss.", 2),
        ("Rechts ist dann auch Ende.", 2),
        ("2021 | 33,1 Mrd. €", 3),
    ],
)
def test_pdf_page_of_known_sentences(pdf: Extraction, quote: str, page: int) -> None:
    start, end = span(pdf, quote)
    assert pdf.page_at(start) == page
    assert pdf.page_at(end - 1) == page
    assert pdf.location(start) == f"p. {page}"


def test_pdf_box_of_a_sentence_starting_mid_line(pdf: Extraction) -> None:
    start, end = span(pdf, "Die Bestätigung kam per E-Mail an alle Mitarbeiter.")
    boxes = pdf.boxes(start, end)
    # Two printed lines: "Die Bestätigung kam per E-" and "Mail an alle Mitarbeiter."
    assert len(boxes) == 2
    (page1, x0, top, x1, bottom), (page2, x0b, topb, x1b, bottomb) = boxes
    assert page1 == page2 == 1
    baseline, next_baseline = 120 + 14 * 2, 120 + 14 * 3
    assert top < baseline < bottom and bottom - top < 16
    assert topb < next_baseline < bottomb
    assert x0 == pytest.approx(LEFT + string_width("Chef. "), abs=1.0)
    assert x1 == pytest.approx(LEFT + string_width(PAGE1_LINES[2]), abs=1.0)
    assert x0b == pytest.approx(LEFT, abs=1.0)
    assert x1b == pytest.approx(LEFT + string_width(PAGE1_LINES[3]), abs=1.0)


def test_pdf_boxes_of_a_hyphenated_word_span_both_lines(pdf: Extraction) -> None:
    start, _ = span(pdf, "Vereinbarung wurde")  # not the heading's "Die Vereinbarung"
    end = start + len("Vereinbarung")
    boxes = pdf.boxes(start, end)
    assert [b[0] for b in boxes] == [1, 1]
    first, second = boxes
    assert first[1] == pytest.approx(LEFT + string_width(PAGE1_LINES[0][: -len("Verein-")]), abs=1)
    assert second[1] == pytest.approx(LEFT, abs=1.0)
    assert second[3] == pytest.approx(LEFT + string_width("barung"), abs=1.0)


def test_pdf_boxes_of_the_right_column(pdf: Extraction) -> None:
    start, end = span(pdf, "Rechts beginnt die zweite Spalte mit einem Satz")
    boxes = pdf.boxes(start, end)
    assert len(boxes) == 2
    assert all(b[0] == 2 and b[1] == pytest.approx(RIGHT_X, abs=1.0) for b in boxes)
    assert boxes[0][2] < 120 < boxes[0][4] and boxes[1][2] < 134 < boxes[1][4]


def test_pdf_table_row_box_covers_its_cells(pdf: Extraction) -> None:
    start, end = span(pdf, "2021 | 33,1 Mrd. €")
    [(page, x0, top, x1, bottom)] = pdf.boxes(start, end)
    assert page == 3
    assert LEFT <= x0 < LEFT + 10 and LEFT + 150 < x1 < LEFT + 300
    assert 110 < top < bottom < 200


def test_pdf_running_headers_page_numbers_and_a_sentence_over_a_page_break() -> None:
    body = [
        [
            "Der Konzern legt seinen Bericht vor. Der Umsatz des Konzerns",
            "stieg im vergangenen Jahr nach eigenen Angaben um zwölf auf",
        ],
        ["Milliarden Euro, wie der Vorstand in Stuttgart mitteilte.", "Danach kam nichts."],
        ["Seite drei beginnt mit einem ganzen Satz.", "Und endet auch so."],
        ["Die letzte Seite.", "Ende."],
    ]
    pdf = _fpdf()
    pdf.set_font("DejaVu", "", SIZE)
    for number, lines in enumerate(body, start=1):
        pdf.add_page()
        pdf.text(LEFT, 40, "Jahresbericht 2022")
        pdf.text(460, 40, f"Seite {number}")
        for row, line in enumerate(lines):
            pdf.text(LEFT, 100 + 14 * row, line)
        pdf.text(290, 800, str(number))
    extraction = extract(_output(pdf), "bericht.pdf")
    assert extraction.text == (
        "Der Konzern legt seinen Bericht vor. Der Umsatz des Konzerns stieg im vergangenen Jahr "
        "nach eigenen Angaben um zwölf auf Milliarden Euro, wie der Vorstand in Stuttgart "
        "mitteilte. Danach kam nichts.\n\n"
        "Seite drei beginnt mit einem ganzen Satz. Und endet auch so.\n\n"
        "Die letzte Seite. Ende."
    )
    start, _ = span(extraction, "Der Umsatz des Konzerns stieg")
    assert [box[0] for box in extraction.boxes(start, extraction.text.index("Danach"))] == [
        1,
        1,
        2,
    ]


def test_pdf_justified_columns_with_a_paragraph_running_into_the_right_column() -> None:
    paragraphs = [
        "Erster Absatz: " + "Die Gesellschaft meldete einen höheren Umsatz und mehr Gewinn. " * 4,
        "Zweiter Absatz: " + "Der Vorstand sprach von einem schwierigen, guten Geschäftsjahr. " * 4,
        "Dritter Absatz: " + "Die Aktionäre sollen eine höhere Dividende erhalten als zuvor. " * 4,
    ]
    pdf = _fpdf()
    pdf.add_page()
    pdf.set_font("DejaVu", "", 10)
    columns = pdf.text_columns(
        ncols=2, gutter=20, text_align="J", l_margin=72, r_margin=72, balance=True
    )
    with columns:
        for paragraph in paragraphs:
            columns.write(paragraph + "\n\n")
    extraction = extract(_output(pdf), "spalten.pdf")
    assert extraction.text == "\n\n".join(p.strip() for p in paragraphs)
    start, end = span(extraction, paragraphs[1].strip())
    pages_and_lefts = {(box[0], round(box[1])) for box in extraction.boxes(start, end)}
    assert pages_and_lefts == {(1, 75), (1, 310)}  # both columns of page 1


def test_pdf_ordinal_at_a_page_end_does_not_end_the_paragraph() -> None:
    pdf = _fpdf()
    pdf.set_font("DejaVu", "", SIZE)
    pages = [
        ["Die Kommission tagte zum ersten Mal im vergangenen Jahr am 28."],
        ["Mai in Stuttgart. Danach ging es weiter."],
    ]
    for lines in pages:
        pdf.add_page()
        for row, line in enumerate(lines):
            pdf.text(LEFT, 100 + 14 * row, line)
    extraction = extract(_output(pdf), "ordinal.pdf")
    assert extraction.text == (
        "Die Kommission tagte zum ersten Mal im vergangenen Jahr am 28. Mai in Stuttgart. "
        "Danach ging es weiter."
    )


@pytest.mark.parametrize(
    ("before", "after", "joined"),
    [
        ("Verein-", "barung", ""),
        ("Porsche-", "Chef", "-"),
        ("E-", "Mail", "-"),
        ("Vor-", "und Nachteile", "- "),
        ("2021-", "2022", "-"),
        ("Straßen\u00ad", "bahn", ""),
    ],
)
def test_hyphen_rule(before: str, after: str, joined: str) -> None:
    assert hyphen_join(before, after) == joined


def test_pdf_xmp_overrides_info(tmp_path: Path) -> None:
    pdf = _fpdf()
    pdf.set_title("Alter Titel")
    pdf.set_xmp_metadata(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Neuer Titel &amp; mehr</rdf:li>'
        "</rdf:Alt></dc:title>"
        "<dc:creator><rdf:Seq><rdf:li>Anna Müller</rdf:li><rdf:li>Tom Reed</rdf:li>"
        "</rdf:Seq></dc:creator><xmp:CreateDate>2021-11-17T10:00:00+01:00</xmp:CreateDate>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    pdf.add_page()
    pdf.set_font("DejaVu", "", SIZE)
    pdf.text(LEFT, 100, "Ein Satz.")
    extraction = extract(_output(pdf), "xmp.pdf")
    assert extraction.title == "Neuer Titel & mehr"
    assert extraction.authors == ("Anna Müller", "Tom Reed")
    assert extraction.date == "2021-11-17"
    assert extraction.text == "Ein Satz."


def test_read_xmp_without_packet() -> None:
    assert read_xmp(b"%PDF-1.7 no metadata %%EOF") == (None, (), None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("D:20220314093000+01'00'", "2022-03-14"),
        ("2022-03", "2022-03"),
        ("14.03.2022", "2022-03-14"),
        ("2022-13-01", None),
        ("yesterday", None),
    ],
)
def test_normalise_date(value: str, expected: str | None) -> None:
    assert normalise_date(value) == expected


def test_split_authors() -> None:
    assert split_authors("Anna Müller; Tom Reed & Li Wei") == ("Anna Müller", "Tom Reed", "Li Wei")
    assert split_authors(["A und B", "C"]) == ("A", "B", "C")


# --- rendering ------------------------------------------------------------------------------


def test_render_highlights_inside_the_sentence_box(pdf_bytes: bytes, pdf: Extraction) -> None:
    from PIL import Image

    start, end = span(pdf, "Die Bestätigung kam per E-Mail an alle Mitarbeiter.")
    answer_start, answer_end = span(pdf, "E-Mail")
    scale = 2.0
    png = render_pdf_page(
        pdf_bytes,
        1,
        highlight=pdf.boxes(start, end),
        strong=pdf.boxes(answer_start, answer_end),
        scale=scale,
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1191, 1684)  # A4 (595.28 × 841.89 pt) at 2×
    pixels = np.asarray(image).astype(int)

    def yellow(region: np.ndarray) -> int:
        r, g, b = region[..., 0], region[..., 1], region[..., 2]
        return int(np.sum((r > 200) & (g > 190) & (b < 200)))

    _, x0, top, x1, bottom = pdf.boxes(start, end)[1]  # "Mail an alle Mitarbeiter."
    inside = pixels[
        int(top * scale) + 2 : int(bottom * scale) - 2, int(x0 * scale) + 60 : int(x1 * scale) - 2
    ]
    assert yellow(inside) > 0.5 * inside.shape[0] * inside.shape[1]
    # The answer span is orange (less green), the rest of the page untouched white or ink.
    _, sx0, stop, sx1, sbottom = pdf.boxes(answer_start, answer_end)[0]
    strong = pixels[
        int(stop * scale) + 2 : int(sbottom * scale) - 2, int(sx0 * scale) : int(sx1 * scale)
    ]
    assert np.median(strong[..., 1]) < 200 and np.median(strong[..., 0]) > 200
    below = pixels[int(260 * scale) :, :]
    assert yellow(below) == 0


def test_render_draws_boxes_on_a_rotated_page(pdf_bytes: bytes) -> None:
    import pypdfium2
    from PIL import Image

    document = pypdfium2.PdfDocument(pdf_bytes)
    document[0].set_rotation(90)
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    rotated = buffer.getvalue()
    extraction = extract(rotated, "gedreht.pdf")
    assert extraction.text == PDF_TEXT  # rotation changes the display, not the text
    start, end = span(extraction, "Mail an alle Mitarbeiter.")
    [(_, x0, top, x1, bottom)] = extraction.boxes(start, end)
    image = Image.open(
        io.BytesIO(render_pdf_page(rotated, 1, highlight=[(1, x0, top, x1, bottom)]))
    )
    assert image.size == (1684, 1191)  # landscape now
    pixels = np.asarray(image.convert("RGB")).astype(int)
    # Turned 90° clockwise: page x runs down the image, page top runs leftwards from the right.
    height = 841.89
    region = pixels[
        int(x0 * 2) + 4 : int(x1 * 2) - 4,
        int((height - bottom) * 2) + 3 : int((height - top) * 2) - 3,
    ]
    yellow = (region[..., 0] > 200) & (region[..., 1] > 190) & (region[..., 2] < 200)
    assert yellow.mean() > 0.5


def test_render_refuses_a_page_out_of_range(pdf_bytes: bytes) -> None:
    from qa.errors import InvalidQueryError

    assert page_count(pdf_bytes) == 3
    with pytest.raises(InvalidQueryError, match="pages 1–3, not page 4"):
        render_pdf_page(pdf_bytes, 4)
    with pytest.raises(InvalidQueryError, match="scale 50"):
        render_pdf_page(pdf_bytes, 1, scale=50)


# --- location map serialisation ---------------------------------------------------------------


def test_location_map_round_trips_through_npz_and_json(pdf: Extraction) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **pdf.locations.to_arrays())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as arrays:
        from_npz = LocationMap.from_arrays(dict(arrays))
    from_json = LocationMap.from_json(json.loads(json.dumps(pdf.locations.to_json())))
    start, end = span(pdf, "Die Bestätigung kam per E-Mail an alle Mitarbeiter.")
    for restored in (from_npz, from_json):
        flat = [v for box in restored.boxes(start, end) for v in box]
        assert flat == pytest.approx([v for box in pdf.boxes(start, end) for v in box])
        assert restored.location(start) == "p. 1"
    # Compact: two floats per character plus a few numbers per printed line.
    assert pdf.locations.char_x.nbytes == 8 * len(pdf.text)
    assert len(pdf.locations) < 25


# --- bad PDFs ---------------------------------------------------------------------------------


def _refused(data: bytes, source: str, message: str, seconds: float = 5.0) -> None:
    started = time.monotonic()
    with pytest.raises(SeedError, match=message) as raised:
        extract(data, source)
    assert time.monotonic() - started < seconds
    assert source in str(raised.value)


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("MAX_PDF_PAGES", 2, "has 3 pages, over the 2-page limit"),
        ("MAX_PDF_PAGE_CHARS", 100, "page 1 holds [\\d,]+ characters, over the 100 limit"),
        ("MAX_PDF_SECONDS", -1.0, r"took over -1 s \(stopped at page 1 of 3\)"),
    ],
)
def test_pdf_limits(
    monkeypatch: pytest.MonkeyPatch, pdf_bytes: bytes, limit: str, value: float, message: str
) -> None:
    from qa.ingest.formats import pdf_reader

    monkeypatch.setattr(pdf_reader, limit, value)
    _refused(pdf_bytes, "lang.pdf", message)


def test_text_length_limit(monkeypatch: pytest.MonkeyPatch, pdf_bytes: bytes) -> None:
    from qa.ingest.formats import blocks, pdf_text

    monkeypatch.setattr(pdf_text, "MAX_TEXT_CHARS", 200)
    _refused(pdf_bytes, "lang.pdf", "holds more than 200 characters of text")
    monkeypatch.setattr(blocks, "MAX_TEXT_CHARS", 50)
    _refused(make_docx(), "lang.docx", "holds more than 50 characters of text")


def test_encrypted_pdf_is_refused() -> None:
    _refused(make_pdf(password="geheim"), "geheim.pdf", "encrypted PDF that needs a password")


def test_corrupt_pdf_is_refused() -> None:
    junk = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    _refused(junk, "kaputt.pdf", "corrupt PDF that cannot be opened")


def test_truncated_pdf_is_refused(pdf_bytes: bytes) -> None:
    _refused(pdf_bytes[: len(pdf_bytes) // 2], "halb.pdf", r"truncated or corrupt PDF .*%%EOF")


def test_scanned_pdf_without_text_layer_is_refused() -> None:
    from PIL import Image, ImageDraw

    scan = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(scan).text((20, 80), "Gescannter Text ohne Textebene", fill=0)
    pdf = _fpdf()
    pdf.add_page()
    pdf.image(scan, x=LEFT, y=100, w=450)
    _refused(
        _output(pdf),
        "scan.pdf",
        r"has no text layer \(scanned\?\); add a PDF with text or its text as \.txt",
    )


# --- DOCX -----------------------------------------------------------------------------------


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    properties = document.core_properties
    properties.title = "Protokoll der Sitzung"
    properties.author = "Anna Müller; Tom Reed"
    properties.created = datetime(2022, 3, 14, 9, 30)
    document.add_heading("Die Vereinbarung", level=1)
    document.add_paragraph("Die Grüße aus Zürich kamen per E-Mail. Der Vertrag gilt ab März.")
    document.add_paragraph("")  # empty paragraphs are not text
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(table.rows, TABLE, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_paragraph("Nach der Tabelle folgt ein Schlusssatz.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_text_locations_and_metadata() -> None:
    extraction = extract(make_docx(), "protokoll.docx")
    assert extraction.kind == "docx"
    assert extraction.text == (
        "Die Vereinbarung\n\n"
        "Die Grüße aus Zürich kamen per E-Mail. Der Vertrag gilt ab März.\n\n"
        "Jahr | Umsatz\n2021 | 33,1 Mrd. €\n2022 | 37,6 Mrd. €\n\n"
        "Nach der Tabelle folgt ein Schlusssatz."
    )
    assert extraction.title == "Protokoll der Sitzung"
    assert extraction.authors == ("Anna Müller", "Tom Reed")
    assert extraction.date == "2022-03-14"
    start, end = span(extraction, "Der Vertrag gilt ab März.")
    assert extraction.location(start) == "¶ 2"
    assert extraction.location(span(extraction, "2021 | 33,1")[0]) == "table 1, row 2"
    assert extraction.location(span(extraction, "Nach der Tabelle")[0]) == "¶ 3"
    assert extraction.page_at(start) is None and extraction.boxes(start, end) == []


def test_zip_bomb_docx_is_refused_before_inflating() -> None:
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(50_000_000)})
    assert len(bomb) < 100_000
    _refused(bomb, "bombe.docx", r"word/document.xml would inflate [\d,]+-fold.*zip bomb", 1.0)


def test_docx_total_uncompressed_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docx_reader, "MAX_DOCX_UNCOMPRESSED", 1000)
    _refused(make_docx(), "gross.docx", r"would unpack to [\d,]+ bytes, over the 1,000-byte")


def test_docx_that_is_not_a_zip_or_not_word_is_refused() -> None:
    _refused(b"Nur Text, kein Word.", "text.docx", "is named .docx but is plain text")
    _refused(_zip({"bild.png": b"x"}), "archiv.docx", "zip archive but not a Word document")
    _refused(b"PK\x03\x04" + b"\x00" * 100, "kaputt.docx", "not a valid .docx")


# --- HTML -----------------------------------------------------------------------------------

ARTICLE = """<!doctype html><html lang="de"><head>
<title>Porsche und Apple | Beispiel-Zeitung</title>
<meta charset="utf-8"><meta name="author" content="Anna Müller und Tom Reed">
<meta property="article:published_time" content="2022-03-14T09:30:00Z">
<style>body { color: red }</style><script>var x = "Skript darf nicht erscheinen";</script>
</head><body>
<nav><ul><li><a href="/">Startseite</a></li><li><a href="/wirtschaft">Wirtschaft</a></li></ul></nav>
<article><h1>Porsche und Apple</h1>
<p>FRANKFURT (Dow Jones)--Porsche und Apple haben Gespräche über eine Zusammenarbeit
geführt. Das Treffen fand im November am Rande der Los Angeles Auto Show statt.</p>
<h2>Die Zahlen</h2><p>Der Umsatz stieg auf 33,1 Milliarden Euro. Die Grüße gingen nach
Zürich.</p>
<table><tr><th>Jahr</th><th>Umsatz</th></tr><tr><td>2021</td><td>33,1 Mrd. €</td></tr></table>
<ul><li>Erster Punkt der Liste.</li><li>Zweiter Punkt.</li></ul>
</article>
<footer><p>© 2022 Beispiel-Zeitung. Impressum. Datenschutz.</p></footer>
<script>document.write("auch nicht")</script></body></html>"""


def test_html_main_content_and_metadata() -> None:
    extraction = extract(ARTICLE.encode("utf-8"), "artikel.html")
    assert extraction.kind == "html"
    assert extraction.text == (
        "Porsche und Apple\n\n"
        "FRANKFURT (Dow Jones)--Porsche und Apple haben Gespräche über eine Zusammenarbeit "
        "geführt. Das Treffen fand im November am Rande der Los Angeles Auto Show statt.\n\n"
        "Die Zahlen\n\n"
        "Der Umsatz stieg auf 33,1 Milliarden Euro. Die Grüße gingen nach Zürich.\n\n"
        "Jahr | Umsatz\n2021 | 33,1 Mrd. €\n\n"
        "Erster Punkt der Liste.\n\nZweiter Punkt."
    )
    assert extraction.title == "Porsche und Apple"
    assert extraction.authors == ("Anna Müller", "Tom Reed")
    assert extraction.date == "2022-03-14"
    start, _ = span(extraction, "Das Treffen fand im November")
    assert extraction.location(start) == "¶ 2"
    assert extraction.location(span(extraction, "2021 | 33,1")[0]) == "table 1, row 2"


def test_html_in_latin1_with_meta_charset() -> None:
    page = ARTICLE.replace('charset="utf-8"', 'charset="iso-8859-1"').replace("€", "EUR")
    extraction = extract(page.encode("iso-8859-1"), "alt.htm")
    assert "Die Grüße gingen nach Zürich." in extraction.text


def test_oversized_html_is_refused_before_parsing() -> None:
    page = b"<html><body><p>" + b" " * (200 * 1024 * 1024) + b"</p></body></html>"
    message = rf"is {len(page):,} bytes, over the 20,971,520-byte limit for HTML pages"
    _refused(page, "riesig.html", message, 2.0)


@pytest.mark.timeout(60)
def test_deeply_nested_html_does_not_hang() -> None:
    depth = 100_000
    page = "<html><body>" + "<div>" * depth + "<p>Tief.</p>" + "</div>" * depth + "</body></html>"
    started = time.monotonic()
    try:
        extract(page.encode(), "tief.html")
    except SeedError as exc:
        assert "no main text was found" in str(exc)
    assert time.monotonic() - started < 10


# --- Markdown, text, lying extensions ---------------------------------------------------------


def test_markdown_front_matter_is_metadata_not_body() -> None:
    source = (
        "---\ntitle: 'Grüße: aus Zürich'\ndate: 2022-03-14\nauthors: [Anna Müller, Tom Reed]\n"
        "---\n\n# Überschrift\n\nEin Satz im Körper.\n"
    )
    extraction = extract(source.encode(), "notiz.md")
    assert extraction.kind == "markdown"
    assert extraction.text == source  # offsets stay file offsets
    assert extraction.body == "# Überschrift\n\nEin Satz im Körper.\n"
    assert (extraction.title, extraction.date) == ("Grüße: aus Zürich", "2022-03-14")
    assert extraction.authors == ("Anna Müller", "Tom Reed")
    start, _ = span(extraction, "Ein Satz")
    assert extraction.location(start) == "line 9"


def test_markdown_with_invalid_front_matter_keeps_it_as_text() -> None:
    source = "---\ntitle: [kaputt\n---\nText.\n"
    extraction = extract(source.encode(), "kaputt.md")
    assert extraction.body_start == 0 and extraction.title is None


def test_text_with_metadata_line_as_before() -> None:
    source = " date 2022-03 Von William Boston und Tim Higgins\n\nFRANKFURT (Dow Jones)--Text."
    extraction = extract(source.encode(), "000.txt")
    assert extraction.text == source and extraction.kind == "text"
    assert extraction.body.startswith("FRANKFURT")
    assert (extraction.date, extraction.authors) == ("2022-03", ("William Boston", "Tim Higgins"))


@pytest.mark.parametrize(
    ("make", "source", "kind"),
    [
        (lambda: ARTICLE.encode(), "artikel.pdf", "html"),
        (make_pdf, "bericht.docx", "pdf"),
        (make_docx, "protokoll.html", "docx"),
        (make_pdf, "bericht.txt", "pdf"),
    ],
)
def test_lying_extension_is_read_as_what_it_is(
    make: Callable[[], bytes], source: str, kind: str
) -> None:
    assert extract(make(), source).kind == kind


@pytest.mark.parametrize(
    ("data", "source", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "bild.txt", "is named .txt but is a PNG image"),
        (b"abc\x00\x01\x02" * 100, "daten.md", "is named .md but is a binary file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "alt.docx", "old Office file"),
        (b"Nur ein Text.", "text.pdf", "is named .pdf but is plain text, not a PDF"),
        (b"Text", "notiz.rtf", "unsupported extension '.rtf'"),
        (b"PK\x03\x04\x00\x00kaputt", "daten.txt", "is named .txt but is a zip archive, not a"),
    ],
)
def test_lying_extension_is_refused(data: bytes, source: str, message: str) -> None:
    _refused(data, source, message, 1.0)


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".pdf", ".docx", ".html", ".htm"} == SUPPORTED_SUFFIXES


def test_importing_formats_loads_no_parser() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qa.ingest.formats; "
        "print(sorted(m for m in ('pypdfium2', 'docx', 'trafilatura', 'lxml', 'PIL', 'yaml')"
        " if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
