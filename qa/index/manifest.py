"""The index manifest as typed records: what a version holds, how it was built, its files.

``manifest.json`` is written by :meth:`Manifest.to_json` and read back only through
:meth:`Manifest.from_json`, which checks every field and names the first one that is missing
or of the wrong type; nothing is defaulted silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from .. import config
from ..config import INDEX_FORMAT_VERSION
from ..errors import IndexCorruptError
from ..types import DocumentKind, SkippedSeed, content_key


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A model that made the index's vectors: its name and the size of its vectors."""

    name: str
    dimension: int


@dataclass(frozen=True, slots=True)
class ChunkerRecord:
    """The chunker's settings (a change forces a full rebuild)."""

    splitter: str
    chunk_size: int
    chunk_overlap: int
    separators: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SentenceSplitterRecord:
    splitter: str
    languages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LatentTermsRecord:
    """How many latent terms a stored row keeps: per chunk (pooled) and per sentence."""

    chunk: int
    sentence: int


@dataclass(frozen=True, slots=True)
class BuildSettings:
    """Everything a build's vectors depend on; vectors are reused only under equal settings."""

    format_version: int
    embedder: ModelRecord
    latent: ModelRecord | None
    chunker: ChunkerRecord
    sentences: SentenceSplitterRecord
    package_version: str
    latent_terms: LatentTermsRecord

    def change_from(self, old: BuildSettings) -> str | None:
        """Why vectors built under ``old`` cannot serve these settings, or ``None``."""
        if old.format_version != self.format_version:
            return f"index format changed (version {old.format_version} -> {self.format_version})"
        if old.embedder != self.embedder:
            if old.embedder.name == self.embedder.name:
                return (
                    f"embedder {self.embedder.name} changed dimension "
                    f"({old.embedder.dimension} -> {self.embedder.dimension})"
                )
            return f"embedder changed ({old.embedder.name} -> {self.embedder.name})"
        if old.latent != self.latent:
            return "latent-term head changed"
        if old.latent_terms != self.latent_terms:
            return "latent terms kept per row changed"
        if old.chunker != self.chunker:
            details = []
            for name in ("chunk_overlap", "chunk_size", "separators", "splitter"):
                before, after = getattr(old.chunker, name), getattr(self.chunker, name)
                if before != after:
                    details.append(
                        "separators changed"
                        if name == "separators"
                        else f"{name} {before} -> {after}"
                    )
            return f"chunker settings changed ({', '.join(details)})"
        if old.sentences != self.sentences:
            return "sentence splitter settings changed"
        if old.package_version != self.package_version:
            # Another qa release may chunk or split sentences differently under the same settings.
            return f"qa version changed ({old.package_version} -> {self.package_version})"
        return None


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """One indexed document: where it is, its content hash and metadata, how much it holds.

    ``kind`` is the format it was read as, ``title`` its own title (or ``None``), ``pages``
    a PDF's page count (0 for other formats); ``chars`` counts its canonical text.
    """

    source: str
    sha256: str
    chars: int
    body_start: int
    date: str | None
    authors: tuple[str, ...]
    language: str
    chunks: int
    sentences: int
    kind: DocumentKind
    title: str | None
    pages: int

    @property
    def content_key(self) -> str:
        """The key of this content's records and extraction file (``qa.types.content_key``)."""
        return content_key(self.sha256, self.kind)


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One file of a version folder: its size and checksums.

    ``sampled_sha256`` (files above ``persist.FULL_CHECK_BYTES`` only) hashes evenly spaced
    blocks of the file: loading checks it and the size, a build checks ``sha256`` in full.
    """

    bytes: int
    sha256: str
    sampled_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkIndexRecord:
    """How the chunk vectors are searched: ``flat`` (exact) or ``ivf`` (inverted lists).

    ``exact_max_chunks`` is the size threshold the build applied (exact search up to it) and
    ``target_recall`` the recall@10 it asked of an IVF index. For ``ivf``: ``nlist`` lists,
    ``nprobe`` scanned per question, centroids trained on ``trained_on`` vectors when the
    corpus had ``trained_for`` chunks (a later build reuses them until the corpus has grown
    fourfold), and the recall@10 against exact search that ``nprobe`` reached on
    ``recall_queries`` query vectors of sampled sentences.
    """

    kind: str
    exact_max_chunks: int = 0
    target_recall: float = 1.0
    nlist: int = 0
    nprobe: int = 0
    trained_on: int = 0
    trained_for: int = 0
    recall_queries: int = 0
    recall_at_10: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "exact_max_chunks": self.exact_max_chunks,
            "target_recall": self.target_recall,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "trained_on": self.trained_on,
            "trained_for": self.trained_for,
            "recall_queries": self.recall_queries,
            "recall_at_10": self.recall_at_10,
        }


@dataclass(frozen=True, slots=True)
class Counts:
    documents: int
    chunks: int
    sentences: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """``manifest.json`` of one index version."""

    settings: BuildSettings
    built_at: str
    build_seconds: float
    #: The version this one replaced (kept for readers that opened it just before the swap).
    replaces: str | None
    documents: tuple[DocumentRecord, ...]
    skipped: tuple[SkippedSeed, ...]
    #: sha256 of each skipped seed that could be read, so an unchanged bad seed is not news.
    skipped_sha256: Mapping[str, str]
    counts: Counts
    #: How the chunk vectors are searched (filled in when the version is written).
    chunk_index: ChunkIndexRecord = ChunkIndexRecord("flat")
    #: Filled in when the version's files are written (see ``persist.VersionWriter``).
    files: Mapping[str, FileRecord] = field(default_factory=dict)

    @property
    def document_hashes(self) -> dict[str, str]:
        """sha256 of each indexed document, by source."""
        return {d.source: d.sha256 for d in self.documents}

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {
            "format_version": s.format_version,
            "embedder": _model_json(s.embedder),
            "latent": None if s.latent is None else _model_json(s.latent),
            "chunker": {
                "splitter": s.chunker.splitter,
                "chunk_size": s.chunker.chunk_size,
                "chunk_overlap": s.chunker.chunk_overlap,
                "separators": list(s.chunker.separators),
            },
            "sentences": {
                "splitter": s.sentences.splitter,
                "languages": list(s.sentences.languages),
            },
            "package_version": s.package_version,
            "latent_terms": {"chunk": s.latent_terms.chunk, "sentence": s.latent_terms.sentence},
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
            "replaces": self.replaces,
            "documents": [
                {
                    "source": d.source,
                    "sha256": d.sha256,
                    "chars": d.chars,
                    "body_start": d.body_start,
                    "date": d.date,
                    "authors": list(d.authors),
                    "language": d.language,
                    "chunks": d.chunks,
                    "sentences": d.sentences,
                    "kind": d.kind,
                    "title": d.title,
                    "pages": d.pages,
                }
                for d in self.documents
            ],
            "skipped": [{"source": k.source, "reason": k.reason} for k in self.skipped],
            "skipped_sha256": dict(self.skipped_sha256),
            "counts": {
                "documents": self.counts.documents,
                "chunks": self.counts.chunks,
                "sentences": self.counts.sentences,
            },
            "chunk_index": self.chunk_index.to_json(),
            "files": {name: _file_json(f) for name, f in self.files.items()},
        }

    @classmethod
    def from_json(cls, data: object, path: Path) -> Manifest:
        """Check and convert the parsed ``manifest.json`` at ``path``.

        Raises :class:`IndexCorruptError` naming the file and the first bad field.
        """
        m = _Fields(data, "", path)
        version = m.whole("format_version")
        if version != INDEX_FORMAT_VERSION:
            # Older formats lack fields this qa needs; a build converts by rebuilding.
            raise IndexCorruptError(
                f"Index file {path} is in index format {version}, this qa reads format "
                f"{INDEX_FORMAT_VERSION}; run `qa build` to rebuild the index."
            )
        settings = BuildSettings(
            format_version=version,
            embedder=_model(m.sub("embedder")),
            latent=None if m.is_null("latent") else _model(m.sub("latent")),
            chunker=_chunker(m.sub("chunker")),
            sentences=_splitter(m.sub("sentences")),
            package_version=m.text("package_version"),
            # Absent from format 2 manifests, which then read as "index format changed".
            latent_terms=_latent_terms(m.sub("latent_terms"))
            if m.has("latent_terms")
            else LatentTermsRecord(0, 0),
        )
        return cls(
            settings=settings,
            built_at=m.text("built_at"),
            build_seconds=m.number("build_seconds"),
            replaces=m.opt_text("replaces"),
            documents=tuple(_document(d) for d in m.items("documents")),
            skipped=tuple(
                SkippedSeed(k.text("source"), k.text("reason")) for k in m.items("skipped")
            ),
            skipped_sha256=m.text_map("skipped_sha256"),
            counts=_counts(m.sub("counts")),
            chunk_index=_chunk_index(m.sub("chunk_index"))
            if m.has("chunk_index")
            else ChunkIndexRecord("flat"),
            files={
                name: FileRecord(
                    f.whole("bytes"), f.text("sha256"), f.opt_text_missing("sampled_sha256")
                )
                for name, f in m.sub("files").entries()
            },
        )


def new_settings(
    *,
    embedder: ModelRecord,
    latent: ModelRecord | None,
    chunker: Mapping[str, Any],
    package_version: str,
) -> BuildSettings:
    """The :class:`BuildSettings` of this qa for an embedder and a chunker's settings."""
    return BuildSettings(
        format_version=INDEX_FORMAT_VERSION,
        embedder=embedder,
        latent=latent,
        chunker=ChunkerRecord(
            splitter=str(chunker["splitter"]),
            chunk_size=int(chunker["chunk_size"]),
            chunk_overlap=int(chunker["chunk_overlap"]),
            separators=tuple(chunker["separators"]),
        ),
        sentences=SentenceSplitterRecord("pysbd", ("de", "en")),
        package_version=package_version,
        # Read at call time, so that scripts/eval_latent_terms.py can vary them.
        latent_terms=LatentTermsRecord(config.LATENT_CHUNK_TERMS, config.LATENT_SENTENCE_TERMS),
    )


