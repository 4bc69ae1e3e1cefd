"""Frozen dataclasses that flow between the pipeline stages and out of the public API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: What a seed was read as: its format after sniffing its bytes (which may overrule its name).
DocumentKind = Literal["pdf", "docx", "html", "markdown", "text"]


def content_key(sha256: str, kind: DocumentKind) -> str:
    """What identifies one content in the index: the file's sha256, and for HTML its reader.

    The same bytes read as HTML and as text (``page.html`` renamed ``page.txt``) give
    different canonical texts; every other kind follows from the bytes alone.

    >>> content_key("ab12", "pdf"), content_key("ab12", "html")
    ('ab12', 'ab12-html')
    """
    return f"{sha256}-html" if kind == "html" else sha256


@dataclass(frozen=True, slots=True)
class Document:
    """One seed read into its canonical text; every offset is an offset into ``text``.

    For .txt and .md seeds ``text`` is the file as on disk; for PDF, Word and HTML seeds it is
    the extracted text (``qa.read_document(source).text``). ``body_start`` skips front matter
    or the metadata line. ``title``, ``authors`` and ``date`` come from the file's own
    properties, else from the metadata line; ``pages`` is a PDF's page count (0 otherwise).
    """

    source: str
    text: str
    sha256: str
    body_start: int = 0
    date: str | None = None
    authors: tuple[str, ...] = ()
    kind: DocumentKind = "text"
    title: str | None = None
    pages: int = 0

    @property
    def body(self) -> str:
        return self.text[self.body_start :]

    @property
    def content_key(self) -> str:
        """The index's key of this content (see :func:`content_key`)."""
        return content_key(self.sha256, self.kind)


@dataclass(frozen=True, slots=True)
class SkippedSeed:
    """A seed file that was not indexed, and why."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document; ``document.text[start:end] == text``.

    ``page`` (PDFs) and ``location`` (``"p. 3"``, ``"¶ 12"``, ``"line 40"``) say where its
    start is in the source file; a build fills them in.
    """

    source: str
    start: int
    end: int
    text: str
    page: int | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a document, with offsets into its canonical text and where it starts."""

    source: str
    start: int
    end: int
    text: str
    page: int | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk. ``start``/``end`` are character offsets in ``source``'s canonical text.

    ``score`` is the fused ranking score (higher is better); the others are its inputs.
    ``page`` (PDFs, 1-based) and ``location`` (``"p. 3"``, ``"pp. 3–4"`` over a page break,
    ``"¶ 12"``, ``"line 40"``) say where the passage is in the file; ``title`` is the
    document's own title, if it has one.
    """

    text: str
    source: str
    start: int
    end: int
    score: float
    rank: int
    dense_score: float = 0.0  # cosine similarity of question and passage
    sentence_score: float = 0.0  # cosine similarity of question and the passage's best sentence
    lexical_score: float = 0.0  # BM25
    date: str | None = None
    authors: tuple[str, ...] = ()
    #: cosine similarity of the question's and the passage's latent-term vectors (qa.embed.latent)
    latent_score: float = 0.0
    title: str | None = None
    page: int | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """The part of a cited sentence that answers the question.

    ``kind`` is ``date``, ``number`` or ``place`` when the question asks for such a fact, and
    ``answer`` for any other span the reader marked (a name, a thing).

    ``value`` is the normalised reading, e.g. ``"November 2021"`` for "im November" in an
    article dated 2022-03.
    """

    kind: Literal["date", "number", "place", "answer"]
    start: int
    end: int
    text: str
    value: str


@dataclass(frozen=True, slots=True)
class Citation:
    """One ``[n]`` marker: the cited sentence with its own offsets in ``source``.

    ``page`` (PDFs, 1-based) and ``location`` (``"p. 3"``, ``"¶ 12"``) say where the sentence
    starts in the file.
    """

    number: int
    source: str
    start: int
    end: int
    quote: str
    passage_rank: int
    score: float
    span: Span | None = None
    page: int | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a question: quoted text with ``[n]`` markers and its citations."""

    question: str
    text: str
    found: bool
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    direct: str | None = None
    confidence: float = 0.0

    def passage_of(self, citation: Citation) -> Passage:
        """The passage ``citation`` was taken from."""
        return self.passages[citation.passage_rank - 1]


@dataclass(frozen=True, slots=True)
class BuildProgress:
    """Progress of a build, passed to ``build_index(progress=...)`` callbacks."""

    chunks_done: int
    chunks_total: int
    seconds: float

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.chunks_per_second
        if rate <= 0:
            return None
        return (self.chunks_total - self.chunks_done) / rate


@dataclass(frozen=True, slots=True)
class IndexStats:
    """What a build did."""

    index_dir: str
    documents: int
    chunks: int
    embedder: str
    dimension: int
    built_at: str
    seconds: float
    documents_added: int = 0
    documents_changed: int = 0
    documents_removed: int = 0
    documents_unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    full_rebuild_reason: str | None = None
    skipped: tuple[SkippedSeed, ...] = field(default_factory=tuple)
    #: Seed files and folders (``name/``) that could not be read; the documents the previous
    #: index held from them were kept as they were.
    unreadable: tuple[SkippedSeed, ...] = field(default_factory=tuple)
    #: Texts (chunks, sentences, sentences' latent terms) the model embedded in this build, and
    #: those whose vectors a killed or failed earlier build had saved (``index/.partial``).
    texts_embedded: int = 0
    texts_resumed: int = 0


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What an index holds, and how the seeds folder differs from it now."""

    index_dir: str
    version: str
    documents: int
    chunks: int
    sentences: int
    embedder: str
    dimension: int
    built_at: str
    package_version: str
    skipped: tuple[SkippedSeed, ...]
    seeds_added: tuple[str, ...]
    seeds_changed: tuple[str, ...]
    seeds_removed: tuple[str, ...]
    #: Seed files and folders (``name/``) that cannot be read now; not counted as removed.
    seeds_unreadable: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        return bool(self.seeds_added or self.seeds_changed or self.seeds_removed)
