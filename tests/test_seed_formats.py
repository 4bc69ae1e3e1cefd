"""Seeds of every format end to end: build, cite file, page and location, view, rebuild."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
import pytest
from app_server import load_app
from seed_files import (
    ARTICLE_HTML,
    BOARD,
    FERRY,
    LAKE,
    MIRROR,
    NOTE_MD,
    REPORT_PAGES,
    make_report_pdf,
    write_bad_seeds,
    write_format_seeds,
)

import qa
from qa.cli import main
from qa.config import INDEX_FORMAT_VERSION
from qa.errors import IndexCorruptError, InvalidQueryError
from qa.ingest import seeds as seeds_module
from qa.ingest.formats import extract
from qa.integrations import passage_to_document
from qa.ui.document import PAGE_SCALE, document_view
from qa.ui.render import source_title

PDF_TEXT = (
    "Jahresbericht der Werft Möwenbrück\n\n"
    "Die Werft Möwenbrück baut seit 1950 Fähren und Fischkutter für die Ostsee. Im "
    "Berichtsjahr beschäftigte sie 412 Menschen.\n\n"
    "Die neue Fähre\n\n"
    f"{FERRY} Sie bietet Platz für 320 Fahrgäste und 48 Autos.\n\n"
    "Ausblick\n\n"
    "Für das Jahr 2024 plant die Werft den Bau eines Forschungsschiffs."
)
DOCX_TEXT = (
    f"Sitzung des Aufsichtsrats\n\n{BOARD}\n\nEr bestätigte den Vorstand für weitere fünf Jahre."
)
HTML_TEXT = (
    "Halvard Observatory opens\n\n"
    "The Halvard Observatory on Mount Brann opened its new telescope in September 2021.\n\n"
    f"{MIRROR} It took two years to polish."
)
SKIPPED = {
    "bild.txt": (
        "Seed bild.txt is named .txt but is a PNG image, not a text file; remove it or save it "
        "in a supported format."
    ),
    "bombe.docx": (
        "Seed bombe.docx: word/document.xml would inflate 1,029-fold, over the 200-fold limit "
        "(a zip bomb?); it is not read."
    ),
    "geheim.pdf": (
        "Seed geheim.pdf is an encrypted PDF that needs a password; save a copy without a "
        "password (or its text as .txt) in the seeds folder."
    ),
    "kaputt.pdf": (
        "Seed kaputt.pdf is a corrupt PDF that cannot be opened (Failed to load document "
        "(PDFium: Data format error).); export it anew or add its text as .txt."
    ),
    "riesig.html": (
        "Seed riesig.html is 20,971,553 bytes, over the 20,971,520-byte limit for .html seeds; "
        "split it into smaller files."
    ),
    "scan.pdf": (
        "Seed scan.pdf has no text layer (scanned?); add a PDF with text or its text as .txt."
    ),
}


class Corpus(NamedTuple):
    seeds: Path
    index: Path
    stats: qa.IndexStats


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The four good seeds and six bad ones, built once for the module."""
    root = tmp_path_factory.mktemp("formats")
    seeds = write_format_seeds(root / "seeds")
    write_bad_seeds(seeds)
    return Corpus(seeds, root / "index", qa.build_index(seeds, root / "index"))


@pytest.fixture(scope="module")
def retriever(corpus: Corpus) -> qa.Retriever:
    return qa.load_index(corpus.index)


@pytest.fixture
def extracted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the seeds the format readers are called for (by source)."""
    calls: Counter[str] = Counter()
    real = seeds_module.extract

    def counting(data: bytes, source: str, **kwargs: Any) -> Any:
        calls[source] += 1
        return real(data, source, **kwargs)

    monkeypatch.setattr(seeds_module, "extract", counting)
    return calls


def _copy(corpus: Corpus, tmp_path: Path) -> Corpus:
    """A private copy of the module's seeds and index that a test may change."""
    shutil.copytree(corpus.seeds, tmp_path / "seeds")
    shutil.copytree(corpus.index, tmp_path / "index")
    return Corpus(tmp_path / "seeds", tmp_path / "index", corpus.stats)


# --- build ----------------------------------------------------------------------------------


