"""BM25 over Snowball-stemmed German and English tokens: built with the index, memory-mapped.

The score matrix is bm25s's (method "lucene", k1 1.5, b 0.75; a CSC matrix of
``(chunks, vocabulary)`` whose entry is the token's BM25 weight in the chunk) and a question is
scored by bm25s's ``get_scores_from_ids`` over it. The matrix is built here with numpy rather
than by ``bm25s.BM25.index``: the same numbers (``tests/test_lexical.py`` compares them), in a
fraction of the memory (bm25s goes through Python lists: ~3.6 GB at a million chunks). The
vocabulary is a sorted array of UTF-8 tokens, so a question's tokens are found by binary search
in the memory-mapped file and loading reads nothing but file headers.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import Stemmer

from .arrays import open_array, write_array

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STEMMERS = {"de": "german", "en": "english"}
#: bm25s's defaults, which qa has always used.
K1 = 1.5
B = 0.75

DATA = "bm25.data.npy"
INDICES = "bm25.indices.npy"
INDPTR = "bm25.indptr.npy"
VOCABULARY = "bm25.vocab.npy"
FILES = (DATA, INDICES, INDPTR, VOCABULARY)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN

    # Question words are not in bm25s's lists, yet they carry no topic: "who" in a question
    # must not match "who" in a passage.
    questions = (
        "who whom whose what when where which why how did does do wer wen wem wessen was "
        "wann wo woher wohin welche welcher welches welchen welchem warum wie wieso weshalb"
    ).split()
    return frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_GERMAN) | frozenset(questions)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS.get(language, "english"))


def tokenize(text: str, languages: Sequence[str]) -> list[str]:
    """Lower-cased words without stop words, stemmed once per language (deduplicated).

    A question is stemmed for both languages, since it may be asked in either about a
    document in either; a document is stemmed for its own language.

    >>> tokenize("Porsche meets Apple", ["en"])
    ['porsch', 'meet', 'appl']
    """
    return list(_tokenize(text, tuple(languages)))


@lru_cache(maxsize=65536)  # answering re-reads the same sentences for many questions
def _tokenize(text: str, languages: tuple[str, ...]) -> tuple[str, ...]:
    return _tokens(text, languages)


def _tokens(text: str, languages: tuple[str, ...]) -> tuple[str, ...]:
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    tokens: list[str] = []
    seen: set[str] = set()
    for language in languages:
        for token in _stemmer(language).stemWords(words):
            if token not in seen:
                seen.add(token)
                tokens.append(token)
    return tuple(tokens)


class Bm25Builder:
    """Collects the chunks' tokens in index order, then writes the BM25 files of a version."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._postings: list[npt.NDArray[np.int32]] = []
        self._lengths: list[int] = []

    def add(self, text: str, language: str) -> None:
        """The next chunk (not cached: a build reads each chunk once)."""
        # bm25s indexes a chunk without tokens under the empty token, as qa always did.
        tokens = _tokens(text, (language,)) or ("",)
        ids = self._ids
        self._postings.append(np.array([ids.setdefault(t, len(ids)) for t in tokens], np.int32))
        self._lengths.append(len(tokens))

    def __len__(self) -> int:
        return len(self._lengths)

    def write(self, directory: Path) -> None:
        """Write the matrix and the sorted vocabulary into ``directory``."""
        vocabulary = np.array([t.encode("utf-8") for t in self._ids], dtype=np.bytes_)
        if not len(vocabulary):
            vocabulary = np.zeros(0, dtype="S1")
        order = np.argsort(vocabulary, kind="stable")
        column = np.empty(len(order), np.int32)
        column[order] = np.arange(len(order), dtype=np.int32)
        matrix = score_matrix([column[p] for p in self._postings], len(order))
        write_array(directory / DATA, matrix["data"])
        write_array(directory / INDICES, matrix["indices"])
        write_array(directory / INDPTR, matrix["indptr"])
        write_array(directory / VOCABULARY, vocabulary[order])


