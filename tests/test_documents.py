"""Seeds: metadata line, recursive reading, hidden files, and bad seeds named in errors."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest
from conftest import PORSCHE, SEEDS

from qa.errors import SeedError
from qa.ingest import seeds as documents
from qa.ingest.seeds import iter_seed_paths, parse_metadata, read_seed, scan_seeds

METADATA_LINE = " date 2022-03 Von William Boston und Tim Higgins"


def test_parse_metadata_line() -> None:
    text = METADATA_LINE + "\n\nFRANKFURT (Dow Jones)--Porsche und Apple"
    assert parse_metadata(text) == (
        len(METADATA_LINE) + 2,
        "2022-03",
        ("William Boston", "Tim Higgins"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "date 2023-05 By Maria Keller and Tom Reed\nText",
            (42, "2023-05", ("Maria Keller", "Tom Reed")),
        ),
        ("date 2021-10-07\nText", (16, "2021-10-07", ())),
        ("Kein Metadatum, nur Text.\n", (0, None, ())),
        ("Updated 2022-03 by nobody\nText", (0, None, ())),
    ],
)
def test_parse_metadata_variants(
    text: str, expected: tuple[int, str | None, tuple[str, ...]]
) -> None:
    assert parse_metadata(text) == expected


def test_read_seed_keeps_file_offsets_and_metadata() -> None:
    path = SEEDS / PORSCHE
    doc = read_seed(path, PORSCHE)
    on_disk = path.read_bytes().decode("utf-8")
    assert doc.text == on_disk
    assert doc.date == "2022-03"
    assert doc.authors == ("William Boston", "Tim Higgins")
    assert doc.body_start == len(METADATA_LINE) + 2  # the line and the blank line after it
    assert doc.body.startswith("FRANKFURT (Dow Jones)--Porsche und Apple")
    assert "William Boston" not in doc.body
    sentence = "fand im November am Rande der Los Angeles Auto Show statt"
    assert doc.text.index(sentence) == on_disk.index(sentence)


def test_scan_reads_recursively_sorted_with_metadata() -> None:
    scan = scan_seeds(SEEDS)
    assert [d.source for d in scan.documents] == [
        PORSCHE,
        "de/roesterei.txt",
        "en/harbour_bridge.md",
    ]
    assert scan.skipped == ()
    meta = {d.source: (d.date, d.authors) for d in scan.documents}
    assert meta["de/roesterei.txt"] == ("2021-10", ("Jonas Weber",))
    assert meta["en/harbour_bridge.md"] == ("2023-05", ("Maria Keller", "Tom Reed"))


def test_hidden_files_and_other_suffixes_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Sichtbar.", encoding="utf-8")
    (tmp_path / ".versteckt.txt").write_text("Versteckt.", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("Versteckt.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.MD").write_text("Auch sichtbar.", encoding="utf-8")
    (tmp_path / "sub" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "sub" / "d.txt~").write_text("Backup.", encoding="utf-8")
    (tmp_path / "sub" / "e.PDF").write_bytes(b"%PDF-1.4")  # a seed name, however broken
    assert [source for _, source in iter_seed_paths(tmp_path)] == [
        "a.txt",
        "sub/b.MD",
        "sub/e.PDF",
    ]
    scan = scan_seeds(tmp_path)
    assert [d.source for d in scan.documents] == ["a.txt", "sub/b.MD"]
    assert [s.source for s in scan.skipped] == ["sub/e.PDF"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Gr\xfc\xdfe aus K\xf6ln", "Seed bad.txt is not valid UTF-8 (byte 2); save it as UTF-8."),
        (b"", "Seed bad.txt is empty; add text or remove the file."),
        (b"  \n\t\n", "Seed bad.txt is empty; add text or remove the file."),
        (
            b"abc\x00\x01binary",
            "Seed bad.txt is named .txt but is a binary file, not a text file; remove it or "
            "save it in a supported format.",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00",
            "Seed bad.txt is named .txt but is a PNG image, not a text file; remove it or save "
            "it in a supported format.",
        ),
        (
            b" date 2022-03 Von A B\n\n",
            "Seed bad.txt has metadata but no text; add text or remove the file.",
        ),
    ],
    ids=["latin-1", "empty", "blank", "binary", "image", "metadata-only"],
)
def test_bad_seed_raises_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(SeedError) as caught:
        read_seed(path, "bad.txt")
    assert str(caught.value) == message


def test_folder_named_like_a_seed(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.mkdir()
    with pytest.raises(SeedError) as caught:
        read_seed(path, "x.txt")
    assert str(caught.value) == "Seed x.txt is not a regular file; remove it from the seeds."


def test_unreadable_seed_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reading: make opening the file fail.
    path = tmp_path / "locked.txt"
    path.write_text("Geheim.", encoding="utf-8")
    real_open = builtins.open
    real_read_bytes = Path.read_bytes

    def deny_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def deny_read_bytes(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(documents, "open", deny_open, raising=False)
    monkeypatch.setattr(Path, "read_bytes", deny_read_bytes)
    with pytest.raises(SeedError) as caught:
        read_seed(path, "locked.txt")
    assert str(caught.value) == (
        "Cannot read seed locked.txt: Permission denied; check its permissions."
    )


def test_scan_skips_bad_seeds_and_reports_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.txt").write_text("Ein guter Satz.", encoding="utf-8")
    (tmp_path / "leer.md").write_bytes(b"")
    with caplog.at_level("WARNING", logger="qa.ingest.seeds"):
        scan = scan_seeds(tmp_path)
    assert caplog.messages == ["skipping seed: Seed leer.md is empty; add text or remove the file."]
    assert [d.source for d in scan.documents] == ["good.txt"]
    assert [(s.source, s.reason) for s in scan.skipped] == [
        ("leer.md", "Seed leer.md is empty; add text or remove the file.")
    ]


def test_missing_seeds_folder_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SeedError) as caught:
        scan_seeds(missing)
    assert str(caught.value) == (
        f"Seeds folder {missing} does not exist; create it and put .docx, .htm, .html, .md, "
        ".pdf or .txt files in it."
    )


def test_empty_seeds_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SeedError) as caught:
        scan_seeds(tmp_path)
    assert str(caught.value) == (
        f"No usable seeds in {tmp_path}: add .docx, .htm, .html, .md, .pdf or .txt files to it."
    )


def test_folder_of_only_bad_seeds_lists_each_reason(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"\xff\xfe\xfa")
    (tmp_path / "b.txt").write_bytes(b"")
    with pytest.raises(SeedError) as caught:
        scan_seeds(tmp_path)
    assert str(caught.value) == (
        f"No usable seeds in {tmp_path}: add .docx, .htm, .html, .md, .pdf or .txt files to it."
        "\n  Seed a.txt is not valid UTF-8 (byte 0); save it as UTF-8."
        "\n  Seed b.txt is empty; add text or remove the file."
    )


def test_seeds_path_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "seeds.txt"
    file.write_text("Text.", encoding="utf-8")
    with pytest.raises(SeedError, match=r"is not a folder; pass the folder of seed files\.$"):
        scan_seeds(file)
