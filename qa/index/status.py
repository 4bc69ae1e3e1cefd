"""Index status, read-only: what the live index holds and whether it must be (re)built."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from ..config import DEFAULT_INDEX_DIR, DEFAULT_SEEDS_DIR
from ..embed.embedders import get_embedder
from ..errors import IndexCorruptError, IndexNotFoundError, SeedError
from ..ingest.chunking import Chunker
from ..ingest.seeds import SeedHashes, is_under, seed_hashes
from ..types import IndexInfo, SkippedSeed
from . import persist
from .manifest import Manifest
from .reuse import settings_of


class BuildNeed(StrEnum):
    """The kind of reason a build is due."""

    MISSING = "missing"  # no index yet
    UNREADABLE = "unreadable"  # the live index cannot be loaded
    EMBEDDER = "embedder"  # another embedder was asked for
    SETTINGS = "settings"  # chunker, splitter, format or qa version changed
    SEEDS = "seeds"  # seeds were added, changed or removed

    @property
    def index_usable(self) -> bool:
        """Whether the live index can still serve questions while the build runs."""
        return self not in (BuildNeed.MISSING, BuildNeed.UNREADABLE)


class BuildReason(str):
    """Why a build is due: the message (a ``str``, as printed) and its :class:`BuildNeed`.

    >>> reason = BuildReason(BuildNeed.MISSING, "no index yet")
    >>> reason == "no index yet", reason.kind.index_usable
    (True, False)
    """

    kind: BuildNeed

    def __new__(cls, kind: BuildNeed, message: str) -> BuildReason:
        reason = super().__new__(cls, message)
        reason.kind = kind
        return reason


def index_info(
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    seeds_dir: str | os.PathLike[str] | None = DEFAULT_SEEDS_DIR,
) -> IndexInfo:
    """Describe the live index and which seeds were added, changed or removed since."""
    version = persist.current_version(Path(index_dir))
    return _info(version, persist.read_manifest(version), seeds_dir)


def _info(version: Path, manifest: Manifest, seeds_dir: str | os.PathLike[str] | None) -> IndexInfo:
    indexed = manifest.document_hashes
    known = {**manifest.skipped_sha256, **indexed}
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    unreadable: tuple[str, ...] = ()
    if seeds_dir is not None and Path(seeds_dir).is_dir():
        try:
            scan = seed_hashes(seeds_dir)
        except SeedError:  # the seeds folder itself cannot be read
            scan = SeedHashes({}, (SkippedSeed(source="", reason=""),))
        now = scan.hashes
        added = sorted(s for s in now if s not in known)
        changed = sorted(s for s in now if s in known and known[s] != now[s])
        removed = sorted(s for s in known if s not in now and not is_under(s, scan.unreadable))
        unreadable = tuple(u.source or f"{seeds_dir}/" for u in scan.unreadable)
    return IndexInfo(
        index_dir=str(version.parent),
        version=version.name,
        documents=len(indexed),
        chunks=manifest.counts.chunks,
        sentences=manifest.counts.sentences,
        embedder=manifest.settings.embedder.name,
        dimension=manifest.settings.embedder.dimension,
        built_at=manifest.built_at,
        package_version=manifest.settings.package_version,
        skipped=manifest.skipped,
        seeds_added=tuple(added),
        seeds_changed=tuple(changed),
        seeds_removed=tuple(removed),
        seeds_unreadable=unreadable,
    )


def needs_build(
    seeds_dir: str | os.PathLike[str] = DEFAULT_SEEDS_DIR,
    index_dir: str | os.PathLike[str] = DEFAULT_INDEX_DIR,
    *,
    embedder: str | None = None,
) -> BuildReason | None:
    """Why the index must be (re)built before use, or ``None`` when it is current.

    The reason is a ``str`` (the message) whose ``kind`` says which case it is.
    """
    try:
        stored = persist.read_current(Path(index_dir))
    except IndexNotFoundError:
        return BuildReason(BuildNeed.MISSING, "no index yet")
    except IndexCorruptError as exc:
        return BuildReason(BuildNeed.UNREADABLE, f"index unreadable: {exc}")
    info = _info(stored.path, stored.manifest, seeds_dir)
    if embedder is not None and info.embedder != get_embedder(embedder).name:
        return BuildReason(
            BuildNeed.EMBEDDER, f"index built with {info.embedder}, {embedder} requested"
        )
    # Settings of this qa (chunker, sentence splitter, format, version) against the build's.
    current = settings_of(get_embedder(embedder or info.embedder), Chunker())
    change = current.change_from(stored.manifest.settings)
    if change:
        return BuildReason(BuildNeed.SETTINGS, change)
    if info.stale:
        return BuildReason(
            BuildNeed.SEEDS,
            f"seeds changed since the last build ({len(info.seeds_added)} added, "
            f"{len(info.seeds_changed)} changed, {len(info.seeds_removed)} removed)",
        )
    return None
