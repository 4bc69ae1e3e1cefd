"""Chunking and sentence splitting: exact file offsets and sentence-aware boundaries."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from conftest import PORSCHE, SEEDS

from qa.ingest.chunking import Chunker
from qa.ingest.seeds import read_seed
from qa.ingest.sentences import sentence_spans
from qa.types import Document

XQUAD_DOCS = Path("/work/shared/data/xquad_de/docs")
XQUAD_SAMPLE = ("Apollo_program.txt", "Black_Death.txt", "Harvard_University.txt", "Doctor_Who.txt")
# A chunk ends after sentence punctuation (maybe a closing quote/bracket) or at a line end.
_SENTENCE_END = re.compile(r"[.!?…][\"'”“»«)]?$")
_SENTENCE_START = re.compile(r"(?:[.!?…][\"'”“»«)]?|\n)\s*$")
_ABBREVIATION_END = re.compile(r"(?:\b\w|\b\d\d|\bDr|\bz\. B)\.$")


def _documents() -> list[Document]:
    docs = [read_seed(p, p.relative_to(SEEDS).as_posix()) for p in sorted(SEEDS.rglob("*.*"))]
    if XQUAD_DOCS.is_dir():
        docs += [read_seed(XQUAD_DOCS / name, name) for name in XQUAD_SAMPLE]
    return docs


DOCUMENTS = _documents()


def _ends_sentence(doc: Document, end: int) -> bool:
    return bool(_SENTENCE_END.search(doc.text[:end])) or doc.text[end : end + 1] in ("", "\n")


def _starts_sentence(doc: Document, start: int) -> bool:
    return start == doc.body_start or bool(_SENTENCE_START.search(doc.text[:start]))


def test_corpus_includes_xquad_documents() -> None:
    # Guards the parametrisation below: the XQuAD sample must really be part of it.
    assert len(DOCUMENTS) == 3 + len(XQUAD_SAMPLE)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.source)
@pytest.mark.parametrize(("size", "overlap"), [(1000, 200), (300, 50)])
def test_every_chunk_is_its_file_slice(doc: Document, size: int, overlap: int) -> None:
    chunks = Chunker(size, overlap).split(doc)
    assert chunks
    covered = bytearray(len(doc.text))
    for chunk in chunks:
        assert chunk.source == doc.source
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= size
        assert chunk.start >= doc.body_start
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    # In order, overlapping by at most `overlap`, and every word of the body is in a chunk.
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start
        assert after.start >= before.end - overlap
    missed = [i for i in range(doc.body_start, len(doc.text)) if not covered[i]]
    assert all(doc.text[i].isspace() for i in missed)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.source)
def test_default_chunks_follow_sentences(doc: Document) -> None:
    spans = sentence_spans(doc.text, doc.body_start, language="de")
    chunker = Chunker()
    for chunk in chunker.split(doc):
        # Only a sentence longer than a whole chunk may be cut inside.
        inside_long = any(
            e - s > chunker.chunk_size and s < point < e
            for s, e in spans
            for point in (chunk.start, chunk.end)
        )
        if not inside_long:
            assert _ends_sentence(doc, chunk.end), chunk.text[-80:]
            assert _starts_sentence(doc, chunk.start), chunk.text[:80]
        assert not _ABBREVIATION_END.search(chunk.text), chunk.text[-80:]


def test_metadata_line_is_not_in_any_chunk() -> None:
    doc = read_seed(SEEDS / PORSCHE, PORSCHE)
    chunks = Chunker().split(doc)
    assert [(c.start, c.end) for c in chunks] == [(50, 1398), (1400, 2509)]
    assert chunks[0].text.startswith("FRANKFURT (Dow Jones)--Porsche und Apple")
    assert all("William Boston" not in c.text for c in chunks)


def test_chunks_do_not_end_at_abbreviations_or_ordinals() -> None:
    sentence = "Das Treffen fand am 2. März in Berlin statt, sagte Dr. Müller am Telefon. "
    doc = Document(source="t.txt", text=sentence * 6, sha256="")
    chunks = Chunker(120, 20).split(doc)
    assert [c.text for c in chunks] == [sentence.strip()] * 6
    assert [c.start for c in chunks] == [i * len(sentence) for i in range(6)]


def test_english_abbreviations_and_initials_stay_in_the_chunk() -> None:
    text = (
        "Mr. Smith met Nicholas E. Golovin in the U.S. capital. "
        "They talked for hours about rockets. "
    ) * 4
    doc = Document(source="t.md", text=text, sha256="")
    chunks = Chunker(60, 0).split(doc)
    assert [c.text for c in chunks] == [
        "Mr. Smith met Nicholas E. Golovin in the U.S. capital.",
        "They talked for hours about rockets.",
    ] * 4


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_chunker_rejects_bad_settings(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match=r"^chunk_(size|overlap) must"):
        Chunker(size, overlap)


def test_chunker_settings_are_recorded() -> None:
    settings = Chunker(800, 100).settings
    assert settings["splitter"] == "langchain_text_splitters.RecursiveCharacterTextSplitter"
    assert (settings["chunk_size"], settings["chunk_overlap"]) == (800, 100)
    assert settings["separators"][:2] == [r"\n[ \t]*\n", r"\n"]


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        (
            "de",
            "Am 2. März 2022 kam Dr. Müller z. B. nach Berlin. Das war gut.",
            ["Am 2. März 2022 kam Dr. Müller z. B. nach Berlin.", "Das war gut."],
        ),
        (
            "de",
            "Die Firma u.a. mit Sitz in Bremen wuchs. Sie hat ca. 85 Mitarbeiter.",
            ["Die Firma u.a. mit Sitz in Bremen wuchs.", "Sie hat ca. 85 Mitarbeiter."],
        ),
        (
            "en",
            "Mr. Smith met Dr. Jones on Jan. 5 in the U.S. capital. It rained. It took 2.5 hours.",
            [
                "Mr. Smith met Dr. Jones on Jan. 5 in the U.S. capital.",
                "It rained.",
                "It took 2.5 hours.",
            ],
        ),
        (
            "de",
            'Er sagte: "Wir bauen das aus." Dann ging er.\n\nNeuer Absatz ohne Punkt\nZeile',
            ['Er sagte: "Wir bauen das aus."', "Dann ging er.", "Neuer Absatz ohne Punkt", "Zeile"],
        ),
    ],
)
def test_sentence_splitting(language: str, text: str, expected: list[str]) -> None:
    assert [text[s:e] for s, e in sentence_spans(text, language=language)] == expected


def test_sentence_offsets_are_file_offsets() -> None:
    doc = read_seed(SEEDS / PORSCHE, PORSCHE)
    spans = sentence_spans(doc.text, doc.body_start, language="de")
    target = (
        "Das Treffen zwischen Blume, Porsche-Finanzvorstand Lutz Meschke und anderen "
        "Porsche-Vorstandsmitgliedern mit noch unbekannten Apple-Führungskräften fand im "
        "November am Rande der Los Angeles Auto Show statt, sagte eine mit der Situation "
        "vertraute Person."
    )
    start = doc.text.index(target)
    assert (start, start + len(target)) in spans
    assert all(s >= doc.body_start for s, _ in spans)
