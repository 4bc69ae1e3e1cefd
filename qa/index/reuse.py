"""What of the live index a new build may keep, and if nothing, why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embed.embedders import Embedder, latent_head
from ..embed.latent import LatentVectors
from ..errors import IndexCorruptError, IndexNotFoundError
from ..ingest.chunking import Chunker
from . import persist
from .manifest import BuildSettings, Manifest, ModelRecord, new_settings
from .persist import StoredIndex
from .writer import DocumentRows

logger = logging.getLogger(__name__)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@dataclass(slots=True)
class Previous:
    """What the live index offers a new build."""

    version: str | None = None
    manifest: Manifest | None = None
    #: The live version, opened (memory-mapped) and fully checked, when its vectors may be
    #: reused; ``None`` when ``reason`` is set.
    stored: StoredIndex | None = None
    #: Row of each reusable document content in ``stored``, by sha256.
    reusable: dict[str, int] = field(default_factory=dict)
    #: Why everything is embedded again, or ``None`` for an incremental build.
    reason: str | None = None

    @property
    def documents(self) -> dict[str, str]:
        return {} if self.manifest is None else self.manifest.document_hashes

    def rows(self, sha256: str, text: str, language: str) -> DocumentRows:
        """A reused document's stored records and vectors (views of the mapped files)."""
        stored = self.stored
        assert stored is not None
        d = self.reusable[sha256]
        c0, c1 = (int(v) for v in stored.chunk_offsets[d : d + 2])
        s0, s1 = (int(v) for v in stored.sentence_offsets[d : d + 2])
        return DocumentRows(
            text=text,
            language=language,
            chunks=np.asarray(stored.chunks[c0:c1, 1:3]),
            sentences=np.asarray(stored.sentences[s0:s1, 1:3]),
            chunk_vectors=stored.chunk_vectors[c0:c1],
            sentence_vectors=stored.sentence_vectors[s0:s1],
            sentence_latent=_rows(stored.sentence_latent, s0, s1),
            chunk_latent=_rows(stored.chunk_latent, c0, c1),
        )


def _rows(latent: LatentVectors, start: int, end: int) -> LatentVectors:
    """Rows ``[start, end)`` as a view (the term arrays are shared, not copied)."""
    return LatentVectors(
        latent.indptr[start : end + 1], latent.indices, latent.values, latent.dimension
    )


def settings_of(embedder: Embedder, chunker: Chunker) -> BuildSettings:
    """The settings a build with this embedder and chunker records (and reuses vectors by)."""
    head = latent_head(embedder)
    return new_settings(
        embedder=ModelRecord(embedder.name, embedder.dimension),
        latent=ModelRecord(head.latent_name, head.latent_dimension) if head else None,
        chunker=chunker.settings,
        package_version=package_version(),
    )


def previous(index_dir: Path, settings: BuildSettings, *, full: bool) -> Previous:
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
    prev.reason = settings.change_from(prev.manifest.settings)
    if prev.reason is not None:
        return prev
    try:
        # Every byte is checked before vectors are copied into the next version.
        prev.stored = persist.read_version(version, verify="full")
    except IndexCorruptError as exc:
        logger.warning("previous index unusable, rebuilding from the seeds: %s", exc)
        prev.reason = f"previous index unreadable: {exc}"
        return prev
    for d, doc in enumerate(prev.manifest.documents):
        # Identical content under two names has identical records: either copy serves.
        prev.reusable.setdefault(doc.sha256, d)
    return prev
