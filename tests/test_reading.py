"""The reading answerer: contexts cut from the evidence, spans mapped back to file offsets,
no-answer margins, and the reader/no-reader switch (real model where the behaviour needs it)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from conftest import PORSCHE

import qa
from qa.answer.reader import AnswerSpan, Reading
from qa.answer.reading import (
    CHOICE_FEATURES,
    Candidate,
    Context,
    ReadingAnswerer,
    candidates_of,
    confidence_from,
    contexts_of,
    direct_span,
    sentence_reads,
)
from qa.answer.sentences import rank_sentences
from qa.config import AnswerSettings, ReaderSettings
from qa.search.evidence import Evidence, PassageEvidence, SentenceEvidence
from qa.types import Passage, Sentence

TEXT = (
    "Porsche hat einen Finanzchef. Er heißt Lutz Meschke. Das Treffen fand im November statt. "
    "Die Aktie stieg. Apple schwieg."
)


def _evidence(question: str = "Wer ist der Finanzchef?") -> Evidence:
    """One passage of five sentences with made-up similarities (the third is the best)."""
    starts = [0]
    for i, ch in enumerate(TEXT):
        if ch == " " and TEXT[i - 1] == ".":
            starts.append(i + 1)
    bounds = [(s, TEXT.index(".", s) + 1) for s in starts]
    sentences = tuple(
        SentenceEvidence(row, Sentence("a.txt", s, e, TEXT[s:e]), sim, 0.0)
        for row, ((s, e), sim) in enumerate(
            zip(bounds, [0.80, 0.82, 0.90, 0.70, 0.60], strict=True)
        )
    )
    passage = Passage(TEXT, "a.txt", 0, len(TEXT), 0.1, 1, 0.85, 0.90, date="2022-03")
    return Evidence(question, "de", (PassageEvidence(passage, "de", sentences),))


def test_contexts_take_the_best_sentences_with_their_neighbours() -> None:
    evidence = _evidence("Wann fand das Treffen statt?")
    ranked = rank_sentences(evidence.question, evidence, AnswerSettings())
    best = ranked[0].evidence.row
    assert best == 2

    one = contexts_of(ranked, ReaderSettings(sentences=1, neighbours=1))
    assert [[s.row for s in c.sentences] for c in one] == [[best - 1, best, best + 1]]

    alone = contexts_of(ranked, ReaderSettings(sentences=1, neighbours=0))
    assert [[s.row for s in c.sentences] for c in alone] == [[best]]

    everything = contexts_of(ranked, ReaderSettings(sentences=5, neighbours=0))
    assert [[s.row for s in c.sentences] for c in everything] == [[0, 1, 2, 3, 4]]


def test_a_context_maps_reader_offsets_back_to_its_sentences() -> None:
    evidence = _evidence()
    context = Context.of(evidence.passages[0], evidence.passages[0].sentences[1:3])
    assert context.text == "Er heißt Lutz Meschke. Das Treffen fand im November statt."
    at = context.text.index("Lutz Meschke")
    sentence, start, end = context.locate(at, at + len("Lutz Meschke"))
    assert sentence.row == 1
    assert sentence.sentence.text[start:end] == "Lutz Meschke"
    # A span running past its sentence is cut at the sentence's end.
    sentence, start, end = context.locate(at, len(context.text))
    assert (sentence.row, sentence.sentence.text[start:end]) == (1, "Lutz Meschke.")


def _reading_of_two_sentences(context: Context, meschke: float, november: float) -> Reading:
    at_m = context.text.index("Lutz Meschke")
    at_n = context.text.index("November")
    return Reading(
        0,
        (
            AnswerSpan(at_m, at_m + 12, "Lutz Meschke", meschke),
            AnswerSpan(at_n, at_n + 8, "November", november),
        ),
        no_answer_score=1.0,
    )


def test_the_choice_score_mixes_reader_and_sentence_scorer() -> None:
    evidence = _evidence()
    ranked = rank_sentences(evidence.question, evidence, AnswerSettings())
    context = Context.of(evidence.passages[0], evidence.passages[0].sentences)
    reading = _reading_of_two_sentences(context, meschke=4.5, november=5.0)
    question = evidence.question
    scores = {item.row: item.score for item in ranked}
    positions = {item.row: i for i, item in enumerate(ranked)}
    assert scores[2] > scores[1]  # the scorer prefers the November sentence to Meschke's

    settings = ReaderSettings()
    candidates = candidates_of(question, [context], [reading], ranked, settings)
    # One candidate per sentence with a span; sentences without one are not candidates.
    assert sorted(c.sentence.row for c in candidates) == [1, 2]
    meschke = next(c for c in candidates if c.sentence.row == 1)
    assert (meschke.text, meschke.reader_score, meschke.lead) == ("Lutz Meschke", 4.5, 3.5)
    expected = (
        settings.choice_scorer * (scores[1] - max(scores.values()))
        + settings.choice_rank * math.log1p(positions[1])
        + settings.choice_top * (positions[1] == 0)
        + settings.choice_has_span
        + settings.choice_span * (4.5 - 5.0)
        + settings.choice_lead * (4.5 - 1.0)
    )
    assert meschke.score == pytest.approx(expected)
    # The shares are a softmax over all five sentences read, not only the two candidates.
    reads = sentence_reads(question, [context], [reading], ranked, settings)
    choice = [
        sum(w * f for w, f in zip(_weights(settings), r.features, strict=True)) for r in reads
    ]
    total = sum(math.exp(c) for c in choice)
    expected_share = {
        r.sentence.row: math.exp(c) / total for r, c in zip(reads, choice, strict=True)
    }
    assert len(reads) == 5
    assert {c.sentence.row: c.share for c in candidates} == pytest.approx(
        {1: expected_share[1], 2: expected_share[2]}
    )
    assert candidates[0].share + candidates[1].share < 1.0

    # Weighting only the reader: its favourite sentence comes first; only the scorer: its own.
    reader_only = dataclasses.replace(
        settings, choice_scorer=0.0, choice_rank=0.0, choice_top=0.0, choice_span=1.0
    )
    swapped = _reading_of_two_sentences(context, meschke=6.0, november=5.0)
    assert candidates_of(question, [context], [swapped], ranked, reader_only)[0].text == (
        "Lutz Meschke"
    )
    scorer_only = dataclasses.replace(settings, choice_span=0.0, choice_lead=0.0)
    assert candidates_of(question, [context], [swapped], ranked, scorer_only)[0].text == (
        "November"
    )


def _weights(settings: ReaderSettings) -> list[float]:
    return [getattr(settings, name) for name in CHOICE_FEATURES]


def test_sentence_reads_give_every_sentence_read_its_features() -> None:
    evidence = _evidence()
    ranked = rank_sentences(evidence.question, evidence, AnswerSettings())
    context = Context.of(evidence.passages[0], evidence.passages[0].sentences)
    reading = _reading_of_two_sentences(context, meschke=4.5, november=5.0)
    reads = {
        r.sentence.row: r
        for r in sentence_reads(evidence.question, [context], [reading], ranked, ReaderSettings())
    }
    positions = {item.row: i for i, item in enumerate(ranked)}
    top = max(item.score for item in ranked)
    scores = {item.row: item.score for item in ranked}

    assert sorted(reads) == [0, 1, 2, 3, 4]
    # A sentence without a span: no span features, only the scorer's and the ranks.
    plain = reads[4]
    assert plain.best is None and plain.answer is None
    assert plain.features == pytest.approx(
        (scores[4] - top, 0.0, 0.0, 0.0, math.log1p(positions[4]), float(positions[4] == 0), 0.0)
    )
    # A sentence with a span: against the best span read (5.0) and its no-answer score (1.0).
    meschke = reads[1]
    assert meschke.best == 4.5
    assert meschke.features[1:4] == (4.5 - 5.0, 4.5 - 1.0, 1.0)
    first = next(r for r in reads.values() if positions[r.sentence.row] == 0)
    assert first.features[0] == 0.0 and first.features[4:6] == (0.0, 1.0)


def test_a_second_sentence_is_cited_only_within_the_second_margin() -> None:
    evidence = _evidence()
    ranked = rank_sentences(evidence.question, evidence, AnswerSettings())
    contexts = [Context.of(evidence.passages[0], evidence.passages[0].sentences)]
    readings = [_reading_of_two_sentences(contexts[0], meschke=4.5, november=5.0)]
    open_settings = ReaderSettings(threshold_cross_language=-1.0, threshold_same_language=-1.0)
    first, second = candidates_of(evidence.question, contexts, readings, ranked, open_settings)
    gap = first.score - second.score
    assert gap > 0

    def cited(margin: float) -> list[int]:
        settings = dataclasses.replace(open_settings, second_margin=margin)
        answer = ReadingAnswerer(settings).decide(
            evidence.question, evidence, ranked, contexts, readings
        )
        return [c.start for c in answer.citations]

    both = [first.sentence.sentence.start, second.sentence.sentence.start]
    assert cited(gap + 0.01) == both
    assert cited(gap - 0.01) == both[:1]


def test_within_a_sentence_a_span_holding_the_kind_asked_for_wins() -> None:
    evidence = _evidence("Wann fand das Treffen statt?")
    ranked = rank_sentences(evidence.question, evidence, AnswerSettings())
    context = Context.of(evidence.passages[0], evidence.passages[0].sentences)
    treffen = context.text.index("Das Treffen")
    november = context.text.index("November")
    reading = Reading(
        0,
        (
            AnswerSpan(treffen, treffen + 11, "Das Treffen", 5.5),
            AnswerSpan(november, november + 8, "November", 5.0),
        ),
        no_answer_score=1.0,
    )
    plain = ReaderSettings(kind_weight=0.0)
    (only,) = candidates_of(evidence.question, [context], [reading], ranked, plain)
    assert (only.text, only.kind_score) == ("Das Treffen", 0.0)
    typed = dataclasses.replace(plain, kind_weight=1.0)
    (best,) = candidates_of(evidence.question, [context], [reading], ranked, typed)
    # The answer is the date; the sentence is judged by its best reader score all the same.
    assert (best.text, best.kind_score, best.reader_score, best.lead) == (
        "November",
        1.0,
        5.5,
        4.5,
    )
    assert best.score == pytest.approx(only.score)


def test_confidence_adds_the_clipped_lead_and_the_share_of_the_choice() -> None:
    settings = ReaderSettings(margin_weight=0.002, margin_clip=10.0, certainty_weight=0.02)
    evidence = _evidence()
    passage = evidence.passages[0]

    def candidate(lead: float, share: float) -> Candidate:
        return Candidate(passage.sentences[1], passage, 9, 21, 5.0, 1.0, 1.0, lead, 0.0, share)

    assert confidence_from(0.8, candidate(3.0, 0.5), settings) == pytest.approx(
        0.8 + 0.002 * 3.0 + 0.02 * 0.5
    )
    assert confidence_from(0.8, candidate(30.0, 1.0), settings) == pytest.approx(
        0.8 + 0.002 * 10.0 + 0.02
    )
    assert confidence_from(0.8, candidate(-30.0, 0.0), settings) == pytest.approx(
        0.8 - 0.002 * 10.0
    )
    assert confidence_from(0.8, None, settings) == pytest.approx(0.8 - 0.002 * 10.0)


def test_a_how_much_answer_without_a_number_loses_confidence() -> None:
    evidence = _evidence("Wie viel kostet die Aktie?")
    ranked = rank_sentences(evidence.question, evidence, AnswerSettings())
    contexts = [Context.of(evidence.passages[0], evidence.passages[0].sentences)]
    meschke = contexts[0].text.index("Lutz Meschke")
    readings = [Reading(0, (AnswerSpan(meschke, meschke + 12, "Lutz Meschke", 6.0),), 1.0)]
    open_settings = ReaderSettings(
        margin_weight=0.0,
        certainty_weight=0.0,
        threshold_cross_language=-1.0,
        threshold_same_language=-1.0,
    )

    def confidence(penalty: float) -> float:
        answerer = ReadingAnswerer(dataclasses.replace(open_settings, number_penalty=penalty))
        answer = answerer.decide(evidence.question, evidence, ranked, contexts, readings)
        assert answer.found and answer.direct == "Lutz Meschke"
        return answer.confidence

    assert confidence(0.0) - confidence(0.25) == pytest.approx(0.25, abs=1e-6)
    closed = dataclasses.replace(open_settings, number_penalty=0.25, threshold_same_language=0.7)
    answerer = ReadingAnswerer(closed)
    assert confidence(0.0) > 0.7 > confidence(0.25)
    assert not answerer.decide(evidence.question, evidence, ranked, contexts, readings).found


class CountingReader:
    """Stands in for the model: Lutz Meschke, ten points above no answer; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, question: str, contexts: list[str], **_: int) -> list[Reading]:
        self.calls += 1
        out = []
        for i, text in enumerate(contexts):
            at = text.find("Lutz Meschke")
            spans = (AnswerSpan(at, at + 12, "Lutz Meschke", 12.0),) if at >= 0 else ()
            out.append(Reading(i, spans, 2.0))
        return out


