"""Second step of a build: embed the planned chunks and sentences (and their latent terms)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..embed.embedders import Embedder, latent_head
from ..embed.latent import LatentVectors
from ..types import BuildProgress
from . import persist
from .plan import DocumentWork
from .reuse import Reusable

ProgressCallback = Callable[[BuildProgress], None]

#: Texts per call of the embedder.
BATCH = 32


def embed_work(
    work: Sequence[DocumentWork], embedder: Embedder, progress: ProgressCallback | None
) -> dict[str, Reusable]:
    """Embed the chunks and sentences of each document, reporting progress in chunks.

    Sentences also get latent-term vectors when the embedder has that head. A document's
    chunks count as done in proportion to its embedded texts (chunks, sentences, and
    sentences again for the latent terms), so chunks/s and the ETA include all of it.
    Returns the vectors by content key.
    """
    head = latent_head(embedder)
    total = sum(len(item.chunks) for item in work)
    started = time.perf_counter()
    if progress is not None and total:
        progress(BuildProgress(0, total, 0.0))
    done_before = 0
    out: dict[str, Reusable] = {}
    for item in work:
        chunks, sentences = item.chunks, item.sentences
        # Chunks and sentences in separate batches: mixed batches pad sentences to chunk length.
        groups = [("chunks", [c.text for c in chunks]), ("sentences", [s.text for s in sentences])]
        if head is not None:
            groups.append(("latent", groups[1][1]))
        texts_total = sum(len(texts) for _, texts in groups)
        texts_done = 0
        parts: dict[str, list[Any]] = {name: [] for name, _ in groups}
        for name, texts in groups:
            for i in range(0, len(texts), BATCH):
                batch = texts[i : i + BATCH]
                if name == "latent":
                    assert head is not None
                    parts[name].append(head.embed_latent(batch))
                else:
                    parts[name].append(embedder.embed_passages(batch))
                texts_done += len(batch)
                persist.checkpoint("embedding")
                if progress is not None:
                    done = done_before + len(chunks) * texts_done // texts_total
                    progress(BuildProgress(done, total, time.perf_counter() - started))
        vectors = [
            np.concatenate([embedder.embed_passages([]), *parts[name]])
            for name in ("chunks", "sentences")
        ]
        if head is not None:
            latent = LatentVectors.concat(parts["latent"], head.latent_dimension)
        else:
            latent = LatentVectors.empty(rows=len(sentences))
        out[item.document.content_key] = Reusable(
            list(chunks), vectors[0], list(sentences), vectors[1], latent
        )
        done_before += len(chunks)
    return out
