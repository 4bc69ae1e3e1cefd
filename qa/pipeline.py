"""The facade: load an index, then retrieve passages or answer questions from it.

:class:`Retriever` composes the two stages a question passes through once each: the search
stage (:class:`qa.search.searcher.Searcher`) ranks passages and scores their sentences into an
``Evidence`` value, and an answerer (:class:`qa.answer.compose.Answerer`) turns that evidence
into an :class:`Answer`: the reading answerer (the reader model, by default) or the sentence
answerer (``reader="none"``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping
from pathlib import Path

from .answer.compose import Answerer
from .answer.reading import ReadingAnswerer
from .answer.sentences import SentenceAnswerer
from .config import (
    DEFAULT_INDEX_DIR,
    DEFAULT_K,
    READERS,
    AnswerSettings,
    Mode,
    Reader,
    ReaderSettings,
    SearchSettings,
)
from .embed.embedders import Embedder
from .errors import SettingsError
from .index.manifest import DocumentRecord
from .search.evidence import Evidence
from .search.query import check_question
from .search.searcher import Searcher, load_searcher
from .types import Answer, Passage


class Retriever:
    """Ranked passages and cited answers from one loaded index. Thread-safe for queries.

    >>> retriever = load_index("index")                    # doctest: +SKIP
    >>> retriever.retrieve("When did Porsche meet Apple?")[0].source   # doctest: +SKIP
    '000_2e679b4798c0fccf.txt'
    >>> retriever.answer("When did Porsche meet Apple?").direct        # doctest: +SKIP
    'November 2021'
    """

    def __init__(
        self,
        searcher: Searcher,
        *,
        reading: ReaderSettings | None = None,
        answer: AnswerSettings | None = None,
    ) -> None:
        self._searcher = searcher
        self.reading = reading or ReaderSettings()
        self._answerers: dict[Reader, Answerer] = {
            "none": SentenceAnswerer(answer),
            # The reader model loads on the first question it reads, not here.
            "onnx": ReadingAnswerer(self.reading, answer),
        }

    def _answerer(self, reader: Reader | None) -> Answerer:
        reader = self.reading.reader if reader is None else reader
        if reader not in READERS:
            raise SettingsError(f"reader must be one of {', '.join(READERS)}, got {reader!r}.")
        return self._answerers[reader]

    @property
    def mode(self) -> Mode:
        return self._searcher.settings.mode

    @property
    def version(self) -> str:
        """The index version folder this retriever serves."""
        return self._searcher.version

    @property
    def embedder(self) -> Embedder:
        return self._searcher.embedder

    @property
    def documents(self) -> Mapping[str, DocumentRecord]:
        """What the index records of each document (sha256, date, authors, language…)."""
        return self._searcher.documents

    def __len__(self) -> int:
        return len(self._searcher)

    def retrieve(
        self, question: str, k: int = DEFAULT_K, *, exclude_sources: Collection[str] = ()
    ) -> list[Passage]:
        """The ``k`` best passages for the question, best first (``rank`` 1 is the best).

        ``exclude_sources`` leaves those documents out, as if they were not indexed.
        """
        return self._searcher.rank(check_question(question, k), k, exclude_sources).passages

    def evidence(
        self, question: str, k: int = DEFAULT_K, *, exclude_sources: Collection[str] = ()
    ) -> Evidence:
        """What answering reads: the ``k`` best passages with their sentences scored."""
        return self._searcher.evidence(check_question(question, k), k, exclude_sources)

    def answer(
        self,
        question: str,
        k: int = DEFAULT_K,
        *,
        exclude_sources: Collection[str] = (),
        reader: Reader | None = None,
    ) -> Answer:
        """Answer the question from the index, quoting and citing the sentence(s) it rests on.

        ``reader`` overrides the loaded setting for this question: ``"onnx"`` reads the best
        sentences with the reader model, ``"none"`` quotes the best-scored sentence.
        """
        question = check_question(question, k)
        evidence = self._searcher.evidence(question, k, exclude_sources)
        return self._answerer(reader)(question, evidence)

    def answer_from(self, evidence: Evidence, *, reader: Reader | None = None) -> Answer:
        """The answer to an :meth:`evidence` call's question: the second half of :meth:`answer`,
        for callers that show the passages before the reader has read them."""
        return self._answerer(reader)(evidence.question, evidence)


def load_index(
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    embedder: str | Embedder | None = None,
    mode: Mode | None = None,
    reader: Reader | None = None,
    search: SearchSettings | None = None,
    answer: AnswerSettings | None = None,
    reading: ReaderSettings | None = None,
) -> Retriever:
    """Load the live index in ``index_dir`` and return a :class:`Retriever` over it.

    The embedder defaults to the one the index was built with; asking for another raises
    :class:`EmbedderMismatchError` rather than mixing vectors of two models. ``mode``
    (``hybrid``, ``dense`` or ``bm25``) is short for ``search=SearchSettings(mode=...)``, and
    ``reader`` (``onnx``, the default, or ``none``) for ``reading=ReaderSettings(reader=...)``.
    """
    search = search or SearchSettings()
    if mode is not None:
        search = dataclasses.replace(search, mode=mode)
    reading = reading or ReaderSettings()
    if reader is not None:
        reading = dataclasses.replace(reading, reader=reader)
    searcher = load_searcher(Path(index_dir), embedder=embedder, settings=search)
    return Retriever(searcher, reading=reading, answer=answer)