@pytest.mark.parametrize(
    ("threshold", "read", "found"),
    [(0.875 + 0.0199, 1, True), (0.875 + 0.0201, 0, False), (0.95, 0, False)],
)
def test_the_reader_is_not_run_when_no_reading_could_reach_the_threshold(
    threshold: float, read: int, found: bool
) -> None:
    # Retrieval confidence 0.875 (passage 0.85, best sentence 0.90); the reader can add at
    # most margin_weight x margin_clip + certainty_weight = 0.002 x 10 + 0 = 0.02.
    evidence = _evidence()
    reader = CountingReader()
    settings = ReaderSettings(
        margin_weight=0.002,
        margin_clip=10.0,
        certainty_weight=0.0,
        threshold_same_language=threshold,
    )
    answer = ReadingAnswerer(settings, reader=reader)(evidence.question, evidence)  # type: ignore[arg-type]

    assert (reader.calls, answer.found) == (read, found)
    if found:
        assert answer.direct == "Lutz Meschke"
        assert answer.confidence == pytest.approx(0.875 + 0.02)
    else:
        assert answer.confidence == pytest.approx(0.875)
        assert answer.passages  # the closest passages are still shown


@pytest.mark.parametrize(("above", "read"), [(0.0299, 1), (0.0301, 0)])
def test_the_share_of_the_choice_counts_towards_running_the_reader(above: float, read: int) -> None:
    # Only the share can lift the confidence here: by at most certainty_weight = 0.03.
    evidence = _evidence()
    reader = CountingReader()
    settings = ReaderSettings(
        margin_weight=0.0, certainty_weight=0.03, threshold_same_language=0.875 + above
    )
    ReadingAnswerer(settings, reader=reader)(evidence.question, evidence)  # type: ignore[arg-type]

    assert reader.calls == read


