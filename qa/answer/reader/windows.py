"""Reader inputs and outputs: question + context windows, one padded batch, logits back to spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from .readings import AnswerSpan, Reading
from .tokenizer import Encoding, ReaderTokenizer

# The input contract the reader was trained with (its MODEL_CARD.md).
MAX_LENGTH: Final = 384  # tokens per window, specials included
STRIDE: Final = 128  # tokens shared by neighbouring windows of one context
MAX_QUESTION_TOKENS: Final = 64
# Candidates kept per window before spans are merged across windows and deduplicated.
_CANDIDATES_PER_ANSWER: Final = 8


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    """One model input row: ``<s> question </s></s> context[first:first+count] </s>``."""

    context: int  # index of the context in the call
    ids: npt.NDArray[np.int64]
    first: int  # index of the window's first context token in the context's Encoding
    offset: int  # position of that token in ``ids``
    count: int  # context tokens in the window


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """All windows of all contexts of one question, right-padded to the longest window."""

    windows: tuple[Window, ...]
    encodings: tuple[Encoding, ...]  # one per context
    ids: npt.NDArray[np.int64]  # (windows, length)
    attention_mask: npt.NDArray[np.int64]  # 1 on real tokens, 0 on padding


def windows_of(
    question_ids: npt.NDArray[np.int64],
    context: Encoding,
    index: int,
    *,
    tokenizer: ReaderTokenizer,
    max_length: int = MAX_LENGTH,
    stride: int = STRIDE,
) -> list[Window]:
    """Cut one context into windows that overlap by ``stride`` tokens."""
    head = np.concatenate([[tokenizer.bos], question_ids, [tokenizer.eos, tokenizer.eos]])
    room = max_length - len(head) - 1
    if room <= stride:
        raise ValueError(f"max_length {max_length} leaves no room beside a {len(head)}-token head")
    out: list[Window] = []
    first = 0
    while True:
        count = min(room, len(context) - first)
        ids = np.concatenate([head, context.ids[first : first + count], [tokenizer.eos]])
        out.append(Window(index, ids.astype(np.int64), first, len(head), count))
        if first + count >= len(context):
            return out
        first += room - stride


def build_batch(tokenizer: ReaderTokenizer, question: str, contexts: Sequence[str]) -> Batch:
    """Tokenise the question (cut to 64 tokens) and every context into one padded batch."""
    question_ids = tokenizer.encode(question).ids[:MAX_QUESTION_TOKENS]
    encodings = tuple(tokenizer.encode(c) for c in contexts)
    windows = tuple(
        w
        for i, enc in enumerate(encodings)
        for w in windows_of(question_ids, enc, i, tokenizer=tokenizer)
    )
    length = max((len(w.ids) for w in windows), default=0)
    ids = np.full((len(windows), length), tokenizer.pad, dtype=np.int64)
    mask = np.zeros((len(windows), length), dtype=np.int64)
    for row, w in enumerate(windows):
        ids[row, : len(w.ids)] = w.ids
        mask[row, : len(w.ids)] = 1
    return Batch(windows, encodings, ids, mask)


def _window_candidates(
    start: npt.NDArray[np.float32], end: npt.NDArray[np.float32], keep: int, max_tokens: int
) -> list[tuple[float, int, int]]:
    """The ``keep`` best (score, i, j) with i <= j < i + max_tokens over one window's tokens."""
    n = start.size
    scores = start[:, None] + end[None, :]
    offset = np.arange(n)[None, :] - np.arange(n)[:, None]  # j - i
    scores = np.where((offset >= 0) & (offset < max_tokens), scores, -np.inf)
    flat = scores.ravel()
    keep = min(keep, flat.size)
    top = np.argpartition(-flat, keep - 1)[:keep]
    return [(float(flat[k]), *divmod(int(k), n)) for k in top if np.isfinite(flat[k])]


def decode(
    batch: Batch,
    contexts: Sequence[str],
    start_logits: npt.NDArray[np.float32],
    end_logits: npt.NDArray[np.float32],
    *,
    top_n: int,
    max_answer_tokens: int,
) -> list[Reading]:
    """Best ``top_n`` character spans and the no-answer score of every context.

    Spans lie inside one window's context tokens (never the question or special tokens); a span
    seen in two overlapping windows keeps its higher score. Offsets are stripped of white space.
    """
    spans: list[dict[tuple[int, int], float]] = [{} for _ in contexts]
    no_answer = [float("inf")] * len(contexts)
    keep = top_n * _CANDIDATES_PER_ANSWER
    for row, w in enumerate(batch.windows):
        no_answer[w.context] = min(
            no_answer[w.context], float(start_logits[row, 0] + end_logits[row, 0])
        )
        if w.count == 0:
            continue
        enc, text, found = batch.encodings[w.context], contexts[w.context], spans[w.context]
        part = slice(w.offset, w.offset + w.count)
        for score, i, j in _window_candidates(
            start_logits[row, part], end_logits[row, part], keep, max_answer_tokens
        ):
            c0, c1 = int(enc.starts[w.first + i]), int(enc.ends[w.first + j])
            while c0 < c1 and text[c0].isspace():
                c0 += 1
            while c1 > c0 and text[c1 - 1].isspace():
                c1 -= 1
            if c0 < c1 and score > found.get((c0, c1), -np.inf):
                found[(c0, c1)] = score
    readings = []
    for index, (found, text) in enumerate(zip(spans, contexts, strict=True)):
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))[:top_n]
        readings.append(
            Reading(
                context=index,
                spans=tuple(AnswerSpan(a, b, text[a:b], score) for (a, b), score in ranked),
                no_answer_score=no_answer[index],
            )
        )
    return readings
