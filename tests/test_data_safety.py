"""No data loss at the edges: what a build may delete, where it may write, what it keeps when
seeds cannot be read, how private its files are, and how it treats a damaged ``CURRENT``.

A stub embedder (hash-based vectors) keeps these tests fast: they are about files, not about
retrieval quality; the real model's builds are covered by test_build_safety and
test_incremental.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.cli import main
from qa.embed.embedders import Vectors
from qa.index import persist
from qa.ingest import seeds as seeds_module
from qa.ingest.seeds import scan_seeds
from qa.ingest.viewer import read_document


class StubEmbedder:
    """Deterministic 8-dimensional vectors from each text's sha256."""

    name = "stub-sha256"
    dimension = 8

    def _embed(self, texts: Sequence[str]) -> Vectors:
        rows = [
            np.frombuffer(hashlib.sha256(t.encode("utf-8")).digest()[:8], np.uint8) for t in texts
        ]
        array = np.array(rows, dtype=np.float32).reshape(len(texts), 8) + 1.0
        return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)


STUB = StubEmbedder()
ALPHA = " date 2024-01 By Ann\n\nThe alpha lighthouse was lit in 1871. It stands on a rock.\n"
BETA = "Die Beta-Mühle mahlt seit 1902 Korn. Sie steht am Fluss.\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    (seeds / "sub").mkdir(parents=True)
    (seeds / "alpha.txt").write_text(ALPHA, encoding="utf-8")
    (seeds / "sub" / "beta.txt").write_text(BETA, encoding="utf-8")
    return seeds


def build(seeds: Path, index: Path, **kwargs: object) -> qa.IndexStats:
    return qa.build_index(seeds, index, embedder=STUB, **kwargs)  # type: ignore[arg-type]


# --- what a build may delete and where it may write ------------------------------------------


def test_a_build_never_deletes_folders_it_did_not_make(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    notes = index / "v-notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine\n", encoding="utf-8")
    # Named like a version, but without a build's marker or manifest: not ours either.
    lookalike = index / "v-20240101T000000.000000-deadbeef"
    lookalike.mkdir()
    build(corpus, index)
    (corpus / "alpha.txt").write_text(ALPHA + "More text.\n", encoding="utf-8")
    build(corpus, index)
    (corpus / "alpha.txt").write_text(ALPHA + "Even more.\n", encoding="utf-8")
    build(corpus, index)
    assert (notes / "todo.txt").read_text(encoding="utf-8") == "mine\n"
    assert lookalike.is_dir()
    ours = {p.name for p in index.glob("v-*") if (p / ".qa-version").is_file()}
    assert len(ours) == 2  # the live version and the one it replaced


