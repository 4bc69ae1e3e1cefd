"""What of the live index a new build may keep, and if nothing, why."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..embed.embedders import Embedder, Vectors, latent_head
from ..embed.latent import LatentVectors
from ..errors import IndexCorruptError, IndexNotFoundError
from ..ingest.chunking import Chunker
from ..types import Chunk, Document, DocumentKind, Sentence, SkippedSeed, content_key
from . import extractions, persist
from .manifest import BuildSettings, DocumentRecord, Manifest, ModelRecord, new_settings

logger = logging.getLogger(__name__)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@dataclass(slots=True)
class Reusable:
    """Chunks, sentences and their vectors of one document content (one content key)."""

    chunks: list[Chunk]
    chunk_vectors: Vectors
    sentences: list[Sentence]
    sentence_vectors: Vectors
    sentence_latent: LatentVectors


@dataclass(slots=True)
class Previous:
    """What the live index offers a new build."""

    version: str | None = None
    manifest: Manifest | None = None
    #: Vectors that may be reused, by content key (empty when ``reason`` is set).
    reusable: dict[str, Reusable] = field(default_factory=dict)
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
    for doc in prev.manifest.documents:
        rows = chunk_rows.get(doc.source, [])
        srows = sentence_rows.get(doc.source, [])
        # Identical content under two names has identical records: either copy serves.
        prev.reusable[doc.content_key] = Reusable(
            [stored.chunks[i] for i in rows],
            chunk_vectors[rows],
            [stored.sentences[i] for i in srows],
            sentence_vectors[srows],
            sentence_latent.take(srows),
        )
        name = extractions.extraction_name(doc.content_key)
        if doc.content_key not in prev.extracted:
            try:
                persist.check_file(version, name, prev.manifest.files.get(name))
            except IndexCorruptError as exc:
                logger.warning("%s; its seed is read again", exc)
                continue
            prev.extracted[doc.content_key] = doc
    return prev