def test_build_indexes_every_format_and_skips_bad_files_with_reasons(corpus: Corpus) -> None:
    stats = corpus.stats
    assert (stats.documents, stats.chunks) == (4, 4)
    assert {s.source: s.reason for s in stats.skipped} == SKIPPED
    info = qa.index_info(corpus.index, corpus.seeds)
    assert not info.stale  # unchanged bad seeds are not news
    manifest = json.loads((_version(corpus.index) / "manifest.json").read_text(encoding="utf-8"))
    records = {d["source"]: d for d in manifest["documents"]}
    assert {s: (d["kind"], d["title"], d["pages"]) for s, d in records.items()} == {
        "almsee.md": ("markdown", "Wanderung zum Almsee", 0),
        "bericht.pdf": ("pdf", "Jahresbericht 2022", 3),
        "protokoll.docx": ("docx", "Protokoll der Aufsichtsratssitzung", 0),
        "web/observatory.html": ("html", "Halvard Observatory opens", 0),
    }
    assert {s: d["chars"] for s, d in records.items()} == {
        "almsee.md": len(NOTE_MD),
        "bericht.pdf": len(PDF_TEXT),
        "protokoll.docx": len(DOCX_TEXT),
        "web/observatory.html": len(HTML_TEXT),
    }


def _version(index: Path) -> Path:
    return index / (index / "CURRENT").read_text(encoding="utf-8").strip()


def test_each_content_keeps_its_text_and_location_map_in_the_index(corpus: Corpus) -> None:
    version = _version(corpus.index)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    pdf = next(d for d in manifest["documents"] if d["source"] == "bericht.pdf")
    name = f"extractions/{pdf['sha256']}.npz"
    assert name in manifest["files"]
    with np.load(version / name, allow_pickle=False) as arrays:
        assert arrays["text"].tobytes().decode("utf-8") == PDF_TEXT
        assert str(arrays["kind"]) == "pdf"
        assert arrays["pages"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3]  # one entry a printed line
    html = next(d for d in manifest["documents"] if d["kind"] == "html")
    assert f"extractions/{html['sha256']}-html.npz" in manifest["files"]


# --- answers and passages -----------------------------------------------------------------


FERRY_DE = "Wann wurde die Fähre Seeschwalbe getauft?"
FERRY_EN = "When was the ferry Seeschwalbe christened?"
BOARD_DE = "Wo tagte der Aufsichtsrat der Werft?"


@pytest.mark.parametrize(
    ("question", "source", "quote", "page", "location", "span"),
    [
        (FERRY_DE, "bericht.pdf", FERRY, 2, "p. 2", "14. Juni 2022"),
        (FERRY_EN, "bericht.pdf", FERRY, 2, "p. 2", "14. Juni 2022"),
        (BOARD_DE, "protokoll.docx", BOARD, None, "¶ 2", "Lübeck"),
        ("How wide is the main mirror of the Halvard telescope?", "web/observatory.html", MIRROR,
         None, "¶ 3", "4.2 metres"),
        ("Wie hoch liegt der Almsee?", "almsee.md", LAKE, None, "line 9", "1240 Metern Höhe"),
    ],
)  # fmt: skip
def test_citations_point_at_file_page_and_location_with_exact_offsets(
    retriever: qa.Retriever,
    corpus: Corpus,
    question: str,
    source: str,
    quote: str,
    page: int | None,
    location: str,
    span: str | None,
) -> None:
    answer = retriever.answer(question)
    assert answer.found
    first = answer.citations[0]
    assert (first.source, first.quote, first.page, first.location) == (
        source,
        quote,
        page,
        location,
    )
    text = qa.read_document(source, seeds_dir=corpus.seeds).text
    assert text[first.start : first.end] == quote
    assert (first.span.text if first.span else None) == span
    if first.span is not None:
        assert text[first.span.start : first.span.end] == span


def test_markdown_offsets_are_file_offsets(retriever: qa.Retriever, corpus: Corpus) -> None:
    [citation, *_] = retriever.answer("Wie hoch liegt der Almsee?").citations
    on_disk = (corpus.seeds / "almsee.md").read_text(encoding="utf-8")
    assert (citation.start, citation.end) == (113, 189)
    assert on_disk[citation.start : citation.end] == LAKE


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Fähre Seeschwalbe", ("bericht.pdf", "Jahresbericht 2022", "2023-04-18",
                               ("Anna Müller", "Tom Reed"), 1, "pp. 1–3")),
        ("Aufsichtsrat Hotel Adler", ("protokoll.docx", "Protokoll der Aufsichtsratssitzung",
                                      "2023-02-03", ("Jonas Weber",), None, "¶ 1")),
        ("Halvard telescope mirror", ("web/observatory.html", "Halvard Observatory opens",
                                      "2021-09-30", ("Maria Keller",), None, "¶ 1")),
        ("Almsee Höhe", ("almsee.md", "Wanderung zum Almsee", "2020-08-15",
                         ("Lena Berger", "Paul Huber"), None, "line 7")),
    ],
)  # fmt: skip
def test_passages_carry_the_files_metadata_and_location(
    retriever: qa.Retriever, question: str, expected: tuple[Any, ...]
) -> None:
    [top] = retriever.retrieve(question, 1)
    assert (top.source, top.title, top.date, top.authors, top.page, top.location) == expected


