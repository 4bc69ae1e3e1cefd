"""First step of a build: read the seeds, compare them with the live index, chunk what is new."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..embed.embedders import Embedder
from ..errors import SeedError
from ..ingest.chunking import Chunker
from ..ingest.formats import LocationMap
from ..ingest.language import detect_language
from ..ingest.seeds import SeedScan, is_under, scan_seeds, seed_formats
from ..ingest.sentences import split_sentences
from ..types import Chunk, Document, Sentence
from .manifest import BuildSettings, DocumentRecord
from .reuse import Previous, previous, settings_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Changes:
    """How the seeds differ from the live index, by source name and sha256.

    A renamed file counts as one removed and one added document (its vectors are reused).
    """

    added: int
    changed: int
    removed: int
    unchanged: int

    @classmethod
    def between(cls, old: dict[str, str], new: dict[str, str]) -> Changes:
        return cls(
            added=sum(s not in old for s in new),
            changed=sum(s in old and old[s] != h for s, h in new.items()),
            removed=sum(s not in new for s in old),
            unchanged=sum(old.get(s) == h for s, h in new.items()),
        )


@dataclass(frozen=True, slots=True)
class DocumentWork:
    """One new document content to embed: its chunks and sentences, located in the file."""

    document: Document
    chunks: tuple[Chunk, ...]
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """What a build will do: the seeds read, what of the live index stays, what to embed."""

    index_path: Path
    scan: SeedScan
    settings: BuildSettings
    previous: Previous
    changes: Changes
    #: Language of each scanned document, by source (detected once per build).
    languages: dict[str, str]
    #: Each distinct new content once; empty when the index is up to date.
    work: tuple[DocumentWork, ...]
    #: Documents of the live index whose files or folders cannot be read now: kept as they are.
    carried: tuple[DocumentRecord, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """Whether the live index already is exactly what this build would write."""
        prev, scan = self.previous, self.scan
        if prev.reason is not None or prev.manifest is None:
            return False
        now = {d.source: d.sha256 for d in scan.documents}
        now.update((r.source, r.sha256) for r in self.carried)
        return (
            prev.documents == now
            and prev.manifest.skipped == scan.skipped
            and prev.manifest.skipped_sha256 == scan.skipped_hashes
            # A damaged extraction file was read again from its seed: write a repaired version.
            and all(d.content_key in prev.extracted for d in scan.documents)
        )


T = TypeVar("T", Chunk, Sentence)


def located(item: T, locations: LocationMap) -> T:
    """``item`` with the page of its start and where it is: ``"p. 3"``, ``"¶ 12"``,
    ``"line 4"``, or ``"pp. 3–4"`` for text that runs over a page break."""
    page = locations.page_at(item.start)
    last = locations.page_at(max(item.start, item.end - 1))
    if page is not None and last is not None and last != page:
        where = f"pp. {page}–{last}"
    else:
        where = locations.location(item.start)
    return dataclasses.replace(item, page=page, location=where or None)


def plan_build(
    seeds_path: Path, index_path: Path, embedder: Embedder, chunker: Chunker, *, full: bool
) -> BuildPlan:
    """Scan the seeds and decide what to reuse and what to chunk and embed anew.

    Seeds whose content the live index already holds are not parsed again (their stored
    text is used), and a seed skipped before with the same bytes keeps its reason.
    """
    settings = settings_of(embedder, chunker)
    prev = previous(index_path, settings, full=full)
    scan = scan_seeds(seeds_path, known=prev.known)
    carried = _carried(scan, prev, index_path)
    if not scan.documents and not carried:
        detail = "".join(f"\n  {s.reason}" for s in (*scan.unreadable, *scan.skipped))
        raise SeedError(
            f"No usable seeds in {seeds_path}: add {seed_formats()} files to it.{detail}"
        )
    languages = {
        doc.source: record.language
        if (record := prev.extracted.get(doc.content_key)) is not None
        else detect_language(doc.body[:2000])
        for doc in scan.documents
    }
    now = {d.source: d.sha256 for d in scan.documents}
    now.update((r.source, r.sha256) for r in carried)
    plan = BuildPlan(
        index_path=index_path,
        scan=scan,
        settings=settings,
        previous=prev,
        changes=Changes.between(prev.documents, now),
        languages=languages,
        work=(),
        carried=carried,
    )
    if plan.up_to_date:
        return plan
    work: list[DocumentWork] = []
    planned = set(prev.reusable)
    for doc in scan.documents:
        if doc.content_key in planned:
            continue
        planned.add(doc.content_key)
        locations = scan.locations[doc.content_key]
        sentences = split_sentences(
            doc.text, doc.source, doc.body_start, language=languages[doc.source]
        )
        work.append(
            DocumentWork(
                doc,
                tuple(located(c, locations) for c in chunker.split(doc)),
                tuple(located(s, locations) for s in sentences),
            )
        )
    return dataclasses.replace(plan, work=tuple(work))


def _carried(scan: SeedScan, prev: Previous, index_path: Path) -> tuple[DocumentRecord, ...]:
    """The live index's documents that sit in files or folders unreadable now.

    They are kept as they are rather than taken as deleted; when the live index cannot lend
    their vectors (a full rebuild), the build stops instead of dropping them.
    """
    if not scan.unreadable or prev.manifest is None:
        return ()
    read = {d.source for d in scan.documents}
    kept = tuple(
        record
        for record in prev.manifest.documents
        if record.source not in read and is_under(record.source, scan.unreadable)
    )
    names = ", ".join(u.source for u in scan.unreadable)
    fix = "Fix the permissions and build again; the live index is unchanged."
    if kept and prev.reason is not None:
        raise SeedError(
            f"Cannot rebuild {index_path}/ ({prev.reason}): every document must be read again, "
            f"but {names} cannot be read, and {len(kept)} indexed document(s) would be lost. {fix}"
        )
    damaged = [r.source for r in kept if r.content_key not in prev.extracted]
    if damaged:
        raise SeedError(
            f"Cannot update {index_path}/: {names} cannot be read, and the text the index keeps "
            f"of {', '.join(damaged)} is damaged, so it would be lost. {fix}"
        )
    for u in scan.unreadable:
        logger.warning("%s", u.reason)
    return kept
