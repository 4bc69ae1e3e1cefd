"""qa.ingest.viewer: only seed files inside the seeds folder can be read for display."""

from __future__ import annotations

from pathlib import Path

import pytest

import qa
from qa.ingest.viewer import read_document, resolve_seed

PORSCHE = "000_2e679b4798c0fccf.txt"


def test_reads_a_seed_with_its_metadata_and_file_offsets(seeds: Path) -> None:
    document = read_document(PORSCHE, seeds_dir=seeds)
    assert document.text == (seeds / PORSCHE).read_text(encoding="utf-8")
    assert (document.date, document.authors) == ("2022-03", ("William Boston", "Tim Higgins"))
    assert document.text[document.body_start :].startswith("FRANKFURT (Dow Jones)")


def test_reads_a_seed_in_a_subfolder(seeds: Path) -> None:
    assert read_document("de/roesterei.txt", seeds_dir=seeds).date == "2021-10"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("../outside.txt", "it leaves the seeds folder"),
        ("de/../../outside.txt", "it leaves the seeds folder"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("C:\\Windows\\win.ini", "absolute paths are not allowed"),
        (".hidden.txt", "hidden files are not seeds"),
        ("notes.py", "only .docx, .htm, .html, .md, .pdf, .txt files are seeds"),
        ("", "no file name was given"),
        ("nope.txt", "there is no such seed file"),
        ("de", "only .docx, .htm, .html, .md, .pdf, .txt files are seeds"),
    ],
)
def test_refuses_anything_but_a_seed_inside_the_folder(seeds: Path, source: str, why: str) -> None:
    (seeds.parent / "outside.txt").write_text("secret", encoding="utf-8")
    (seeds / ".hidden.txt").write_text("hidden", encoding="utf-8")
    with pytest.raises(qa.SeedError) as info:
        resolve_seed(seeds, source)
    assert str(info.value).startswith(f"Cannot show {source!r}: {why}.")


def test_refuses_a_symlink_that_leads_out_of_the_seeds(seeds: Path) -> None:
    outside = seeds.parent / "outside.txt"
    outside.write_text("secret", encoding="utf-8")
    (seeds / "link.txt").symlink_to(outside)
    with pytest.raises(qa.SeedError, match="it links to a file outside the seeds folder"):
        read_document("link.txt", seeds_dir=seeds)


def test_refuses_a_file_reached_through_a_symlinked_folder(seeds: Path) -> None:
    elsewhere = seeds.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.txt").write_text("secret", encoding="utf-8")
    (seeds / "linked").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(qa.SeedError, match="it links to a file outside the seeds folder"):
        read_document("linked/x.txt", seeds_dir=seeds)


def test_follows_a_symlink_that_stays_inside(seeds: Path) -> None:
    (seeds / "alias.txt").symlink_to(seeds / "de" / "roesterei.txt")
    assert read_document("alias.txt", seeds_dir=seeds).date == "2021-10"