def _file_json(record: FileRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"bytes": record.bytes, "sha256": record.sha256}
    if record.sampled_sha256 is not None:
        out["sampled_sha256"] = record.sampled_sha256
    return out


def _latent_terms(f: _Fields) -> LatentTermsRecord:
    return LatentTermsRecord(f.whole("chunk"), f.whole("sentence"))


def _chunk_index(f: _Fields) -> ChunkIndexRecord:
    kind = f.text("kind")
    if kind not in ("flat", "ivf"):
        raise f.error("chunk_index.kind", f"is {kind!r}, not 'flat' or 'ivf'")
    return ChunkIndexRecord(
        kind=kind,
        exact_max_chunks=f.whole("exact_max_chunks"),
        target_recall=f.number("target_recall"),
        nlist=f.whole("nlist"),
        nprobe=f.whole("nprobe"),
        trained_on=f.whole("trained_on"),
        trained_for=f.whole("trained_for"),
        recall_queries=f.whole("recall_queries"),
        recall_at_10=f.number("recall_at_10"),
    )


def _model_json(model: ModelRecord) -> dict[str, Any]:
    return {"name": model.name, "dimension": model.dimension}


def _model(f: _Fields) -> ModelRecord:
    return ModelRecord(f.text("name"), f.whole("dimension"))