def test_a_version_folder_from_before_the_marker_is_still_cleaned(
    corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    old = persist.current_version(index)
    (old / ".qa-version").unlink()  # as written by an older qa
    assert persist.is_own_version(old)  # its name and its manifest say it is a build's
    for text in ("One.\n", "Two.\n"):
        (corpus / "alpha.txt").write_text(ALPHA + text, encoding="utf-8")
        build(corpus, index)
    assert not old.exists()


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_index_and_seeds_folders_must_be_apart(
    corpus: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    index = {"same": corpus, "inside": corpus / "sub", "around": corpus.parent}[where]
    before = sorted(p.relative_to(corpus.parent) for p in corpus.parent.rglob("*"))
    code = main(["build", "--seeds", str(corpus), "--index", str(index)])
    err = capsys.readouterr().err
    assert code == 1
    expected = {
        "same": f"error: The index folder {index} is the seeds folder; ",
        "inside": f"error: The index folder {index} is inside the seeds folder {corpus}; ",
        "around": f"error: The seeds folder {corpus} is inside the index folder {index}; ",
    }[where]
    assert err.startswith(expected)
    assert err.endswith(
        "keep them apart (for example `qa build --seeds seeds --index index`). "
        "Nothing was written.\n"
    )
    assert sorted(p.relative_to(corpus.parent) for p in corpus.parent.rglob("*")) == before


# --- seeds that cannot be read ---------------------------------------------------------------


def _deny_listing(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make listing ``folder`` fail as it does without permission (tests run as root)."""
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(str(path)) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_folder_keeps_its_documents_and_is_named(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    _deny_listing(monkeypatch, corpus / "sub")
    (corpus / "gamma.txt").write_text("Gamma is new.\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        stats = build(corpus, index)
    assert (stats.documents_added, stats.documents_removed, stats.documents_unchanged) == (1, 0, 2)
    assert [(u.source, u.reason) for u in stats.unreadable] == [
        (
            "sub/",
            "Cannot read seed folder sub/: Permission denied; check its permissions. The "
            "documents the index holds from it are kept until it can be read.",
        )
    ]
    assert any("Cannot read seed folder sub/" in m for m in caplog.messages)
    manifest = persist.read_manifest(persist.current_version(index))
    assert sorted(d.source for d in manifest.documents) == [
        "alpha.txt",
        "gamma.txt",
        "sub/beta.txt",
    ]
    info = qa.index_info(index, corpus)
    assert (info.seeds_removed, info.seeds_unreadable, info.stale) == ((), ("sub/",), False)
    retriever = qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    assert "sub/beta.txt" in retriever.documents
    # The kept document keeps its stored text and its rows' locations too.
    beta = next(d for d in manifest.documents if d.source == "sub/beta.txt")
    assert f"extractions/{beta.content_key}.npz" in manifest.files
    stored = persist.read_current(index)
    assert {
        (s.text, s.location) for s in stored.iter_sentences() if s.source == "sub/beta.txt"
    } == {
        ("Die Beta-Mühle mahlt seit 1902 Korn.", "line 1"),
        ("Sie steht am Fluss.", "line 1"),
    }


def test_an_unreadable_folder_whose_stored_text_is_damaged_stops_the_build(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    live = persist.current_version(index)
    beta = next(d for d in persist.read_manifest(live).documents if d.source == "sub/beta.txt")
    (live / f"extractions/{beta.content_key}.npz").write_bytes(b"damaged")
    _deny_listing(monkeypatch, corpus / "sub")
    (corpus / "gamma.txt").write_text("Gamma is new.\n", encoding="utf-8")
    with pytest.raises(qa.SeedError) as caught:
        build(corpus, index)
    assert str(caught.value) == (
        f"Cannot update {index}/: sub/ cannot be read, and the text the index keeps of "
        "sub/beta.txt is damaged, so it would be lost. Fix the permissions and build again; "
        "the live index is unchanged."
    )
    assert persist.current_version(index) == live


def test_the_cli_warns_about_unreadable_seeds(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    _deny_listing(monkeypatch, corpus / "sub")
    monkeypatch.setattr("qa.index.build.get_embedder", lambda spec: STUB)
    assert main(["build", "--seeds", str(corpus), "--index", str(index)]) == 0
    err = capsys.readouterr().err
    assert "warning: Cannot read seed folder sub/: Permission denied;" in err


def test_an_unreadable_file_keeps_its_document(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    locked = corpus / "alpha.txt"
    real_open = open

    def deny(file: object, *args: object, **kwargs: object) -> object:
        if Path(str(file)) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(seeds_module, "open", deny, raising=False)
    stats = build(corpus, index)
    assert (stats.documents_removed, stats.documents_unchanged) == (0, 2)
    assert [u.source for u in stats.unreadable] == ["alpha.txt"]
    assert stats.skipped == ()


def test_a_full_rebuild_with_unreadable_seeds_stops_instead_of_dropping_them(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    live = persist.current_version(index)
    _deny_listing(monkeypatch, corpus / "sub")
    with pytest.raises(qa.SeedError) as caught:
        build(corpus, index, full=True)
    assert str(caught.value) == (
        f"Cannot rebuild {index}/ (full rebuild requested): every document must be read again, "
        "but sub/ cannot be read, and 1 indexed document(s) would be lost. Fix the permissions "
        "and build again; the live index is unchanged."
    )
    assert persist.current_version(index) == live


def test_an_unreadable_seeds_folder_is_an_error(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deny_listing(monkeypatch, corpus)
    with pytest.raises(qa.SeedError) as caught:
        scan_seeds(corpus)
    assert str(caught.value) == (
        f"Cannot read the seeds folder {corpus}: Permission denied; check its permissions."
    )


# --- names, loops and line ends --------------------------------------------------------------


def test_a_symlink_loop_is_skipped_and_refused_by_name(corpus: Path) -> None:
    (corpus / "loop1.txt").symlink_to("loop2.txt")
    (corpus / "loop2.txt").symlink_to("loop1.txt")
    scan = scan_seeds(corpus)
    assert [(s.source, s.reason) for s in scan.skipped] == [
        ("loop1.txt", "Seed loop1.txt is a symlink loop (it never reaches a file); remove it."),
        ("loop2.txt", "Seed loop2.txt is a symlink loop (it never reaches a file); remove it."),
    ]
    with pytest.raises(qa.SeedError) as caught:
        read_document("loop1.txt", seeds_dir=corpus)
    assert str(caught.value).startswith("Cannot show 'loop1.txt': it is a symlink loop.")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\\b.txt", "its name holds a backslash"),
        ("tab\there.txt", "its name holds a control character"),
    ],
)
def test_a_name_the_viewer_cannot_show_is_not_indexed(
    corpus: Path, name: str, problem: str
) -> None:
    (corpus / name).write_text("Some text.\n", encoding="utf-8")
    scan = scan_seeds(corpus)
    assert [(s.source, s.reason) for s in scan.skipped] == [
        (name, f"Seed {name} is not indexed: {problem}; rename the file.")
    ]
    with pytest.raises(qa.SeedError) as caught:
        read_document(name, seeds_dir=corpus)
    assert str(caught.value).startswith(f"Cannot show {name!r}: {problem}.")


def test_a_name_that_is_not_utf8_is_skipped_with_a_printable_name(corpus: Path) -> None:
    raw = os.fsencode(corpus) + b"/caf\xe9.txt"
    with open(raw, "wb") as handle:
        handle.write(b"Text.\n")
    scan = scan_seeds(corpus)
    assert [(s.source, s.reason) for s in scan.skipped] == [
        (
            "caf\\xe9.txt",
            "Seed caf\\xe9.txt is not indexed: its name is not valid UTF-8; rename the file.",
        )
    ]
    json.dumps([s.source for s in scan.skipped], ensure_ascii=False).encode("utf-8")


def test_offsets_of_a_crlf_file_are_offsets_in_the_file_as_it_is(
    corpus: Path, tmp_path: Path
) -> None:
    text = "Erste Zeile.\r\nDie Gamma-Brücke wurde 1931 eröffnet.\r\nLetzte Zeile.\r\n"
    (corpus / "crlf.txt").write_bytes(text.encode("utf-8"))
    index = tmp_path / "index"
    build(corpus, index)
    retriever = qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    [passage] = [p for p in retriever.retrieve("Gamma-Brücke", 10) if p.source == "crlf.txt"]
    with open(corpus / "crlf.txt", encoding="utf-8", newline="") as handle:
        as_is = handle.read()
    assert as_is[passage.start : passage.end] == passage.text
    assert "\r\n" in passage.text
    # What README promises, and why it says newline="": universal newlines shift offsets.
    with open(corpus / "crlf.txt", encoding="utf-8") as handle:
        translated = handle.read()
    assert translated[passage.start : passage.end] != passage.text
    assert read_document("crlf.txt", seeds_dir=corpus).text == as_is


# --- the index's own files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed_mode", "folder_mode", "file_mode", "dir_mode"),
    [(0o600, 0o755, 0o600, 0o700), (0o644, 0o755, 0o644, 0o755), (0o644, 0o750, 0o640, 0o750)],
)
def test_index_files_are_no_more_open_than_the_seeds(
    corpus: Path, tmp_path: Path, seed_mode: int, folder_mode: int, file_mode: int, dir_mode: int
) -> None:
    for path in corpus.rglob("*.txt"):
        path.chmod(seed_mode)
    corpus.chmod(folder_mode)
    index = tmp_path / "index"
    build(corpus, index)
    version = persist.current_version(index)
    assert stat.S_IMODE(version.stat().st_mode) == dir_mode
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in version.rglob("*") if p.is_file()}
    assert "manifest.json" in modes and any(n.endswith(".npz") for n in modes)  # extractions
    assert set(modes.values()) == {file_mode}, modes
    folders = {stat.S_IMODE(p.stat().st_mode) for p in version.rglob("*") if p.is_dir()}
    assert folders == {dir_mode}  # extractions/
    assert stat.S_IMODE((index / "CURRENT").stat().st_mode) == file_mode


def test_the_manifest_is_checksummed(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    version = persist.current_version(index)
    manifest = version / "manifest.json"
    expected = hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert (version / "manifest.sha256").read_text(encoding="ascii") == expected + "\n"
    manifest.chmod(0o644)
    manifest.write_bytes(manifest.read_bytes().replace(b'"build_seconds": ', b'"build_seconds": 1'))
    with pytest.raises(qa.IndexCorruptError) as caught:
        qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"Index file {manifest} does not match its checksum in manifest.sha256; it is truncated "
        "or was changed. Run `qa build` to rebuild the index."
    )
    (version / "manifest.sha256").unlink()
    with pytest.raises(qa.IndexCorruptError) as missing:
        qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    assert str(missing.value) == (
        f"Index file {version / 'manifest.sha256'} is missing; run `qa build` to rebuild."
    )


# --- a damaged CURRENT -----------------------------------------------------------------------


def test_current_as_a_symlink_is_refused_without_quoting_its_target(
    corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    secret = tmp_path / "secret.txt"
    secret.write_text("PASSWORD=hunter2\n" * 50, encoding="utf-8")
    pointer = index / "CURRENT"
    pointer.unlink()
    pointer.symlink_to(secret)
    with pytest.raises(qa.IndexCorruptError) as caught:
        qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"{pointer} is a symbolic link, not the plain file a build writes; run `qa build` to "
        "rebuild the index (it replaces the link, not what it points to)."
    )
    assert qa.needs_build(corpus, index).kind == qa.BuildNeed.UNREADABLE  # type: ignore[union-attr]
    build(corpus, index)  # replaces the link; the file it pointed to is untouched
    assert not pointer.is_symlink()
    assert secret.read_text(encoding="utf-8") == "PASSWORD=hunter2\n" * 50


def test_a_long_current_is_not_quoted(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    (index / "CURRENT").write_text("secret line\n" * 100, encoding="utf-8")
    with pytest.raises(qa.IndexCorruptError) as caught:
        qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"{index / 'CURRENT'} does not name an index version (it holds 257+ bytes that are not "
        "a version name); run `qa build` to rebuild the index."
    )


def test_current_as_a_folder_stops_the_build_early_and_leaves_no_temporary_file(
    corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    build(corpus, index)
    pointer = index / "CURRENT"
    pointer.unlink()
    pointer.mkdir()
    (pointer / "keep.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(qa.IndexCorruptError, match="is not a file; move it away"):
        qa.load_index(index, embedder=STUB)  # type: ignore[arg-type]
    with pytest.raises(qa.IndexWriteError) as caught:
        build(corpus, index)
    assert str(caught.value) == (
        f"Cannot publish a new index: {pointer} is a folder, which a build did not make and "
        "will not replace; move it out of the index folder."
    )
    assert (pointer / "keep.txt").read_text(encoding="utf-8") == "mine\n"
    assert not list(index.glob("CURRENT.*.tmp"))


def test_a_failed_swap_leaves_no_temporary_file(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    build(corpus, index)

    real_replace = os.replace

    def refuse(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "CURRENT":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(persist.os, "replace", refuse)
    (corpus / "alpha.txt").write_text(ALPHA + "Changed.\n", encoding="utf-8")
    with pytest.raises(qa.IndexWriteError):
        build(corpus, index)
    assert not list(index.glob("CURRENT.*.tmp"))


def test_watch_refuses_an_index_inside_the_seeds_at_once(corpus: Path) -> None:
    from qa.index.watch import watch_seeds

    with pytest.raises(qa.IndexWriteError, match="is inside the seeds folder"):
        watch_seeds(corpus, corpus / "index", embedder=STUB)  # type: ignore[arg-type]
    assert not (corpus / "index").exists()
