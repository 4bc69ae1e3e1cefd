"""Lexical ranking: BM25 (bm25s) over Snowball-stemmed German and English tokens."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STEMMERS = {"de": "german", "en": "english"}


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


class LexicalIndex:
    """BM25 over a fixed list of texts; scores every text for a question."""

    def __init__(self, texts: Sequence[str], languages: Sequence[str]) -> None:
        corpus = [tokenize(t, [lang]) or [""] for t, lang in zip(texts, languages, strict=True)]
        self._size = len(corpus)
        # bm25s sets its own logger to DEBUG, which leaks into any configured root handler.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self._bm25 = bm25s.BM25()
        if corpus:
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return self._size

    def scores(self, question: str) -> npt.NDArray[np.float32]:
        """BM25 score of every text for the question (0 where no word matches)."""
        if not self._size:
            return np.zeros(0, dtype=np.float32)
        tokens = tokenize(question, ("de", "en"))
        if not tokens:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