def test_a_date_span_is_resolved_against_the_document_date() -> None:
    evidence = _evidence("Wann fand das Treffen statt?")
    passage = evidence.passages[0]
    sentence = passage.sentences[2]
    start = sentence.sentence.text.index("im November")
    end = start + len("im November")
    candidate = Candidate(sentence, passage, start, end, 5.0, 1.0, 1.0, 4.0, 6.0)
    span = direct_span("date", candidate, evidence.question)
    assert (span.kind, span.text, span.value) == ("date", "November", "November 2021")
    assert sentence.sentence.text[span.start : span.end] == "November"
    name = Candidate(sentence, passage, 0, 3, 5.0, 1.0, 1.0, 4.0, 6.0)
    assert direct_span(None, name, "Wer?").kind == "answer"


@pytest.mark.parametrize(
    ("question", "direct"),
    [
        ("Who is Porsche's CFO?", "Lutz Meschke"),
        ("Wer ist der Finanzvorstand von Porsche?", "Lutz Meschke"),
        ("Where did the meeting take place?", "Los Angeles Auto Show"),
    ],
)
def test_the_reader_finds_the_span_and_cites_its_sentence(
    retriever: qa.Retriever, seeds_copy: Path, question: str, direct: str
) -> None:
    answer = retriever.answer(question)

    assert answer.found
    assert answer.direct == direct
    first = answer.citations[0]
    assert first.source == PORSCHE
    text = (seeds_copy / PORSCHE).read_text(encoding="utf-8")
    assert text[first.start : first.end] == first.quote
    assert first.span is not None and text[first.span.start : first.span.end] == direct
    assert first.start <= first.span.start < first.span.end <= first.end
    assert answer.text.startswith(f'{direct} — "')