def test_cli_and_json_show_page_and_location(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    question = FERRY_DE
    assert main(["ask", question, "--index", str(corpus.index)]) == 0
    assert "[1] bericht.pdf:175-236 (p. 2)  Die Fähre Seeschwalbe" in capsys.readouterr().out
    assert main(["ask", question, "--json", "--index", str(corpus.index)]) == 0
    citation = json.loads(capsys.readouterr().out)["citations"][0]
    assert (citation["page"], citation["location"]) == (2, "p. 2")
    assert main(["search", "Aufsichtsrat Lübeck", "-k", "1", "--index", str(corpus.index)]) == 0
    assert capsys.readouterr().out.startswith("1. protokoll.docx:0-156 (¶ 1)  score ")


def test_langchain_metadata_and_panel_title_name_the_page(retriever: qa.Retriever) -> None:
    answer = retriever.answer(FERRY_DE)
    citation = answer.citations[0]
    passage = answer.passage_of(citation)
    metadata = passage_to_document(passage).metadata
    assert (metadata["title"], metadata["page"], metadata["location"]) == (
        "Jahresbericht 2022",
        1,
        "pp. 1–3",
    )
    assert source_title("[1]", passage, citation) == (
        "[1] bericht.pdf · p. 2 · 2023-04-18 · Anna Müller, Tom Reed"
    )


# --- reading a document -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind", "text", "title", "pages"),
    [
        ("bericht.pdf", "pdf", PDF_TEXT, "Jahresbericht 2022", 3),
        ("protokoll.docx", "docx", DOCX_TEXT, "Protokoll der Aufsichtsratssitzung", 0),
        ("web/observatory.html", "html", HTML_TEXT, "Halvard Observatory opens", 0),
        ("almsee.md", "markdown", NOTE_MD, "Wanderung zum Almsee", 0),
    ],
)
def test_read_document_and_the_document_endpoint_give_the_canonical_text(
    corpus: Corpus,
    app: ModuleType,
    extracted: Counter[str],
    source: str,
    kind: str,
    text: str,
    title: str,
    pages: int,
) -> None:
    document = qa.read_document(source, seeds_dir=corpus.seeds)
    assert (document.kind, document.text, document.title, document.pages) == (
        kind,
        text,
        title,
        pages,
    )
    assert extracted == {source: 1}  # the library reads the seed itself
    endpoint = app.QAApp(corpus.seeds, corpus.index).api_document(source)
    assert extracted == {source: 1}  # the app takes the indexed text of these very bytes
    assert endpoint == asdict(document)
    assert endpoint["text"] == text and endpoint["kind"] == kind


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_app("qa_app_formats")


def test_the_answer_and_search_endpoints_carry_page_and_location(
    corpus: Corpus, app: ModuleType
) -> None:
    ui = app.QAApp(corpus.seeds, corpus.index)
    citation = ui.api_answer(FERRY_DE, 3)["citations"][0]
    assert (citation["source"], citation["page"], citation["location"]) == (
        "bericht.pdf",
        2,
        "p. 2",
    )
    text = ui.api_document("bericht.pdf")["text"]
    assert text[citation["start"] : citation["end"]] == citation["quote"] == FERRY
    [top] = ui.api_search("Aufsichtsrat Lübeck", 1)
    assert (top["source"], top["page"], top["location"], top["start"]) == (
        "protokoll.docx",
        None,
        "¶ 1",
        0,
    )


def test_the_document_endpoint_refuses_bad_and_outside_files(
    corpus: Corpus, app: ModuleType
) -> None:
    ui = app.QAApp(corpus.seeds, corpus.index)
    with pytest.raises(gr.Error) as outside:
        ui.api_document("../index/CURRENT")
    assert outside.value.message.startswith("Cannot show '../index/CURRENT': it leaves the seeds")
    with pytest.raises(gr.Error) as encrypted:
        ui.api_document("geheim.pdf")
    assert encrypted.value.message == SKIPPED["geheim.pdf"]


# --- the side panel -------------------------------------------------------------------------


def _png(html: str) -> np.ndarray:
    from PIL import Image

    found = re.search(r"src='data:image/png;base64,([^']+)'", html)
    assert found is not None
    image = Image.open(io.BytesIO(base64.b64decode(found.group(1))))
    return np.asarray(image.convert("RGB")).astype(int)


