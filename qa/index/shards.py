"""Embedded vectors saved while a build runs, so that a killed or failed build can resume.

A build embeds texts in windows of a few hundred; after each window it saves the window's
vectors into ``index/.partial/window-<n>.npz`` (numpy arrays, no pickle; written to a
temporary name, then renamed, so a kill never leaves half a file). Each text is keyed by its
document's content key (its sha256, with the format for HTML and PDF), its kind (chunk,
sentence, or a sentence's latent terms), its row in the document, and a 64-bit hash of the
text itself. The next build under the same settings finds
those keys and embeds only the rest; the version writer then reads every new document's
vectors from here. The folder is deleted once a version has been published, and whenever
the build settings (embedder, chunker, …) differ from the ones it was written under.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..embed.latent import LatentVectors
from .manifest import BuildSettings

logger = logging.getLogger(__name__)

KINDS = ("chunk", "sentence", "latent")
_SETTINGS = "settings.txt"
_PREFIX = "window-"
#: Windows kept loaded while the writer gathers documents (they are read mostly in order).
_CACHE = 8


def text_check(text: str) -> int:
    """A 64-bit hash of a text: a saved vector is used only for the very same text."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def settings_key(settings: BuildSettings) -> str:
    return hashlib.sha256(repr(settings).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Job:
    """One text to embed: the kind of vector, its document (content key) and row there."""

    kind: str
    sha256: str
    row: int
    text: str


@dataclass(eq=False)
class Window:
    """The results of one window: for each kind, its jobs and their vectors or latent rows."""

    jobs: dict[str, list[Job]]
    vectors: dict[str, npt.NDArray[Any]]
    latent: LatentVectors | None


class PartialStore:
    """The ``.partial`` folder of an index: saved windows and what they hold."""

    def __init__(self, index_path: Path, settings: BuildSettings) -> None:
        self.path = index_path / ".partial"
        self._key = settings_key(settings)
        self._where: dict[tuple[str, str, int], tuple[int, int, int]] = {}
        self._cache: OrderedDict[int, dict[str, npt.NDArray[Any]]] = OrderedDict()
        self._next = 0
        self._open()

    def _open(self) -> None:
        marker = self.path / _SETTINGS
        if self.path.exists():
            try:
                same = marker.read_text(encoding="utf-8").strip() == self._key
            except OSError:
                same = False
            if not same:
                logger.info("discarding saved vectors of a build under other settings")
                shutil.rmtree(self.path, ignore_errors=True)
        if not self.path.exists():
            return
        for path in sorted(self.path.glob(f"{_PREFIX}*.npz")):
            try:
                number = int(path.stem[len(_PREFIX) :])
                self._index_window(number, path)
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring unreadable saved vectors %s (%s)", path.name, exc)
                path.unlink(missing_ok=True)
                continue
            self._next = max(self._next, number + 1)
        if self._where:
            logger.info("found %d embedded texts of an earlier build", len(self._where))

    def _index_window(self, number: int, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            shas = [str(s) for s in data["sha256"]]
            for kind in KINDS:
                docs, rows, checks = data[f"{kind}_doc"], data[f"{kind}_row"], data[f"{kind}_check"]
                for pos, (d, r, c) in enumerate(zip(docs, rows, checks, strict=True)):
                    self._where[(kind, shas[int(d)], int(r))] = (number, pos, int(c))

    def __len__(self) -> int:
        return len(self._where)

    def has(self, job: Job) -> bool:
        found = self._where.get((job.kind, job.sha256, job.row))
        return found is not None and found[2] == text_check(job.text)

    def save(self, window: Window) -> None:
        """Save one window's results (atomically: a temporary file, then a rename)."""
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / _SETTINGS
        if not marker.exists():
            marker.write_text(self._key + "\n", encoding="utf-8")
        shas = sorted({job.sha256 for jobs in window.jobs.values() for job in jobs})
        number = {sha: i for i, sha in enumerate(shas)}
        arrays: dict[str, Any] = {"sha256": np.array(shas, dtype=str)}
        for kind in KINDS:
            jobs = window.jobs.get(kind, [])
            arrays[f"{kind}_doc"] = np.array([number[j.sha256] for j in jobs], np.int32)
            arrays[f"{kind}_row"] = np.array([j.row for j in jobs], np.int64)
            arrays[f"{kind}_check"] = np.array([text_check(j.text) for j in jobs], np.uint64)
        arrays["chunk_vectors"] = np.asarray(window.vectors["chunk"], np.float32)
        # Sentence vectors are stored as float16 in the index anyway.
        arrays["sentence_vectors"] = np.asarray(window.vectors["sentence"], np.float16)
        latent = window.latent or LatentVectors.empty()
        arrays["latent_indptr"] = np.asarray(latent.indptr, np.int64)
        arrays["latent_terms"] = np.asarray(latent.indices, np.int32)
        arrays["latent_weights"] = np.asarray(latent.values, np.float32)
        arrays["latent_dimension"] = np.array(latent.dimension, np.int64)
        path = self.path / f"{_PREFIX}{self._next:06d}.npz"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
        self._index_window(self._next, path)
        self._next += 1

    def _window(self, number: int) -> dict[str, npt.NDArray[Any]]:
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        with np.load(self.path / f"{_PREFIX}{number:06d}.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        self._cache[number] = arrays
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return arrays

    def _locations(self, kind: str, sha256: str, rows: int) -> list[tuple[int, int]]:
        out = []
        for row in range(rows):
            found = self._where.get((kind, sha256, row))
            if found is None:
                raise KeyError(f"no saved {kind} vector {row} of document {sha256[:12]}")
            out.append(found[:2])
        return out

    def vectors(self, kind: str, sha256: str, rows: int, dimension: int) -> npt.NDArray[Any]:
        """The saved vectors of a document's first ``rows`` texts of ``kind``."""
        out = np.zeros((rows, dimension), np.float32)
        for i, (number, pos) in enumerate(self._locations(kind, sha256, rows)):
            out[i] = self._window(number)[f"{kind}_vectors"][pos]
        return out

    def latent(self, sha256: str, rows: int, dimension: int) -> LatentVectors:
        """The saved latent-term rows of a document's first ``rows`` sentences."""
        pairs = []
        for number, pos in self._locations("latent", sha256, rows):
            data = self._window(number)
            a, b = int(data["latent_indptr"][pos]), int(data["latent_indptr"][pos + 1])
            pairs.append((data["latent_terms"][a:b], data["latent_weights"][a:b]))
        return LatentVectors.from_rows(pairs, dimension)

    def clear(self) -> None:
        self._where.clear()
        self._cache.clear()
        shutil.rmtree(self.path, ignore_errors=True)


def jobs_of(
    documents: Iterable[tuple[str, Sequence[str], Sequence[str]]], *, latent: bool
) -> list[Job]:
    """Every text of the documents ``(sha256, chunk texts, sentence texts)``, in order."""
    out: list[Job] = []
    for sha, chunks, sentences in documents:
        out += [Job("chunk", sha, i, t) for i, t in enumerate(chunks)]
        out += [Job("sentence", sha, i, t) for i, t in enumerate(sentences)]
        if latent:
            out += [Job("latent", sha, i, t) for i, t in enumerate(sentences)]
    return out
