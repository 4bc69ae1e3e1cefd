"""Bad seeds never stop a build of the good ones; `qa info` lists them and later changes."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from conftest import PORSCHE

import qa
from qa.cli import main
from qa.config import MAX_SEED_BYTES

GOOD = [PORSCHE, "de/roesterei.txt", "en/harbour_bridge.md"]
SECRET = "The vault code outside the seeds folder is 4711."


@pytest.fixture
def bad_seeds(seeds: Path, tmp_path: Path) -> dict[str, str]:
    """Every kind of bad seed next to the good ones; returns source -> expected reason."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    (seeds / "binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary\x00data")
    (seeds / "latin1.txt").write_bytes("Grüße aus Köln".encode("latin-1"))
    (seeds / "empty.md").write_bytes(b"")
    (seeds / "blank.txt").write_text("  \n\t\n", encoding="utf-8")
    (seeds / "only_metadata.txt").write_text(" date 2022-03 Von A B\n\n", encoding="utf-8")
    (seeds / "huge.txt").write_bytes(b"a" * (MAX_SEED_BYTES + 1))
    os.symlink(outside / "secret.txt", seeds / "link_out.txt")
    os.symlink(outside, seeds / "linked_folder")
    os.symlink(seeds / "missing.txt", seeds / "dangling.txt")
    os.mkfifo(seeds / "pipe.txt")
    # A link to a good seed inside the folder is fine (its content is indexed once).
    os.symlink(seeds / "de" / "roesterei.txt", seeds / "inside_link.txt")
    target = (outside / "secret.txt").resolve()
    return {
        "binary.txt": (
            "Seed binary.txt is named .txt but is a zip archive, not a text file; remove it or "
            "save it in a supported format."
        ),
        "blank.txt": "Seed blank.txt is empty; add text or remove the file.",
        "dangling.txt": "Cannot read seed dangling.txt: No such file or directory.",
        "empty.md": "Seed empty.md is empty; add text or remove the file.",
        "huge.txt": (
            f"Seed huge.txt is {MAX_SEED_BYTES + 1:,} bytes, over the {MAX_SEED_BYTES:,}-byte "
            "limit; split it into smaller files."
        ),
        "latin1.txt": "Seed latin1.txt is not valid UTF-8 (byte 2); save it as UTF-8.",
        "link_out.txt": (
            f"Seed link_out.txt is a symlink to {target}, outside the seeds folder; it is not "
            "followed. Copy it into the seeds folder instead."
        ),
        "linked_folder": (
            f"Seed linked_folder is a symlink to {outside.resolve()}, outside the seeds folder; "
            "it is not followed. Copy it into the seeds folder instead."
        ),
        "only_metadata.txt": (
            "Seed only_metadata.txt has metadata but no text; add text or remove the file."
        ),
        "pipe.txt": "Seed pipe.txt is not a regular file; remove it from the seeds.",
    }


def test_build_skips_each_bad_seed_with_a_warning(
    seeds: Path, tmp_path: Path, bad_seeds: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="qa.ingest.seeds"):
        stats = qa.build_index(seeds, tmp_path / "index")
    assert sorted((s.source, s.reason) for s in stats.skipped) == sorted(bad_seeds.items())
    assert sorted(caplog.messages) == sorted(f"skipping seed: {r}" for r in bad_seeds.values())
    assert stats.documents == 4
    retriever = qa.load_index(tmp_path / "index")
    assert sorted(retriever.documents) == sorted([*GOOD, "inside_link.txt"])
    passages = retriever.retrieve("What is the vault code?", 10)
    assert all("4711" not in p.text for p in passages)


def test_info_lists_skipped_seeds_and_is_not_stale(
    seeds: Path, tmp_path: Path, bad_seeds: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    info = qa.index_info(index, seeds)
    assert sorted((s.source, s.reason) for s in info.skipped) == sorted(bad_seeds.items())
    assert not info.stale  # unchanged bad seeds are known, not "added"
    assert main(["info", "--seeds", str(seeds), "--index", str(index)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line for line in lines if line.startswith("skipped:")) == sorted(
        f"skipped:    {reason}" for reason in bad_seeds.values()
    )
    assert lines[-1] == "seeds:      unchanged since the last build"

    # A bad seed repaired and a new bad one show up as changes since the build.
    (seeds / "empty.md").write_text("Der Hafen von Kiel ist 150 Jahre alt.\n", encoding="utf-8")
    (seeds / "more_binary.txt").write_bytes(b"\x00\x01")
    assert main(["info", "--json", "--seeds", str(seeds), "--index", str(index)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["seeds_added"], report["seeds_changed"], report["seeds_removed"]) == (
        ["more_binary.txt"],
        ["empty.md"],
        [],
    )
    assert report["stale"] is True

    stats = qa.build_index(seeds, index)
    assert (stats.documents_added, stats.chunks_embedded, stats.documents) == (1, 1, 5)
    assert "empty.md" not in {s.source for s in stats.skipped}
    assert "more_binary.txt" in {s.source for s in stats.skipped}
    assert not qa.index_info(index, seeds).stale


def test_a_new_bad_seed_alone_still_updates_the_skipped_list(seeds: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    (seeds / "broken.txt").write_bytes(b"\xc3\x28")
    stats = qa.build_index(seeds, index)
    assert (stats.chunks_embedded, stats.documents_added) == (0, 0)
    assert [s.source for s in qa.index_info(index, seeds).skipped] == ["broken.txt"]


def test_cli_build_names_each_skipped_seed(
    seeds: Path, tmp_path: Path, bad_seeds: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    assert main(["build", "--seeds", str(seeds), "--index", str(index)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert sorted(line for line in err if line.startswith("skipped:")) == sorted(
        f"skipped: {reason}" for reason in bad_seeds.values()
    )


def test_only_bad_seeds_fail_the_build_and_keep_the_old_index(seeds: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    before = qa.index_info(index, seeds).version
    for source in GOOD:
        (seeds / source).write_bytes(b"\x00")
    with pytest.raises(qa.SeedError) as caught:
        qa.build_index(seeds, index)
    assert str(caught.value).startswith(
        f"No usable seeds in {seeds}: add .docx, .htm, .html, .md, .pdf or .txt files to it."
    )
    assert qa.index_info(index, seeds).version == before
    assert len(qa.load_index(index)) > 0