@pytest.mark.parametrize(
    "question",
    [
        "How much did Apple pay to acquire Porsche?",
        "What is the top speed of the Porsche Taycan Turbo S?",
    ],
)
def test_questions_the_seed_cannot_answer_are_not_found(
    retriever: qa.Retriever, question: str
) -> None:
    answer = retriever.answer(question)

    assert not answer.found
    assert answer.text == "The seeds do not answer this question."
    assert answer.citations == ()
    assert answer.passages  # the closest passages are still shown
    assert PORSCHE in {p.source for p in answer.passages}


def test_reader_none_keeps_the_sentence_answerer(
    retriever: qa.Retriever, built_index: Path
) -> None:
    question = "Who is Porsche's CFO?"
    without = retriever.answer(question, reader="none")
    again = qa.load_index(built_index, reader="none").answer(question)

    assert without == again
    assert without.direct is None  # the sentence answerer marks no name spans
    with pytest.raises(qa.SettingsError, match="reader must be one of onnx, none, got 'bert'"):
        retriever.answer(question, reader="bert")  # type: ignore[arg-type]


def test_answer_from_evidence_equals_answer(retriever: qa.Retriever) -> None:
    question = "Wann haben sich Porsche und Apple getroffen?"
    evidence = retriever.evidence(question)

    assert retriever.answer_from(evidence) == retriever.answer(question)
    assert retriever.answer_from(evidence, reader="none") == retriever.answer(
        question, reader="none"
    )


