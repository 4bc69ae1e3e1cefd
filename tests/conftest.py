"""Shared fixtures: the hand-written seed corpus and one real index built from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import qa

DATA = Path(__file__).parent / "data"
SEEDS = DATA / "seeds"
PORSCHE = "000_2e679b4798c0fccf.txt"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def seeds_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention copy of the test seeds (session-wide; do not modify)."""
    target = tmp_path_factory.mktemp("session") / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def built_index(seeds_copy: Path) -> Path:
    """The index of the test seeds, built once per session with the default embedder."""
    index_dir = seeds_copy.parent / "index"
    qa.build_index(seeds_copy, index_dir)
    return index_dir


@pytest.fixture(scope="session")
def retriever(built_index: Path) -> qa.Retriever:
    return qa.load_index(built_index)


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A fresh, writable copy of the test seeds for tests that change them."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target