def test_the_panel_shows_the_cited_pdf_page_with_its_highlight(
    corpus: Corpus, retriever: qa.Retriever, extracted: Counter[str]
) -> None:
    answer = retriever.answer(FERRY_DE)
    citation = answer.citations[0]
    assert citation.span is not None
    span = (citation.span.start, citation.span.end)
    html = document_view(
        corpus.seeds, corpus.index, "bericht.pdf", citation.start, citation.end, span
    )
    assert not extracted  # text and boxes came from the index, not from parsing the PDF
    assert "alt='Page 2 of 3 of bericht.pdf, the cited sentence highlighted'" in html
    assert "<span class='qa-page-label'>Page 2 of 3</span>" in html
    assert "<div class='qa-doc-name'>Jahresbericht 2022</div>" in html
    previous = json.dumps(["bericht.pdf", citation.start, citation.end, *span, 1])
    assert f"value='{previous.replace(chr(34), '&quot;')}'" in html
    assert "<b class='qa-span'>14. Juni 2022</b>" in html  # the quote under the page
    pixels = _png(html)
    assert pixels.shape == (1263, 893, 3)  # A4 at 1.5 pixels a point
    pdf = extract(make_report_pdf(), "bericht.pdf")
    [(page, x0, top, x1, bottom)] = pdf.boxes(citation.start, citation.end)
    [(_, sx0, _, sx1, _)] = pdf.boxes(*span)
    row = pixels[int((top + bottom) / 2 * PAGE_SCALE)]
    # Yellow over the sentence, orange over the answer span, white beside the line.
    yellow = row[int(x0 * PAGE_SCALE) + 2 : int(sx0 * PAGE_SCALE) - 2]
    assert page == 2
    assert np.mean((yellow[:, 0] > 200) & (yellow[:, 2] < 200)) > 0.5
    orange = row[int(sx0 * PAGE_SCALE) + 2 : int(sx1 * PAGE_SCALE) - 2]
    assert np.median(orange[:, 1]) < 200 < np.median(orange[:, 0])
    assert (row[int(x1 * PAGE_SCALE) + 20 :] == 255).all()
    mark = re.search(r"id='qa-doc-mark' style='left:([\d.]+)%;top:([\d.]+)%", html)
    assert mark is not None
    assert float(mark.group(1)) == pytest.approx(100 * 72 / 595.28, abs=0.01)


def test_the_panel_turns_pages_and_refuses_one_out_of_range(
    corpus: Corpus, retriever: qa.Retriever
) -> None:
    citation = retriever.answer(FERRY_DE).citations[0]
    last = document_view(
        corpus.seeds, corpus.index, "bericht.pdf", citation.start, citation.end, page=3
    )
    assert (
        "<span class='qa-page-label'>Page 3 of 3 · the cited sentence is on page 2</span>" in last
    )
    assert "alt='Page 3 of 3 of bericht.pdf'" in last and "qa-doc-mark" not in last
    assert re.search(r"title='Next page' disabled>Next ▶</button>", last)
    assert not (_png(last)[:, :, 2] < 200).all(axis=1).any()
    with pytest.raises(InvalidQueryError, match=r"bericht\.pdf has pages 1–3, not page 9"):
        document_view(corpus.seeds, corpus.index, "bericht.pdf", 0, 10, page=9)


@pytest.mark.parametrize(
    ("source", "quote", "name"),
    [
        ("protokoll.docx", BOARD, "Protokoll der Aufsichtsratssitzung"),
        ("web/observatory.html", MIRROR, "Halvard Observatory opens"),
        ("almsee.md", LAKE, "Wanderung zum Almsee"),
    ],
)
def test_the_panel_shows_other_formats_as_marked_text(
    corpus: Corpus, source: str, quote: str, name: str
) -> None:
    text = qa.read_document(source, seeds_dir=corpus.seeds).text
    start = text.index(quote)
    html = document_view(corpus.seeds, corpus.index, source, start, start + len(quote))
    assert f"<mark class='qa-cited' id='qa-doc-mark'>{quote}</mark>" in html
    assert f"<div class='qa-doc-name'>{name}</div>" in html
    assert "<img" not in html


