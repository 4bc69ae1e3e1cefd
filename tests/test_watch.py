"""Following changes live: `qa watch` rebuilds, and readers switch versions without a mix."""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import qa
from qa import cache
from qa.index import persist
from qa.index.watch import watch_seeds
from qa.types import Answer, IndexStats

HARBOUR = "en/harbour_bridge.md"
OPENED = "When did the Lindholm Harbour Bridge open?"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


class Watcher:
    """``watch_seeds`` on a thread; builds and errors arrive on queues."""

    def __init__(self, seeds: Path, index: Path) -> None:
        self.builds: queue.Queue[IndexStats] = queue.Queue()
        self.errors: queue.Queue[qa.QAError] = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=watch_seeds,
            args=(seeds, index),
            kwargs={
                "debounce_ms": 400,
                "on_build": self.builds.put,
                "on_error": self.errors.put,
                "stop_event": self.stop,
            },
            daemon=True,
        )

    def next_build(self, matches: Callable[[IndexStats], bool], timeout: float = 120) -> IndexStats:
        """The first build that ``matches``; builds in between must be no-ops."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.builds.get(timeout=max(0.1, deadline - time.monotonic()))
            if matches(stats):
                return stats
            assert stats.chunks_embedded == 0, stats

    def quiet(self, seconds: float) -> list[IndexStats]:
        time.sleep(seconds)
        drained = []
        while not self.builds.empty():
            drained.append(self.builds.get_nowait())
        return drained


@pytest.fixture
def watcher(seeds: Path, tmp_path: Path) -> Iterator[Watcher]:
    w = Watcher(seeds, tmp_path / "index")
    w.thread.start()
    yield w
    w.stop.set()
    w.thread.join(timeout=30)
    assert not w.thread.is_alive()


@pytest.mark.slow
def test_watch_rebuilds_on_add_edit_rename_delete(seeds: Path, watcher: Watcher) -> None:
    first = watcher.next_build(lambda s: True)
    assert (first.documents_added, first.full_rebuild_reason) == (3, "no previous index")
    watcher.quiet(1.0)

    (seeds / "en" / "mill.md").write_text("The windmill was rebuilt in 1871.\n", encoding="utf-8")
    added = watcher.next_build(lambda s: s.documents_added == 1)
    assert (added.documents, added.chunks_embedded) == (4, 1)

    with open(seeds / HARBOUR, "a", encoding="utf-8") as handle:
        handle.write("\nThe bridge was painted green in 2019.\n")
    changed = watcher.next_build(lambda s: s.documents_changed == 1)
    assert changed.documents_unchanged == 3

    (seeds / "en" / "mill.md").rename(seeds / "en" / "windmill.md")
    renamed = watcher.next_build(lambda s: s.documents_removed == 1)
    assert (renamed.documents_added, renamed.chunks_embedded) == (1, 0)

    (seeds / "de" / "roesterei.txt").unlink()
    removed = watcher.next_build(lambda s: s.documents_removed == 1)
    assert (removed.documents, removed.chunks_embedded) == (3, 0)
    assert watcher.errors.empty()

    watcher.quiet(1.0)
    # Editor droppings, hidden files and other suffixes do not trigger a build.
    (seeds / ".mill.md.swp").write_bytes(b"swap")
    (seeds / "notes.txt~").write_text("backup", encoding="utf-8")
    (seeds / "picture.png").write_bytes(b"\x89PNG")
    assert watcher.quiet(2.0) == []


@pytest.mark.slow
def test_watch_reports_a_failed_build_and_goes_on(
    seeds: Path, tmp_path: Path, watcher: Watcher
) -> None:
    watcher.next_build(lambda s: True)
    watcher.quiet(1.0)
    version = persist.current_version(tmp_path / "index").name
    for path in [p for p in seeds.rglob("*") if p.is_file()]:
        path.unlink()
    error = watcher.errors.get(timeout=120)
    assert isinstance(error, qa.SeedError)
    assert (
        str(error)
        == f"No usable seeds in {seeds}: add .docx, .htm, .html, .md, .pdf or .txt files to it."
    )
    assert persist.current_version(tmp_path / "index").name == version  # the old index stays
    (seeds / "neu.txt").write_text("Die Fähre fährt um 9 Uhr ab.\n", encoding="utf-8")
    stats = watcher.next_build(lambda s: s.documents_added == 1)
    assert (stats.documents, stats.documents_removed) == (1, 3)


@pytest.mark.slow
def test_cli_watch_prints_each_build_and_stops_on_ctrl_c(seeds: Path, tmp_path: Path) -> None:
    args = ["watch", "--seeds", str(seeds), "--index", str(tmp_path / "i"), "--debounce", "400"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        [sys.executable, "-m", "qa", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as child:
        assert child.stdout is not None
        stdout = child.stdout
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout])
        reader.start()
        try:
            assert lines.get(timeout=120) == f"watching {seeds}/ for changes (Ctrl-C stops)\n"
            assert " 3 documents, " in lines.get(timeout=120)
            time.sleep(1.0)
            (seeds / "neu.txt").write_text("Die Fähre fährt um 9 Uhr ab.\n", encoding="utf-8")
            line = lines.get(timeout=120)
            assert " 4 documents, " in line
            assert "(1 embedded, " in line and "; 1 added, 0 changed, 0 removed)" in line
        finally:
            child.send_signal(signal.SIGINT)
            code = child.wait(timeout=60)
            reader.join(timeout=60)
    assert code == 0


# --- the app side: readers follow new versions, never mixing two ------------------------------


def snapshot(seeds: Path) -> dict[str, str]:
    return {
        p.relative_to(seeds).as_posix(): p.read_text(encoding="utf-8")
        for p in seeds.rglob("*")
        if p.is_file()
    }


def consistent(answer: Answer, texts: dict[str, str]) -> bool:
    """Every passage and citation reproduces from exactly these seed texts."""
    return all(
        p.source in texts and texts[p.source][p.start : p.end] == p.text for p in answer.passages
    ) and all(
        c.source in texts and texts[c.source][c.start : c.end] == c.quote for c in answer.citations
    )


@pytest.mark.slow
def test_answers_during_rebuilds_come_from_exactly_one_version(seeds: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    texts_of = {persist.current_version(index).name: snapshot(seeds)}
    original = (seeds / HARBOUR).read_text(encoding="utf-8")
    variant = original.replace("14 June 1998", "3 March 2001, two years late,")
    assert variant != original
    extra = seeds / "en" / "ferry.md"

    answers: list[tuple[str, Answer]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                retriever = cache.cached_retriever(index)
                answers.append((retriever.version, retriever.answer(OPENED)))
            except BaseException as exc:  # any error at all fails the test
                failures.append(exc)
                return

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for round_ in range(4):
            if round_ % 2 == 0:
                (seeds / HARBOUR).write_text(variant, encoding="utf-8")
                extra.write_text("The ferry to Lindholm opened in 1999.\n", encoding="utf-8")
            else:
                (seeds / HARBOUR).write_text(original, encoding="utf-8")
                extra.unlink()
            stats = qa.build_index(seeds, index)
            assert stats.chunks_embedded > 0
            texts_of[persist.current_version(index).name] = snapshot(seeds)
            time.sleep(0.5)  # let the reader answer from this version too
    finally:
        stop.set()
        thread.join(timeout=120)
    assert failures == []
    seen = {version for version, _ in answers}
    assert len(seen) >= 3, seen
    assert seen <= set(texts_of)
    for version, answer in answers:
        assert consistent(answer, texts_of[version]), (version, answer)
        others = [v for v in texts_of if v != version]
        # The two contents differ, so an answer never also fits the other kind of version.
        assert not all(consistent(answer, texts_of[v]) for v in others)


def test_module_level_answer_follows_a_new_build(seeds: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    assert qa.answer(OPENED, index_dir=index).citations[0].quote.count("1998") == 1
    text = (seeds / HARBOUR).read_text(encoding="utf-8")
    (seeds / HARBOUR).write_text(text.replace("14 June 1998", "3 March 2001"), encoding="utf-8")
    qa.build_index(seeds, index)
    quote = qa.answer(OPENED, index_dir=index).citations[0].quote
    assert "3 March 2001" in quote and "1998" not in quote


def test_others_keep_the_old_index_while_one_loads_the_new(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    old = cache.cached_retriever(index)
    (seeds / "neu.txt").write_text("Die Fähre fährt um 9 Uhr ab.\n", encoding="utf-8")
    qa.build_index(seeds, index)
    new_version = persist.current_version(index).name

    release, loading = threading.Event(), threading.Event()
    real_load = cache.load_index

    def slow_load(path: Path) -> qa.Retriever:
        loading.set()
        assert release.wait(timeout=60)
        return real_load(path)

    monkeypatch.setattr(cache, "load_index", slow_load)
    got: list[qa.Retriever] = []
    loader = threading.Thread(target=lambda: got.append(cache.cached_retriever(index)))
    loader.start()
    assert loading.wait(timeout=60)
    assert cache.cached_retriever(index) is old  # answered at once, from the old version
    release.set()
    loader.join(timeout=60)
    assert [r.version for r in got] == [new_version]
    assert cache.cached_retriever(index) is got[0]


def test_a_new_version_that_cannot_be_loaded_does_not_interrupt_answers(
    seeds: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    old = cache.cached_retriever(index)
    (seeds / "neu.txt").write_text("Die Fähre fährt um 9 Uhr ab.\n", encoding="utf-8")
    qa.build_index(seeds, index)
    bad = persist.current_version(index)
    (bad / "chunks.npy").write_bytes(b"\x93NUMPY garbage")
    with caplog.at_level(logging.WARNING, logger="qa.cache"):
        assert cache.cached_retriever(index) is old
        assert cache.cached_retriever(index) is old  # not retried until the next version
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(
        f"still serving index version {old.version}: the new version {bad.name} cannot be "
        f"loaded: Index file {bad / 'chunks.npy'} does not match its checksum"
    )
    stats = qa.build_index(seeds, index)  # `qa build` repairs it
    assert stats.full_rebuild_reason is not None
    assert cache.cached_retriever(index).version == persist.current_version(index).name
