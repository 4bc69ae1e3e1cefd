"""Lexical matching: the BM25 tokenizer (Snowball-stemmed German and English words).

The BM25 index itself is built with the index and memory-mapped (``qa.index.lexical``);
answering reuses its tokenizer to compare question and sentence words.
"""

from __future__ import annotations

from ..index.lexical import tokenize

__all__ = ["tokenize"]
