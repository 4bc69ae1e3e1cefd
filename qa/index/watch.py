"""Watching: rebuild the index whenever seed files change (watchfiles, debounced)."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from ..config import DEFAULT_INDEX_DIR, DEFAULT_SEEDS_DIR, WatchSettings
from ..embed.embedders import Embedder
from ..errors import QAError
from ..ingest.chunking import Chunker
from ..ingest.seeds import check_seeds_dir, is_seed_name
from ..types import IndexStats
from .build import build_index, check_apart
from .vectors import ProgressCallback

logger = logging.getLogger(__name__)


class SeedFilter:
    """Pass changes that can alter what ``scan_seeds`` reads; drop editor and index noise.

    Visible seed files (every supported format, see ``is_seed_name``) count, and so do
    suffix-less names (a folder that was
    renamed or deleted takes its files with it). Hidden names (``.x.swp``), backups
    (``x.txt~``) and anything under ``index_dir`` do not.
    """

    def __init__(self, seeds_dir: Path, index_dir: Path | None = None) -> None:
        self.seeds_dir = seeds_dir.resolve()
        self.index_dir = index_dir.resolve() if index_dir is not None else None

    def __call__(self, change: object, path: str) -> bool:
        p = Path(path)
        if self.index_dir is not None and p.is_relative_to(self.index_dir):
            return False
        try:
            relative = p.relative_to(self.seeds_dir)
        except ValueError:
            return False
        if is_seed_name(relative):
            return True
        # A folder that was renamed or deleted takes its files with it.
        hidden = any(part.startswith(".") for part in relative.parts)
        return not hidden and p.suffix == "" and not p.is_file()


def watch_seeds(
    seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR,
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    embedder: str | Embedder | None = None,
    chunker: Chunker | None = None,
    settings: WatchSettings | None = None,
    debounce_ms: int | None = None,
    build_first: bool = True,
    on_build: Callable[[IndexStats], None] | None = None,
    on_error: Callable[[QAError], None] | None = None,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    force_polling: bool | None = None,
) -> None:
    """Keep ``index_dir`` current with ``seeds_dir``: build now, then after every change.

    Changes are grouped until the seeds have been quiet for a moment (at most
    ``debounce_ms``, which overrides ``settings.debounce_ms``), then one incremental
    :func:`~qa.index.build.build_index` runs; changes made during a build trigger the next
    one. A failing build (say, every seed deleted) is reported to ``on_error`` (and logged)
    and the old index stays live; watching goes on.
    Returns when ``stop_event`` is set; Ctrl-C raises :class:`KeyboardInterrupt`.

    >>> stop = threading.Event()                                          # doctest: +SKIP
    >>> threading.Thread(target=watch_seeds, kwargs={"stop_event": stop}).start()  # doctest: +SKIP
    """
    from watchfiles import watch

    settings = settings or WatchSettings()
    if debounce_ms is not None:
        settings = dataclasses.replace(settings, debounce_ms=debounce_ms)
    seeds_path, index_path = Path(seeds_dir), Path(index_dir)
    check_seeds_dir(seeds_path)
    check_apart(seeds_path, index_path)  # a mistake to stop at once, not to report per change

    def rebuild() -> None:
        try:
            stats = build_index(
                seeds_path, index_path, embedder=embedder, chunker=chunker, progress=progress
            )
        except QAError as exc:
            logger.error("build failed, the previous index stays live: %s", exc)
            if on_error is not None:
                on_error(exc)
            return
        if on_build is not None:
            on_build(stats)

    if build_first:
        rebuild()
    seed_filter = SeedFilter(seeds_path, index_path)
    for changes in watch(
        seeds_path.resolve(),
        watch_filter=seed_filter,
        debounce=settings.debounce_ms,
        step=settings.step_ms,
        stop_event=stop_event,
        force_polling=force_polling,
    ):
        logger.info(
            "%d change(s) under %s: %s",
            len(changes),
            seeds_path,
            ", ".join(sorted(Path(p).name for _, p in changes)[:5]),
        )
        rebuild()