def score_matrix(postings: Sequence[npt.NDArray[np.int32]], n_vocab: int) -> dict[str, Any]:
    """bm25s's CSC score matrix for chunks given as token ids (each token once per chunk).

    The arithmetic follows ``bm25s.BM25.index`` step by step (idf in float64 stored as
    float32; the term-frequency part in float64; the product stored as float32), so the
    numbers are bit-for-bit those bm25s computes.
    """
    n_docs = len(postings)
    lengths = np.array([len(p) for p in postings], np.int64)
    if n_docs == 0:
        return {
            "data": np.zeros(0, np.float32),
            "indices": np.zeros(0, np.int32),
            "indptr": np.zeros(n_vocab + 1, np.int64),
            "num_docs": 0,
        }
    tokens = np.concatenate(postings) if postings else np.zeros(0, np.int32)
    docs = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    df = np.bincount(tokens, minlength=n_vocab)
    idf = np.array(
        [math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) if d else 0.0 for d in df.tolist()],
        np.float32,
    )
    l_avg = lengths.mean()
    # tf is 1: the tokenizer keeps each token once per text.
    tfc = 1.0 / (K1 * ((1 - B) + B * lengths / l_avg) + 1.0)
    order = np.argsort((tokens.astype(np.int64) << 32) | docs.astype(np.int64))
    data = (idf[tokens[order]].astype(np.float64) * tfc[docs[order]]).astype(np.float32)
    indptr = np.zeros(n_vocab + 1, np.int64)
    np.cumsum(df, out=indptr[1:])
    return {"data": data, "indices": docs[order], "indptr": indptr, "num_docs": n_docs}


@dataclass(frozen=True, eq=False)
class Bm25Index:
    """The BM25 files of one version, memory-mapped; scores every chunk for a question."""

    model: Any  # bm25s.BM25 over the mapped matrix
    vocabulary: npt.NDArray[np.bytes_]
    size: int

    @classmethod
    def open(cls, directory: Path, chunks: int) -> Bm25Index:
        import bm25s

        # bm25s sets its own logger to DEBUG, which leaks into any configured root handler.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        data = open_array(directory / DATA, dtype=np.float32, random=True)
        indices = open_array(directory / INDICES, dtype=np.int32, rows=len(data), random=True)
        vocabulary = open_array(directory / VOCABULARY)
        indptr = open_array(directory / INDPTR, dtype=np.int64, rows=len(vocabulary) + 1)
        model = bm25s.BM25(k1=K1, b=B, method="lucene")
        model.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": chunks}
        model.nonoccurrence_array = None  # only BM25L and BM25+ have one
        return cls(model, vocabulary, chunks)

    def __len__(self) -> int:
        return self.size

    def token_ids(self, tokens: Iterable[str]) -> list[int]:
        """Columns of the tokens that occur in the index."""
        vocabulary = self.vocabulary
        ids = []
        for token in tokens:
            key = token.encode("utf-8")
            i = int(np.searchsorted(vocabulary, key))
            if i < len(vocabulary) and vocabulary[i] == key:
                ids.append(i)
        return ids

    def scores(self, question: str) -> npt.NDArray[np.float32]:
        """BM25 score of every chunk for the question (0 where no word matches)."""
        ids = self.token_ids(tokenize(question, ("de", "en")))
        if not self.size or not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)


def top(scores: npt.NDArray[np.float32], k: int) -> list[int]:
    """Rows of the ``k`` highest positive scores, best first, ties by row (a partial sort).

    Equal to the first ``k`` rows of a stable descending sort, without sorting every score:
    only the positive scores (chunks sharing a word with the question) are partitioned.
    """
    rows = np.flatnonzero(scores > 0)
    values = scores[rows]
    if k <= 0 or not len(rows):
        return []
    if k < len(rows):
        kth = np.partition(values, len(values) - k)[len(values) - k]
        above = values > kth
        ties = np.flatnonzero(values == kth)[: k - int(above.sum())]
        keep = np.concatenate([np.flatnonzero(above), ties])
        rows, values = rows[keep], values[keep]
    order = np.lexsort((rows, -values))
    return [int(r) for r in rows[order][:k]]