def test_reader_settings_are_checked() -> None:
    with pytest.raises(qa.SettingsError, match=r"^sentences must be at least 1, got 0\."):
        ReaderSettings(sentences=0)
    with pytest.raises(qa.SettingsError, match=r"^margin_clip must not be negative, got -1\.0\."):
        ReaderSettings(margin_clip=-1.0)
    with pytest.raises(
        qa.SettingsError, match=r"^number_penalty must not be negative, got -0\.1\."
    ):
        ReaderSettings(number_penalty=-0.1)
    assert dataclasses.replace(ReaderSettings(), reader="none").reader == "none"


def test_a_broken_model_file_fails_with_a_clear_error(tmp_path: Path, built_index: Path) -> None:
    from qa.answer.reader import Reader
    from qa.answer.reader.runtime import DEFAULT_MODEL

    broken = tmp_path / DEFAULT_MODEL.name
    broken.write_bytes(DEFAULT_MODEL.read_bytes()[:1000])
    (tmp_path / (DEFAULT_MODEL.name + ".sha256")).write_text(
        (DEFAULT_MODEL.parent / (DEFAULT_MODEL.name + ".sha256")).read_text()
    )
    answerer = ReadingAnswerer(reader=Reader(model_path=broken))
    retriever = qa.load_index(built_index)
    evidence = retriever.evidence("Who is Porsche's CFO?")
    with pytest.raises(qa.ReaderError, match=r"is damaged or was changed"):
        answerer("Who is Porsche's CFO?", evidence)
