"""A process-wide cache of loaded indexes that follows new builds (used by the app and API)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .errors import QAError
from .index import persist
from .pipeline import Retriever, load_index

logger = logging.getLogger(__name__)


class _Slot:
    """The retriever of one index folder, and the lock held by the one thread loading anew."""

    def __init__(self) -> None:
        self.retriever: Retriever | None = None
        self.loading = threading.Lock()
        #: A published version that failed to load; the old one keeps serving until the next.
        self.failed: str | None = None


_LOCK = threading.Lock()
_SLOTS: dict[Path, _Slot] = {}


def cached_retriever(index_dir: str | os.PathLike[str]) -> Retriever:
    """The retriever of the live version in ``index_dir``, loading it only when it changed.

    Each call reads the small ``CURRENT`` pointer. When a build has published a new version,
    one caller loads it while the others keep getting the previous retriever, so questions
    asked meanwhile are answered at once from the old index. A query holds on to the
    retriever it got, so it is answered from exactly one version, never a mix. If a new
    version cannot be loaded, the old one keeps serving (with a logged warning).

    >>> cached_retriever("index").answer("When did Porsche meet Apple?")   # doctest: +SKIP
    """
    path = Path(index_dir).resolve()
    live = persist.current_version(path).name
    with _LOCK:
        slot = _SLOTS.setdefault(path, _Slot())
    current = slot.retriever
    if current is not None and live in (current.version, slot.failed):
        return current
    if current is None:
        slot.loading.acquire()
    elif not slot.loading.acquire(blocking=False):
        return current  # another thread is loading the new version
    try:
        current = slot.retriever
        if current is not None and current.version == persist.current_version(path).name:
            return current
        try:
            fresh = load_index(path)
        except QAError as exc:
            if current is None:
                raise
            slot.failed = live
            logger.warning(
                "still serving index version %s: the new version %s cannot be loaded: %s",
                current.version,
                live,
                exc,
            )
            return current
        slot.retriever, slot.failed = fresh, None
        logger.info("serving index version %s from %s", fresh.version, path)
        return fresh
    finally:
        slot.loading.release()


def clear() -> None:
    """Forget every cached index (for tests)."""
    with _LOCK:
        _SLOTS.clear()
