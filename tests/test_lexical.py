"""BM25 built with numpy equals bm25s's own index; top-k by partial sort; array files."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest
from conftest import DATA

from qa.errors import IndexCorruptError
from qa.index.arrays import AppendArray, open_array
from qa.index.lexical import Bm25Builder, Bm25Index, score_matrix, tokenize, top
from qa.ingest.chunking import Chunker
from qa.ingest.language import detect_language
from qa.ingest.seeds import scan_seeds

QUESTIONS = [
    "Wer hat die Brücke gebaut?",
    "When did Porsche meet Apple?",
    "Welche Bohnen röstet die Rösterei?",
    "Amazonas Regenwald Fläche",
    "Which company did the engineers found?",
]


def _chunks() -> list[tuple[str, str]]:
    texts = []
    for folder in (DATA / "seeds", DATA / "xquad_subset" / "docs"):
        for doc in scan_seeds(folder).documents:
            language = detect_language(doc.body[:2000])
            texts += [(c.text, language) for c in Chunker().split(doc)]
    return texts


def test_numpy_matrix_scores_like_bm25s_index(tmp_path: Path) -> None:
    chunks = _chunks()
    builder = Bm25Builder()
    for text, language in chunks:
        builder.add(text, language)
    builder.write(tmp_path)
    ours = Bm25Index.open(tmp_path, len(chunks))
    reference = bm25s.BM25()
    reference.index([tokenize(t, [lang]) or [""] for t, lang in chunks], show_progress=False)
    # bm25s adds the empty token to its vocabulary (without a column) when no chunk has it.
    vocabulary = {t.decode("utf-8") for t in ours.vocabulary.tolist()}
    assert vocabulary | {""} == set(reference.vocab_dict)
    for question in QUESTIONS:
        tokens = [t for t in tokenize(question, ("de", "en")) if t in reference.vocab_dict]
        assert tokens, question
        expected = reference.get_scores(tokens)
        # Bit for bit: the same float operations in the same order.
        np.testing.assert_array_equal(ours.scores(question), expected)


def test_scores_of_unknown_words_are_zero(tmp_path: Path) -> None:
    builder = Bm25Builder()
    builder.add("Die Rösterei röstet Bohnen.", "de")
    builder.add("", "de")  # a chunk without tokens is kept under the empty token
    builder.write(tmp_path)
    index = Bm25Index.open(tmp_path, 2)
    assert index.scores("Quantenphysik").tolist() == [0.0, 0.0]
    assert index.scores("Bohnen")[0] > 0
    assert score_matrix([], 0)["num_docs"] == 0


@pytest.mark.parametrize("k", [1, 2, 3, 5, 9])
def test_top_equals_a_stable_descending_sort(k: int) -> None:
    scores = np.array([0.5, 2.0, 0.0, 2.0, 1.0, 0.5, 0.5, 3.0, 0.0], np.float32)
    expected = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0][:k]
    assert top(scores, k) == expected


def test_append_array_round_trip_and_checks(tmp_path: Path) -> None:
    path = tmp_path / "rows.npy"
    with AppendArray(path, np.float16, (3,)) as array:
        array.append(np.ones((2, 3)))
        array.append(np.arange(3).reshape(1, 3))
    loaded = np.load(path, allow_pickle=False)
    assert (loaded.shape, loaded.dtype) == ((3, 3), np.float16)
    mapped = open_array(path, dtype=np.float16, row_shape=(3,), rows=3, random=True)
    np.testing.assert_array_equal(mapped, loaded)
    assert not mapped.flags.writeable
    with pytest.raises(IndexCorruptError, match=r"holds 3 rows, expected 4; run `qa build`"):
        open_array(path, rows=4)
    path.write_bytes(path.read_bytes()[:-2])
    message = r"rows.npy is unreadable \(144 bytes, but its header describes \(3, 3\) float16\)"
    with pytest.raises(IndexCorruptError, match=message):
        open_array(path)
