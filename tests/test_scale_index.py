"""Above the size threshold: an IVF chunk index, its recorded parameters, and how builds reuse it.

The threshold is lowered through ``IndexSettings`` so that a few hundred chunks take the path
a million would; a small deterministic embedder keeps the builds fast.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.config import INDEX_FORMAT_VERSION
from qa.errors import IndexCorruptError
from qa.index import persist
from qa.index.arrays import AppendArray, RowReader, open_array

WORDS = [f"w{i:03d}" for i in range(400)]
IVF = qa.IndexSettings(exact_max_chunks=100, nlist=8, target_recall=0.95, recall_queries=60)


class WordHashEmbedder:
    """48-dimensional vectors summed from per-word random vectors: shared words, close texts."""

    name = "word-hash"
    dimension = 48

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dimension)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        for i, text in enumerate(texts):
            vector = sum((self._word(w) for w in text.lower().split()), np.zeros(self.dimension))
            out[i] = vector / (np.linalg.norm(vector) or 1.0)
        return out

    embed_queries = embed_passages


def write_corpus(folder: Path, documents: int = 40, seed: int = 3) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        topic = rng.sample(WORDS, 30)  # each document draws on its own few words
        paragraphs = []
        for _ in range(10):
            sentences = [" ".join(rng.choices(topic, k=8)).capitalize() + "." for _ in range(2)]
            paragraphs.append(" ".join(sentences))
        (folder / f"doc{d:02d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def chunk_index(index: Path) -> dict[str, object]:
    manifest = json.loads((persist.current_version(index) / "manifest.json").read_text())
    record = manifest["chunk_index"]
    assert isinstance(record, dict)
    return record


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scale") / "seeds"
    write_corpus(folder)
    return folder


def build(seeds: Path, index: Path, settings: qa.IndexSettings | None = None) -> qa.IndexStats:
    chunker = qa.Chunker(chunk_size=100, chunk_overlap=0)
    return qa.build_index(
        seeds, index, embedder=WordHashEmbedder(), chunker=chunker, settings=settings
    )


def test_above_the_threshold_an_ivf_index_is_chosen_by_recall(corpus: Path, tmp_path: Path) -> None:
    stats = build(corpus, tmp_path / "ivf", IVF)
    assert stats.chunks == 400 > IVF.exact_max_chunks
    record = chunk_index(tmp_path / "ivf")
    assert (record["kind"], record["nlist"], record["trained_on"]) == ("ivf", 8, 320)
    assert (record["trained_for"], record["recall_queries"]) == (400, 60)
    assert (record["exact_max_chunks"], record["target_recall"]) == (100, 0.95)
    assert 1 <= int(record["nprobe"]) <= 8  # type: ignore[call-overload]
    assert float(record["recall_at_10"]) >= 0.95  # type: ignore[arg-type]
    # Scanning every list, the IVF index ranks exactly as exact search does.
    build(corpus, tmp_path / "flat")
    assert chunk_index(tmp_path / "flat")["kind"] == "flat"
    everything = qa.SearchSettings(nprobe=8)
    ivf = qa.load_index(tmp_path / "ivf", embedder=WordHashEmbedder(), search=everything)
    flat = qa.load_index(tmp_path / "flat", embedder=WordHashEmbedder())
    for question in ("W001 w017 w230 w042", "w100 w101 w399", "w300 w015"):
        assert ivf.retrieve(question, 5) == flat.retrieve(question, 5)


def test_layout_change_rewrites_without_embedding(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    assert chunk_index(index)["kind"] == "flat"
    again = build(corpus, index, IVF)
    assert (again.texts_embedded, again.chunks_embedded, again.chunks_reused) == (0, 0, 400)
    assert chunk_index(index)["kind"] == "ivf"
    unchanged = build(corpus, index, IVF)  # the same layout: nothing to write
    assert persist.read_manifest(persist.current_version(index)).replaces is not None
    assert unchanged.texts_embedded == 0
    assert build(corpus, index).chunks == 400 and chunk_index(index)["kind"] == "flat"
    # A new threshold that keeps the kind is still recorded (the version is rewritten).
    raised = build(corpus, index, qa.IndexSettings(exact_max_chunks=1_000))
    assert (raised.texts_embedded, raised.chunks_reused) == (0, 400)
    assert (chunk_index(index)["kind"], chunk_index(index)["exact_max_chunks"]) == ("flat", 1000)


def test_an_edit_keeps_the_trained_centroids(corpus: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_corpus(seeds)
    index = tmp_path / "index"
    build(seeds, index, IVF)
    first = chunk_index(index)
    with open(seeds / "doc07.txt", "a", encoding="utf-8") as handle:
        handle.write("\nW250 w251 w252 w253 w254 w255 w256.\n")
    stats = build(seeds, index, IVF)
    assert stats.documents_changed == 1
    # Only the edited document's chunks and sentences were embedded.
    assert stats.texts_embedded == stats.chunks_embedded + sum(
        1 for s in persist.read_current(index).iter_sentences() if s.source == "doc07.txt"
    )
    second = chunk_index(index)
    assert (second["trained_on"], second["trained_for"]) == (first["trained_on"], 400)
    retriever = qa.load_index(index, embedder=WordHashEmbedder())
    top = retriever.retrieve("w250 w251 w252 w253 w254 w255 w256", 1)[0]
    assert (top.source, top.text.startswith("W250")) == ("doc07.txt", True)


def test_without_sentence_search_wide_candidates_still_find_the_chunk(corpus: Path) -> None:
    index = corpus.parent / "index-wide"
    build(corpus, index, IVF)
    wide = qa.SearchSettings(sentence_search_max=0, wide_candidates=20)
    retriever = qa.load_index(index, embedder=WordHashEmbedder(), search=wide)
    text = persist.read_current(index).chunk(123).text
    top = retriever.retrieve(text, 3)[0]
    assert top.text == text
    assert top.dense_score == pytest.approx(1.0, abs=1e-5)


def test_an_index_of_the_previous_format_is_rebuilt(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    path = persist.current_version(index) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    old = INDEX_FORMAT_VERSION - 1  # as format 2 wrote it: no latent-term cut, no chunk index
    manifest["format_version"] = old
    del manifest["latent_terms"], manifest["chunk_index"]
    data = json.dumps(manifest).encode("utf-8")
    path.write_bytes(data)
    (path.parent / "manifest.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    message = (
        f"Index file {path} is in index format {old}, this qa reads format "
        f"{INDEX_FORMAT_VERSION}; run `qa build` to rebuild the index."
    )
    with pytest.raises(qa.IndexCorruptError) as caught:
        qa.load_index(index, embedder=WordHashEmbedder())
    assert str(caught.value) == message
    stats = build(corpus, index)
    assert stats.full_rebuild_reason == f"previous index unreadable: {message}"
    assert (stats.chunks_embedded, stats.chunks_reused) == (400, 0)
    assert len(qa.load_index(index, embedder=WordHashEmbedder())) == 400


def test_row_reader_reads_runs_and_single_rows_like_the_map(tmp_path: Path) -> None:
    path = tmp_path / "rows.npy"
    values = np.arange(40 * 3, dtype=np.float16).reshape(40, 3)
    with AppendArray(path, np.float16, (3,)) as out:
        out.append(values[:25])
        out.append(values[25:])
    mapped = open_array(path, dtype=np.float16, row_shape=(3,), rows=40)
    reader = RowReader(path, mapped)
    rows = [7, 8, 9, 2, 39, 0, 1, 1]
    assert np.array_equal(reader.take(rows), values[rows])
    assert reader.take([]).shape == (0, 3)
    assert np.array_equal(reader.range(10, 13), values[10:13])
    assert reader.range(5, 5).shape == (0, 3)
    with pytest.raises(IndexError, match=r"rows 38\.\.41 outside 0\.\.40"):
        reader.range(38, 41)
    with open(path, "r+b") as handle:  # the file shrinks after loading
        handle.truncate(path.stat().st_size - 6 * 3 * 2)
    with pytest.raises(IndexCorruptError, match=r"rows\.npy ends before row 40"):
        reader.range(30, 40)