def test_the_panel_reads_a_pdf_the_index_does_not_hold(
    corpus: Corpus, tmp_path: Path, extracted: Counter[str]
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    pages = [("Neu", ["Ein ganz neuer Bericht steht hier."])]
    (seeds / "neu.pdf").write_bytes(make_report_pdf(pages))
    html = document_view(seeds, corpus.index, "neu.pdf", 5, 38)
    assert extracted == {"neu.pdf": 1}
    assert "alt='Page 1 of 1 of neu.pdf, the cited sentence highlighted'" in html


# --- rebuilding -----------------------------------------------------------------------------


def test_an_incremental_build_reads_only_the_changed_pdf(
    corpus: Corpus, tmp_path: Path, extracted: Counter[str]
) -> None:
    copy = _copy(corpus, tmp_path)
    unchanged = qa.build_index(copy.seeds, copy.index)
    # Nothing parsed: not the good seeds (their texts come from the index), not the bad ones.
    assert extracted == {}
    assert (unchanged.documents_unchanged, unchanged.chunks_embedded) == (4, 0)
    assert {s.source: s.reason for s in unchanged.skipped} == SKIPPED

    changed_pages = [*REPORT_PAGES]
    changed_pages[1] = ("Die neue Fähre", ["Die Fähre Seeschwalbe wurde am 21. Juli 2022 getauft."])
    (copy.seeds / "bericht.pdf").write_bytes(make_report_pdf(changed_pages))
    stats = qa.build_index(copy.seeds, copy.index)
    assert extracted == {"bericht.pdf": 1}
    assert (stats.documents_changed, stats.documents_unchanged, stats.chunks_embedded) == (1, 3, 1)
    answer = qa.load_index(copy.index).answer(FERRY_DE)
    first = answer.citations[0]
    assert (first.quote, first.page, first.location) == (
        "Die Fähre Seeschwalbe wurde am 21. Juli 2022 getauft.",
        2,
        "p. 2",
    )
    board = qa.load_index(copy.index).answer(BOARD_DE).citations[0]
    assert (board.source, board.location) == ("protokoll.docx", "¶ 2")  # reused, still located


def test_a_damaged_extraction_file_is_read_again_from_its_seed(
    corpus: Corpus, tmp_path: Path, extracted: Counter[str], caplog: pytest.LogCaptureFixture
) -> None:
    copy = _copy(corpus, tmp_path)
    version = _version(copy.index)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    sha = next(d["sha256"] for d in manifest["documents"] if d["source"] == "bericht.pdf")
    damaged = version / f"extractions/{sha}.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        html = document_view(copy.seeds, copy.index, "bericht.pdf", 175, 236)
    assert "Page 2 of 3" in html and extracted == {"bericht.pdf": 1}  # the seed, parsed
    assert f"Index file {damaged} does not match its checksum" in caplog.text
    stats = qa.build_index(copy.seeds, copy.index)
    assert extracted == {"bericht.pdf": 2}
    assert (stats.documents_unchanged, stats.chunks_embedded) == (4, 0)  # vectors still reused
    assert _version(copy.index) != version  # a repaired version was written
    extracted.clear()
    document_view(copy.seeds, copy.index, "bericht.pdf", 175, 236)
    assert extracted == {}


@pytest.mark.slow
def test_html_renamed_to_text_is_read_again_as_text(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seite.html").write_text(ARTICLE_HTML, encoding="utf-8")
    (seeds / "notiz.md").write_text(NOTE_MD, encoding="utf-8")
    qa.build_index(seeds, tmp_path / "index")
    (seeds / "seite.html").rename(seeds / "seite.txt")
    stats = qa.build_index(seeds, tmp_path / "index")
    # The same bytes, but now read as text: the raw HTML is chunked and embedded anew.
    assert (stats.documents_added, stats.documents_removed, stats.chunks_reused) == (1, 1, 1)
    assert stats.chunks_embedded >= 1
    passages = qa.load_index(tmp_path / "index").retrieve("tracking must not be indexed", 5)
    [page] = [p for p in passages if p.source == "seite.txt"]
    assert "<article>" in page.text and page.location == "line 1"


@pytest.mark.slow
def test_an_index_of_the_previous_format_is_rebuilt(corpus: Corpus, tmp_path: Path) -> None:
    copy = _copy(corpus, tmp_path)
    path = _version(copy.index) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    old = INDEX_FORMAT_VERSION - 1
    data = json.dumps({**manifest, "format_version": old}).encode("utf-8")
    path.write_bytes(data)  # a checksummed manifest of the previous format
    (path.parent / "manifest.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    message = (
        f"Index file {path} is in index format {old}, this qa reads format "
        f"{INDEX_FORMAT_VERSION}; run `qa build` to rebuild the index."
    )
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(copy.index)
    assert str(caught.value) == message
    reason = qa.needs_build(copy.seeds, copy.index)
    assert reason is not None and reason.kind is qa.BuildNeed.UNREADABLE
    stats = qa.build_index(copy.seeds, copy.index)
    assert stats.full_rebuild_reason == f"previous index unreadable: {message}"
    assert stats.documents == 4
