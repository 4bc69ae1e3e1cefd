"""What of the live index a new build may keep, and if nothing, why."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embed.embedders import Embedder, latent_head
from ..embed.latent import LatentVectors
from ..errors import IndexCorruptError, IndexNotFoundError
from ..ingest.chunking import Chunker
from ..types import Document, DocumentKind, SkippedSeed, content_key
from . import extractions, persist
from .manifest import BuildSettings, DocumentRecord, Manifest, ModelRecord, new_settings
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
    #: Row of each reusable document content in ``stored``, by content key.
    reusable: dict[str, int] = field(default_factory=dict)
    #: Contents whose extraction file checked out, by content key (empty when ``reason`` is
    #: set): their seeds need not be parsed again.
    extracted: dict[str, DocumentRecord] = field(default_factory=dict)
    #: The live version's folder, when there is one.
    path: Path | None = None
    #: Why everything is embedded again, or ``None`` for an incremental build.
    reason: str | None = None

    @property
    def documents(self) -> dict[str, str]:
        return {} if self.manifest is None else self.manifest.document_hashes

    def known(self, source: str, sha256: str, kind: DocumentKind) -> Document | SkippedSeed | None:
        """What the live index knows of a seed's content (``scan_seeds(known=...)``).

        The document with its stored canonical text, the reason the same file (same name and
        bytes) was skipped, or ``None`` when the seed must be read.
        """
        if self.reason is not None or self.manifest is None or self.path is None:
            return None
        manifest = self.manifest
        if manifest.skipped_sha256.get(source) == sha256:
            reason = next((s.reason for s in manifest.skipped if s.source == source), None)
            if reason is not None:
                return SkippedSeed(source, reason)
        key = content_key(sha256, kind)
        record = self.extracted.get(key)
        if record is None:
            return None
        try:
            text = extractions.load_text(self.path, key)
        except IndexCorruptError as exc:
            logger.warning("reading %s again: %s", source, exc)
            return None
        # Text and Markdown read the same bytes alike: a copy under the other suffix is known.
        return dataclasses.replace(extractions.document_of(record, source, text), kind=kind)

    def rows(self, key: str, language: str, text: str | None = None) -> DocumentRows:
        """A reused content's stored records and vectors (views of the mapped files); its
        text is the stored one unless given."""
        stored = self.stored
        assert stored is not None
        d = self.reusable[key]
        c0, c1 = (int(v) for v in stored.chunk_offsets[d : d + 2])
        s0, s1 = (int(v) for v in stored.sentence_offsets[d : d + 2])
        chunk_places, sentence_places = stored.chunks[c0:c1], stored.sentences[s0:s1]
        return DocumentRows(
            text=stored.document_text(d) if text is None else text,
            language=language,
            chunks=np.asarray(stored.chunks[c0:c1, 1:3]),
            sentences=np.asarray(stored.sentences[s0:s1, 1:3]),
            chunk_vectors=stored.chunk_vectors[c0:c1],
            sentence_vectors=stored.sentence_vectors[s0:s1],
            sentence_latent=_rows(stored.sentence_latent, s0, s1),
            chunk_latent=_rows(stored.chunk_latent, c0, c1),
            chunk_pages=chunk_places[:, 7].tolist(),
            chunk_labels=[stored.label(int(a), int(b)) for a, b in chunk_places[:, 8:10]],
            sentence_pages=sentence_places[:, 5].tolist(),
            sentence_labels=[stored.label(int(a), int(b)) for a, b in sentence_places[:, 6:8]],
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
        prev.version, prev.path = version.name, version
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
        prev.reusable.setdefault(doc.content_key, d)
        name = extractions.extraction_name(doc.content_key)
        if doc.content_key not in prev.extracted:
            try:
                persist.check_file(version, name, prev.manifest.files.get(name))
            except IndexCorruptError as exc:
                logger.warning("%s; its seed is read again", exc)
                continue
            prev.extracted[doc.content_key] = doc
    return prev
