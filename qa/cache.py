"""A process-wide cache of loaded indexes that follows new builds (used by the app and API)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from . import persist
from .retrieval import Retriever, load_index

_LOCK = threading.Lock()
_LOADED: dict[Path, Retriever] = {}


def cached_retriever(index_dir: str | os.PathLike[str]) -> Retriever:
    """The retriever of the live version in ``index_dir``, loading it only when it changed.

    Each call reads the small ``CURRENT`` pointer; a query holds on to the retriever it got,
    so a build that publishes meanwhile never mixes two versions into one answer.
    """
    path = Path(index_dir).resolve()
    live = persist.current_version(path).name
    with _LOCK:
        retriever = _LOADED.get(path)
        if retriever is not None and retriever.version == live:
            return retriever
    fresh = load_index(path)
    with _LOCK:
        _LOADED[path] = fresh
    return fresh


def clear() -> None:
    """Forget every cached index (for tests)."""
    with _LOCK:
        _LOADED.clear()
