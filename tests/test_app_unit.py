"""app.py's handlers in-process: streaming, source panels, errors, rebuild, options."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import pytest
from app_server import load_app

import qa

ROOT = Path(__file__).resolve().parents[1]
PORSCHE = "000_2e679b4798c0fccf.txt"
LIGHTHOUSE = (
    " date 2024-02 By Anna Lund\n\n# Kestrel Point Lighthouse\n\n"
    "The Kestrel Point lighthouse was first lit on 3 March 1871 by its keeper, Elias Brand. "
    "Its lamp can be seen from 22 nautical miles away.\n"
)


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_app("qa_app")


def _contents(history: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in history]


def test_binds_loopback_by_default(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QA_HOST", "QA_PORT", "QA_SEEDS", "QA_INDEX"):
        monkeypatch.delenv(name, raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.seeds, args.index) == ("127.0.0.1", 7860, "seeds", "index")


def test_options_come_from_env_and_flags_win(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_HOST", "0.0.0.0")
    monkeypatch.setenv("QA_PORT", "9001")
    monkeypatch.setenv("QA_SEEDS", "s")
    args = app.parse_args(["--port", "9002", "--index", "i"])
    assert (args.host, args.port, args.seeds, args.index) == ("0.0.0.0", 9002, "s", "i")


def test_answer_streams_in_then_sources_follow(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    steps = [history for history, _ in ui.respond("When did Porsche meet Apple?", [], 5, False)]
    assert steps[0] == [{"role": "user", "content": "When did Porsche meet Apple?"}]
    streamed = [h[1]["content"] for h in steps[1:-1]]
    assert len(streamed) >= 3
    assert all(a != b and b.startswith(a) for a, b in itertools.pairwise(streamed))
    final = steps[-1]
    assert final[1]["content"].startswith("**November 2021** — ")
    panels = final[2:]
    answer = qa.load_index(built_index).answer("When did Porsche meet Apple?")
    assert len(panels) == len(answer.citations)
    assert panels[0]["metadata"] == {
        "title": f"[1] {PORSCHE} · 2022-03 · William Boston, Tim Higgins"
    }
    assert all(p["metadata"]["status"] == "done" for p in panels[1:])  # collapsed
    assert "fand im <b class='qa-span'>November</b> am Rande" in panels[0]["content"]


def test_scores_are_shown_only_when_asked(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    *_, (final, _) = ui.respond("When did Porsche meet Apple?", [], 5, True)
    assert final[2]["metadata"]["log"].startswith("score ")
    assert "similarity 0." in final[2]["content"]


def test_not_answered_shows_the_closest_passages(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    *_, (final, cleared) = ui.respond("What is the capital of Peru?", [], 5, False)
    assert cleared == ""
    assert "The seeds do not answer this question." in final[1]["content"]
    titles = [m["metadata"]["title"].split(" ")[:3] for m in final[2:]]
    assert titles == [["Closest", "passage", f"{n}:"] for n in (1, 2, 3)]
    assert "<mark" not in "".join(_contents(final))


def test_library_errors_become_short_messages(app: ModuleType, tmp_path: Path) -> None:
    ui = app.QAApp(tmp_path / "seeds", tmp_path / "no-index")
    with pytest.raises(qa.QAError) as expected:
        qa.load_index(tmp_path / "no-index")
    steps = ui.respond("When did Porsche meet Apple?", [], 5, False)
    next(steps)
    with pytest.raises(gr.Error) as info:
        next(steps)
    assert info.value.message == str(expected.value)
    with pytest.raises(gr.Error) as empty:
        next(ui.respond("  ", [], 5, False))
    assert empty.value.message == "Type a question about the seeds first."


def test_document_panel_refuses_traversal(app: ModuleType, seeds: Path, tmp_path: Path) -> None:
    ui = app.QAApp(seeds, tmp_path / "index")
    with pytest.raises(gr.Error) as info:
        ui.open_document("../../etc/passwd", 0, 10)
    assert info.value.message.startswith("Cannot show '../../etc/passwd': it leaves the seeds")
    html, sidebar = ui.open_document(PORSCHE, 1145, 1398)
    assert "id='qa-doc-mark'" in html
    assert "qa-span" not in html
    assert sidebar.open is True
    span = (seeds / PORSCHE).read_text(encoding="utf-8").index("im November")
    html, _ = ui.open_document(PORSCHE, 1145, 1398, span, span + len("im November"))
    assert "<b class='qa-span'>im November</b>" in html


def test_rebuild_streams_progress_and_answers_from_the_new_seed(
    app: ModuleType, seeds: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    (seeds / "en" / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    ui = app.QAApp(seeds, index)
    assert "Seeds changed since this build (1 added)" in ui.status()
    statuses = [status for status, _ in ui.rebuild()]
    assert "↻ Rebuilding: reading the seeds…" in statuses[0]
    assert "✓ Rebuilt in" in statuses[-1]
    assert "1 added, 0 changed, 0 removed" in statuses[-1]
    assert "Seeds changed" not in statuses[-1]
    answer = ui.answer("When was the Kestrel Point lighthouse first lit?", 5)
    assert answer.found
    assert answer.citations[0].source == "en/lighthouse.md"
    assert answer.direct == "3 March 1871"


def test_only_one_rebuild_at_a_time(app: ModuleType, seeds: Path, tmp_path: Path) -> None:
    ui = app.QAApp(seeds, tmp_path / "index")
    assert ui._build_lock.acquire(blocking=False)
    with pytest.raises(gr.Error) as info:
        next(ui.rebuild())
    assert info.value.message == "A rebuild is already running."


@pytest.mark.slow
def test_the_entry_point_turns_analytics_and_hub_calls_off() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "HF_HUB_"))}
    code = (
        "import os, runpy; runpy.run_path('app.py', run_name='not_main'); "
        "print(os.environ['GRADIO_ANALYTICS_ENABLED'], os.environ['HF_HUB_OFFLINE'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "1"]
