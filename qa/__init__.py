"""qa — ask questions of a folder of documents and get answers that cite the exact passage.

>>> import qa                                                  # doctest: +SKIP
>>> qa.build_index("seeds", "index")                            # doctest: +SKIP
>>> qa.answer("When did Porsche meet Apple?").direct            # doctest: +SKIP
'November 2021'
"""

from __future__ import annotations

import os

from .cache import cached_retriever
from .config import (
    DEFAULT_INDEX_DIR,
    DEFAULT_K,
    AnswerSettings,
    EngineSettings,
    IndexSettings,
    Reader,
    ReaderSettings,
    SearchSettings,
    WatchSettings,
)
from .errors import (
    BuildLockedError,
    EmbedderError,
    EmbedderMismatchError,
    EvaluationError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexWriteError,
    InvalidQueryError,
    QAError,
    ReaderError,
    SeedError,
    SettingsError,
)
from .index.build import build_index
from .index.status import BuildNeed, BuildReason, index_info, needs_build
from .ingest.chunking import Chunker
from .ingest.viewer import read_document
from .pipeline import Retriever, load_index
from .types import (
    Answer,
    BuildProgress,
    Chunk,
    Citation,
    Document,
    IndexInfo,
    IndexStats,
    Passage,
    Sentence,
    SkippedSeed,
    Span,
)

__all__ = [
    "Answer",
    "AnswerSettings",
    "BuildLockedError",
    "BuildNeed",
    "BuildProgress",
    "BuildReason",
    "Chunk",
    "Chunker",
    "Citation",
    "Document",
    "EmbedderError",
    "EmbedderMismatchError",
    "EngineSettings",
    "EvaluationError",
    "IndexCorruptError",
    "IndexInfo",
    "IndexNotFoundError",
    "IndexSettings",
    "IndexStats",
    "IndexWriteError",
    "InvalidQueryError",
    "Passage",
    "QAError",
    "ReaderError",
    "ReaderSettings",
    "Retriever",
    "SearchSettings",
    "SeedError",
    "Sentence",
    "SettingsError",
    "SkippedSeed",
    "Span",
    "WatchSettings",
    "answer",
    "build_index",
    "cached_retriever",
    "index_info",
    "load_index",
    "needs_build",
    "read_document",
    "retrieve",
]


def retrieve(
    question: str, k: int = DEFAULT_K, *, index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR
) -> list[Passage]:
    """The ``k`` best passages for ``question`` from the index in ``index_dir``.

    A thin wrapper over :meth:`Retriever.retrieve`; the loaded index is cached per folder and
    reloaded when a build publishes a new version.
    """
    return cached_retriever(index_dir).retrieve(question, k)


def answer(
    question: str,
    k: int = DEFAULT_K,
    *,
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    reader: Reader | None = None,
) -> Answer:
    """Answer ``question`` from the index in ``index_dir``, citing the sentences it rests on.

    ``reader="none"`` quotes the best-scored sentence instead of reading with the reader model.
    """
    return cached_retriever(index_dir).answer(question, k, reader=reader)
