"""Answer quality on the seed article and the test seeds: cited sentences, spans, no-answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PORSCHE

import qa
from qa.answer.spans import find_date, find_number, find_place, question_kind
from qa.config import AnswerSettings
from qa.ingest.language import detect_language

MEETING = "fand im November am Rande der Los Angeles Auto Show statt"


def _file(seeds: Path, source: str) -> str:
    return (seeds / source).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "question",
    ["When did Porsche meet Apple?", "Wann haben sich Porsche und Apple getroffen?"],
)
def test_meeting_is_answered_with_november_2021_and_the_cited_sentence(
    retriever: qa.Retriever, seeds_copy: Path, question: str
) -> None:
    answer = retriever.answer(question)

    assert answer.found
    assert answer.passages[0].source == PORSCHE
    assert MEETING in answer.passages[0].text
    assert answer.direct == "November 2021"
    first = answer.citations[0]
    assert (first.number, first.source, first.start, first.end) == (1, PORSCHE, 1145, 1398)
    assert first.quote == _file(seeds_copy, PORSCHE)[first.start : first.end]
    assert MEETING in first.quote
    assert first.span is not None
    assert (first.span.kind, first.span.text, first.span.value) == (
        "date",
        "November",
        "November 2021",
    )
    assert _file(seeds_copy, PORSCHE)[first.span.start : first.span.end] == "November"
    assert answer.text.startswith('November 2021 — "Das Treffen zwischen Blume')
    assert "Los Angeles Auto Show" in answer.text and "[1]" in answer.text


def test_where_names_a_place(retriever: qa.Retriever) -> None:
    answer = retriever.answer("Where did Porsche meet Apple?")

    # Two sentences answer this: the trip "in die USA" and the meeting at the auto show.
    assert answer.found
    first = answer.citations[0]
    assert first.span is not None and first.span.kind == "place"
    assert (first.span.text, answer.direct) in {
        ("USA", "USA"),
        ("Los Angeles Auto Show", "Los Angeles Auto Show"),
    }
    assert first.span.text in first.quote


@pytest.mark.parametrize(
    "question",
    ["What is Porsche's parent company?", "Was ist die Muttergesellschaft von Porsche?"],
)
def test_parent_company_is_volkswagen_ag(retriever: qa.Retriever, question: str) -> None:
    answer = retriever.answer(question)

    assert answer.found
    first = answer.citations[0]
    assert (first.source, first.start, first.end) == (PORSCHE, 935, 1076)
    assert first.quote.startswith("Die Muttergesellschaft von Porsche, die Volkswagen AG,")


@pytest.mark.parametrize(
    "question",
    [
        "Wer ist der Finanzvorstand von Porsche?",
        # Retrieval alone cited the Volkswagen sentence for the English question; the reader
        # reads the meeting sentence with the question and finds the name.
        "Who is Porsche's CFO?",
        "Who is Porsche's chief financial officer?",
    ],
)
def test_cfo_is_lutz_meschke(retriever: qa.Retriever, question: str) -> None:
    answer = retriever.answer(question)

    assert answer.found
    assert answer.direct == "Lutz Meschke"
    assert answer.passages[0].source == PORSCHE
    first = answer.citations[0]
    assert (first.source, first.start, first.end) == (PORSCHE, 1145, 1398)
    assert "Porsche-Finanzvorstand Lutz Meschke" in first.quote
    assert first.span is not None and first.quote[first.span.start - first.start :].startswith(
        "Lutz Meschke"
    )


@pytest.mark.parametrize(
    ("question", "text"),
    [
        ("What is the capital of Peru?", "The seeds do not answer this question."),
        ("How do I bake sourdough bread?", "The seeds do not answer this question."),
        ("Wie hoch ist der Eiffelturm?", "Die Seeds beantworten diese Frage nicht."),
    ],
)
def test_unrelated_questions_are_not_answered(
    retriever: qa.Retriever, question: str, text: str
) -> None:
    answer = retriever.answer(question)

    assert not answer.found
    assert answer.text == text
    assert answer.citations == ()
    assert len(answer.passages) == len(retriever)  # the closest passages are still shown
    settings = AnswerSettings()
    assert answer.confidence < min(
        settings.threshold_cross_language, settings.threshold_same_language
    )


def test_english_seed_date_answer(retriever: qa.Retriever) -> None:
    answer = retriever.answer("When did the Lindholm Harbour Bridge open?")

    assert answer.direct == "14 June 1998"
    assert answer.citations[0].source == "en/harbour_bridge.md"
    assert answer.citations[0].quote.startswith(
        "The Lindholm Harbour Bridge opened on 14 June 1998"
    )


def test_how_many_picks_the_number_of_the_asked_thing() -> None:
    sentence = (
        "Heute beschäftigt das Familienunternehmen 85 Mitarbeiter und röstet jährlich rund "
        "1.200 Tonnen Kaffee."
    )

    span = find_number(sentence, "Wie viele Mitarbeiter hat die Rösterei Hansen?")

    assert span is not None and (span.text, span.start) == ("85", 42)
    span = find_number(sentence, "Wie viel Kaffee röstet die Rösterei im Jahr?")
    assert span is not None and span.text == "rund 1.200 Tonnen"


def test_how_tall_picks_the_measure_not_the_count() -> None:
    span = find_number("Its two pylons are 96 metres tall.", "How tall are the pylons?")

    assert span is not None and span.text == "96 metres"


def test_numbers_are_not_cut_out_of_years() -> None:
    span = find_number("Die Rösterei wurde 1952 gegründet.", "Wann wurde sie gegründet?")

    assert span is not None and span.text == "1952"


def test_cross_lingual_who_question_finds_the_german_founder(retriever: qa.Retriever) -> None:
    answer = retriever.answer("Who founded the Hansen coffee roastery?")

    assert answer.citations[0].source == "de/roesterei.txt"
    assert "von Karl Hansen gegründet" in answer.citations[0].quote


def test_second_citation_has_its_own_offsets(retriever: qa.Retriever, seeds_copy: Path) -> None:
    answer = retriever.answer("Wann haben sich Porsche und Apple getroffen?")

    for citation in answer.citations:
        text = _file(seeds_copy, citation.source)
        assert text[citation.start : citation.end] == citation.quote
        assert f"[{citation.number}]" in answer.text


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did Porsche meet Apple?", "date"),
        ("In welchem Jahr wurde die Rösterei gegründet?", "date"),
        ("How many employees does it have?", "number"),
        ("Wie hoch sind die Pylone?", "number"),
        ("Where did they meet?", "place"),
        ("Wo wurde die Rösterei gegründet?", "place"),
        ("Who is the CFO?", None),
    ],
)
def test_question_kind(question: str, kind: str | None) -> None:
    assert question_kind(question) == kind


def test_relative_dates_resolve_against_the_document_date() -> None:
    sentence = "Führungskräfte von Porsche seien Ende letzten Jahres in die USA gereist."

    span = find_date(sentence, language="de", document_date="2022-03")

    assert span is not None
    assert (span.text, span.value) == ("letzten Jahres", "2021")
    assert sentence[span.start : span.end] == "letzten Jahres"


def test_absolute_dates_need_no_document_date() -> None:
    span = find_date(
        "Am 6. Oktober 1973 starteten Syrien und Ägypten", language="de", document_date=None
    )

    assert span is not None
    assert (span.text, span.value) == ("6. Oktober 1973", "6 October 1973")


def test_german_weekday_abbreviations_are_not_dates() -> None:
    # dateparser reads "mit" as Mittwoch; a date needs a digit, a month or a relative word.
    assert (
        find_date("Er sprach mit Apple über Projekte.", language="de", document_date="2022-03")
        is None
    )


def test_number_skips_numbers_the_question_names() -> None:
    span = find_number(
        "Im Jahr 2020 sondierte das Unternehmen 12 Zulieferer.",
        "How many suppliers did Apple approach in 2020?",
    )

    assert span is not None and span.text == "12"


def test_place_skips_months_and_question_words() -> None:
    span = find_place("Sie trafen sich im November in Los Angeles.", "Where did they meet?")

    assert span is not None and span.text == "Los Angeles"


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("When did Porsche meet Apple?", "en"),
        ("Wann haben sich Porsche und Apple getroffen?", "de"),
        ("Was hat Lady Gaga gesungen?", "de"),  # "was" is English too: "hat" decides
        ("In welchem Jahr starb Tesla?", "de"),
        ("Was bewirkt körperliche Bestrafung bei Schülern?", "de"),  # umlauts count
        ("What was the Apollo program?", "en"),
    ],
)
def test_question_language(question: str, language: str) -> None:
    # The language decides which no-answer threshold applies and whether BM25 is fused.
    assert detect_language(question) == language
