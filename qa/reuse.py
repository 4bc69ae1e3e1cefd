"""Reuse stage of a build: what of the live index a new build may keep, and if nothing, why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import persist
from .chunking import Chunker
from .config import INDEX_FORMAT_VERSION
from .embedding import Embedder, Vectors, latent_head
from .errors import IndexCorruptError, IndexNotFoundError
from .latent import LatentVectors
from .types import Chunk, Sentence

logger = logging.getLogger(__name__)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@dataclass(slots=True)
class Reusable:
    """Chunks, sentences and their vectors of one document content (one sha256)."""

    chunks: list[Chunk]
    chunk_vectors: Vectors
    sentences: list[Sentence]
    sentence_vectors: Vectors
    sentence_latent: LatentVectors


@dataclass(slots=True)
class Previous:
    """What the live index offers a new build."""

    version: str | None = None
    manifest: dict[str, Any] | None = None
    #: Vectors that may be reused, by document sha256 (empty when ``reason`` is set).
    reusable: dict[str, Reusable] = field(default_factory=dict)
    #: Why everything is embedded again, or ``None`` for an incremental build.
    reason: str | None = None

    @property
    def documents(self) -> dict[str, str]:
        if self.manifest is None:
            return {}
        return {d["source"]: d["sha256"] for d in self.manifest["documents"]}


def settings_of(embedder: Embedder, chunker: Chunker) -> dict[str, Any]:
    head = latent_head(embedder)
    return {
        "format_version": INDEX_FORMAT_VERSION,
        "embedder": {"name": embedder.name, "dimension": embedder.dimension},
        "latent": {"name": head.latent_name, "dimension": head.latent_dimension} if head else None,
        "chunker": chunker.settings,
        "sentences": {"splitter": "pysbd", "languages": ["de", "en"]},
    }


def settings_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why vectors of an index built with ``old`` settings cannot serve ``new`` ones."""
    if old.get("format_version") != new["format_version"]:
        return (
            f"index format changed (version {old.get('format_version')} -> {new['format_version']})"
        )
    old_emb, new_emb = old.get("embedder") or {}, new["embedder"]
    if old_emb != new_emb:
        if old_emb.get("name") == new_emb["name"]:
            return (
                f"embedder {new_emb['name']} changed dimension "
                f"({old_emb.get('dimension')} -> {new_emb['dimension']})"
            )
        return f"embedder changed ({old_emb.get('name')} -> {new_emb['name']})"
    if old.get("latent") != new["latent"]:
        return "latent-term head changed"
    old_ch, new_ch = old.get("chunker") or {}, new["chunker"]
    if old_ch != new_ch:
        keys = sorted(k for k in {*old_ch, *new_ch} if old_ch.get(k) != new_ch.get(k))
        detail = ", ".join(
            "separators changed" if k == "separators" else f"{k} {old_ch.get(k)} -> {new_ch.get(k)}"
            for k in keys
        )
        return f"chunker settings changed ({detail})"
    if old.get("sentences") != new["sentences"]:
        return "sentence splitter settings changed"
    if old.get("package_version") != new["package_version"]:
        # Another qa release may chunk or split sentences differently under the same settings.
        return f"qa version changed ({old.get('package_version')} -> {new['package_version']})"
    return None


def previous(index_dir: Path, settings: dict[str, Any], *, full: bool) -> Previous:
    """The live index, what of it can be reused, and if nothing, why."""
    prev = Previous()
    try:
        version = persist.current_version(index_dir)
        prev.version = version.name
        prev.manifest = persist.read_manifest(version)
    except IndexNotFoundError:
        prev.reason = "no previous index"
        return prev
    except IndexCorruptError as exc:
        logger.warning("previous index unusable, rebuilding from the seeds: %s", exc)
        prev.reason = f"previous index unreadable: {exc}"
        return prev
    if full:
        prev.reason = "full rebuild requested"
        return prev
    prev.reason = settings_change(prev.manifest, settings)
    if prev.reason is not None:
        return prev
    try:
        stored = persist.read_version(version)
    except IndexCorruptError as exc:
        logger.warning("previous index unusable, rebuilding from the seeds: %s", exc)
        prev.reason = f"previous index unreadable: {exc}"
        return prev
    chunk_vectors = stored.chunk_store.vectors()
    sentence_vectors = stored.sentence_store.vectors()
    sentence_latent = stored.sentence_latent
    chunk_rows: dict[str, list[int]] = {}
    for i, chunk in enumerate(stored.chunks):
        chunk_rows.setdefault(chunk.source, []).append(i)
    sentence_rows: dict[str, list[int]] = {}
    for i, sentence in enumerate(stored.sentences):
        sentence_rows.setdefault(sentence.source, []).append(i)
    for doc in prev.manifest["documents"]:
        rows = chunk_rows.get(doc["source"], [])
        srows = sentence_rows.get(doc["source"], [])
        # Identical content under two names has identical records: either copy serves.
        prev.reusable[doc["sha256"]] = Reusable(
            [stored.chunks[i] for i in rows],
            chunk_vectors[rows],
            [stored.sentences[i] for i in srows],
            sentence_vectors[srows],
            sentence_latent.take(srows),
        )
    return prev
