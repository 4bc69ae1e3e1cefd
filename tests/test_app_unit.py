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
    steps = [chat for chat, _, _ in ui.respond("When did Porsche meet Apple?", [], 5, False)]
    assert steps[0] == [{"role": "user", "content": "When did Porsche meet Apple?"}]
    # While the reader model reads, a note names the documents whose passages it reads.
    assert steps[1][1]["content"] == (
        f"<div class='qa-reading'>Reading the best passages of <code>{PORSCHE}</code>, "
        "<code>en/harbour_bridge.md</code>, <code>de/roesterei.txt</code>…</div>"
    )
    streamed = [h[1]["content"] for h in steps[2:-1]]
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


def test_without_the_reader_the_answer_streams_at_once(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    question = "Who is Porsche's CFO?"
    steps = [h for h, _, _ in ui.respond(question, [], 5, False, use_reader=False)]
    assert all("qa-reading" not in m["content"] for h in steps for m in h)
    with_reader = [h for h, _, _ in ui.respond(question, [], 5, False)]
    assert with_reader[-1][1]["content"].startswith("**Lutz Meschke** — ")
    assert not steps[-1][1]["content"].startswith("**Lutz Meschke**")


def test_scores_are_shown_only_when_asked(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    *_, (final, _, _) = ui.respond("When did Porsche meet Apple?", [], 5, True)
    assert final[2]["metadata"]["log"].startswith("score ")
    assert "similarity 0." in final[2]["content"]


def test_not_answered_shows_the_closest_passages(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    *_, (final, cleared, _) = ui.respond("What is the capital of Peru?", [], 5, False)
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


def test_the_askers_words_are_shown_as_text(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    question = 'Porsche <img src="http://127.0.0.1:9/x"> [link](http://e.org) **bold**?'
    chat, _, state = next(ui.respond(question, [], 5, False))
    assert chat == state
    assert chat[-1] == {
        "role": "user",
        "content": (
            'Porsche &lt;img src\\="http\\://127\\.0\\.0\\.1\\:9/x"&gt; '
            "\\[link\\]\\(http\\://e\\.org\\) \\*\\*bold\\*\\*?"
        ),
    }


def test_the_conversation_is_kept_on_the_server_not_sent_back(
    app: ModuleType, built_index: Path, seeds_copy: Path
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    *_, (_, _, first) = ui.respond("When did Porsche meet Apple?", [], 5, False)
    *_, (chat, _, second) = ui.respond("Wer ist der Finanzvorstand von Porsche?", first, 5, False)
    assert chat == second
    assert second[: len(first)] == first
    long = [{"role": "user", "content": str(n)} for n in range(app.MAX_HISTORY + 50)]
    chat, _, _ = next(ui.respond("Porsche?", long, 5, False))
    assert len(chat) == app.MAX_HISTORY + 1


@pytest.mark.parametrize(
    ("k", "shown"), [(2.7, "2.7"), ("abc", "'abc'"), (float("nan"), "nan"), (51, "51")]
)
def test_a_bad_k_from_the_page_is_named(
    app: ModuleType, built_index: Path, seeds_copy: Path, k: object, shown: str
) -> None:
    ui = app.QAApp(seeds_copy, built_index)
    with pytest.raises(gr.Error) as info:
        next(ui.respond("Porsche?", [], k, False))
    assert info.value.message == f"k must be a whole number from 1 to 50, got {shown}."
    with pytest.raises(gr.Error) as api:
        ui.api_answer("Porsche?", k)
    assert api.value.message == info.value.message
    assert ui.api_answer("When did Porsche meet Apple?", 5.0)["found"] is True


def test_links_in_seed_text_are_not_links_in_the_answer() -> None:
    from qa.ui.render import answer_markdown

    answer = qa.Answer(
        question="q",
        text="Siehe [hier](https://evil.example) und www.evil.example <img src=x> [1]",
        found=True,
        citations=(),
        passages=(),
        direct=None,
    )
    rendered = answer_markdown(answer)
    assert "](" not in rendered and "<img" not in rendered and "www." not in rendered
    assert rendered.startswith("Siehe \\[hier\\]\\(https\\://evil\\.example\\)")


def test_a_stale_index_is_served_at_once_and_rebuilt_in_the_background(
    app: ModuleType, seeds: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    qa.build_index(seeds, index)
    live = qa.index_info(index, seeds).version
    (seeds / "en" / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    assert app.prepare_index(str(seeds), str(index)) is True  # nothing built yet
    assert qa.index_info(index, seeds).version == live
    ui = app.QAApp(seeds, index)
    worker = ui.rebuild_in_background()
    assert ui.rebuild_in_background() is None  # one at a time
    assert ui.answer("When did Porsche meet Apple?", 5).found  # served meanwhile
    worker.join(timeout=600)
    assert qa.index_info(index, seeds).version != live
    assert ui.build_note is None
    assert qa.needs_build(seeds, index) is None


def test_a_missing_index_is_built_before_serving(
    app: ModuleType, seeds: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    assert app.prepare_index(str(seeds), str(index)) is False
    assert qa.needs_build(seeds, index) is None


def test_serving_beyond_loopback_without_authentication_is_refused(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("QA_API_TOKEN", "QA_UI_PASSWORD", "QA_API_TOKEN_FILE", "QA_USERS_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert app.main(["--host", "0.0.0.0", "--index", "/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Refusing to serve on 0.0.0.0 without authentication")
    assert "--insecure-no-auth" in err


def test_access_options(app: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_API_TOKEN", "z" * 24)
    monkeypatch.setenv("QA_ALLOWED_HOSTS", "qa.example.org")
    args = app.parse_args(
        [
            "--host",
            "0.0.0.0",
            "--rate-limit",
            "30",
            "--client-queue",
            "3",
            "--audit-log",
            str(tmp_path / "a.log"),
        ]
    )
    settings = app.access_settings(args)
    assert settings.credentials.tokens == ("z" * 24,)
    assert "qa.example.org" in settings.allowed_hosts
    assert (settings.rate_limit.per_minute, settings.rate_limit.burst) == (30, 30)
    assert settings.audit_log == tmp_path / "a.log"
    assert settings.audit_questions is False
    assert settings.max_waiting_per_client == 3
    assert app.access_settings(app.parse_args([])).max_waiting_per_client == 8


def test_main_starts_serving_a_stale_index_before_its_rebuild_ends(
    app: ModuleType, seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    index = tmp_path / "index"
    qa.build_index(seeds, index)
    live = qa.index_info(index, seeds).version
    (seeds / "en" / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    served: list[str | None] = []
    serving = threading.Event()
    real_build = qa.build_index

    def build_after_serving(*args: Any, **kwargs: Any) -> qa.IndexStats:
        # A main() that waited for the rebuild would never reach serve(): the gate times out
        # and the new version is live before serving, which the asserts below catch.
        serving.wait(timeout=60)
        return real_build(*args, **kwargs)

    def serve(guarded: object, **_: object) -> None:
        # The moment the server would start: the old version is still live and answering.
        served.append(qa.index_info(index, seeds).version)
        assert qa.answer("When did Porsche meet Apple?", index_dir=index).found
        serving.set()

    monkeypatch.setattr(qa, "build_index", build_after_serving)
    monkeypatch.setattr(app, "serve", serve)
    # The page and its mounting are tested with the real server (test_app_security); here
    # they would only leave Gradio's event loops behind.
    monkeypatch.setattr(app, "build_demo", lambda *args, **kwargs: None)
    monkeypatch.setattr(app, "guarded_app", lambda *args, **kwargs: None)
    for name in ("QA_API_TOKEN", "QA_UI_PASSWORD", "QA_API_TOKEN_FILE", "QA_USERS_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert app.main(["--seeds", str(seeds), "--index", str(index)]) == 0
    assert served == [live]
    workers = [t for t in threading.enumerate() if t.name == "qa-background-rebuild"]
    assert len(workers) == 1
    workers[0].join(timeout=600)
    assert qa.needs_build(seeds, index) is None
    assert qa.index_info(index, seeds).version != live