def _chunker(f: _Fields) -> ChunkerRecord:
    return ChunkerRecord(
        f.text("splitter"), f.whole("chunk_size"), f.whole("chunk_overlap"), f.texts("separators")
    )


def _splitter(f: _Fields) -> SentenceSplitterRecord:
    return SentenceSplitterRecord(f.text("splitter"), f.texts("languages"))


def _counts(f: _Fields) -> Counts:
    return Counts(f.whole("documents"), f.whole("chunks"), f.whole("sentences"))


def _document(f: _Fields) -> DocumentRecord:
    return DocumentRecord(
        source=f.text("source"),
        sha256=f.text("sha256"),
        chars=f.whole("chars"),
        body_start=f.whole("body_start"),
        date=f.opt_text("date"),
        authors=f.texts("authors"),
        language=f.text("language"),
        chunks=f.whole("chunks"),
        sentences=f.whole("sentences"),
        kind=f.choice("kind", get_args(DocumentKind)),
        title=f.opt_text("title"),
        pages=f.whole("pages"),
    )


class _Fields:
    """Typed access to one JSON object of the manifest; errors name the field's path."""

    def __init__(self, data: object, where: str, path: Path) -> None:
        self._path = path
        self._where = where
        if not isinstance(data, dict):
            raise self._error(where or "the top level", "is not a JSON object")
        self._data: dict[str, Any] = data

    def error(self, name: str, problem: str) -> IndexCorruptError:
        return self._error(name, problem)

    def _error(self, name: str, problem: str) -> IndexCorruptError:
        return IndexCorruptError(
            f"Index file {self._path} lacks required fields ({name} {problem}); "
            "run `qa build` to rebuild the index."
        )

    def _get(self, key: str, kinds: tuple[type, ...], what: str) -> Any:
        name = f"{self._where}{key}"
        if key not in self._data:
            raise self._error(name, "is missing")
        value = self._data[key]
        # bool is an int in Python but never a valid count or size here.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self._error(name, f"is not {what}")
        return value

    def text(self, key: str) -> str:
        value: str = self._get(key, (str,), "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value: str | None = self._get(key, (str, type(None)), "a string or null")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> Any:
        value = self.text(key)
        if value not in allowed:
            raise self._error(f"{self._where}{key}", f"is not one of {', '.join(allowed)}")
        return value

    def has(self, key: str) -> bool:
        return key in self._data

    def opt_text_missing(self, key: str) -> str | None:
        """Like :meth:`opt_text`, but an absent key is ``None`` too (optional fields)."""
        return self.opt_text(key) if key in self._data else None

    def whole(self, key: str) -> int:
        value: int = self._get(key, (int,), "a whole number")
        return value

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float), "a number"))

    def is_null(self, key: str) -> bool:
        return self._get(key, (dict, type(None)), "an object or null") is None

    def sub(self, key: str) -> _Fields:
        return _Fields(self._get(key, (dict,), "an object"), f"{self._where}{key}.", self._path)

    def items(self, key: str) -> list[_Fields]:
        rows = self._get(key, (list,), "a list")
        return [_Fields(row, f"{self._where}{key}[{i}].", self._path) for i, row in enumerate(rows)]

    def entries(self) -> list[tuple[str, _Fields]]:
        return [(k, _Fields(v, f"{self._where}{k}.", self._path)) for k, v in self._data.items()]

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._get(key, (list,), "a list")
        if not all(isinstance(v, str) for v in values):
            raise self._error(f"{self._where}{key}", "holds a value that is not a string")
        return tuple(values)

    def text_map(self, key: str) -> dict[str, str]:
        values = self._get(key, (dict,), "an object")
        if not all(isinstance(v, str) for v in values.values()):
            raise self._error(f"{self._where}{key}", "holds a value that is not a string")
        return dict(values)
