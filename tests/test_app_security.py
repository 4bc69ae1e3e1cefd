"""The real app.py with authentication on, over HTTP on loopback: tokens, logins, the page's
actions, uploads, large bodies, Host headers, the busy answer and the audit log.

The rules themselves are tested in-process in test_guard.py; this checks that app.py puts the
guard in front of Gradio's real routes (queue, call API, config, upload) and that
gradio_client still works with a token or a login.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from app_server import AppServer, running_app
from gradio_client import Client

from qa.ui.guard import BUSY

pytestmark = pytest.mark.slow

TOKEN = "test-token-" + "k" * 24
PASSWORD = "correct horse battery"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("app-security")
    args = ["--queue-size", "2", "--rate-limit", "0", "--audit-log", str(workdir / "audit.log")]
    env = {"QA_API_TOKEN": TOKEN, "QA_UI_PASSWORD": PASSWORD}
    with running_app(workdir, args=args, env=env) as app:
        yield app


@pytest.fixture(scope="module")
def fns(server: AppServer) -> dict[str, int]:
    config = httpx.get(server.url + "config", headers=BEARER, timeout=30).json()
    return {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("path", ["config", "gradio_api/info", "gradio_api/queue/data"])
def test_without_a_token_every_route_answers_401(server: AppServer, path: str) -> None:
    response = httpx.get(server.url + path, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="qa"'


def test_the_page_sends_a_browser_to_the_login_form(server: AppServer) -> None:
    response = httpx.get(server.url, headers={"accept": "text/html"}, timeout=30)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2F")
    form = httpx.get(server.url + "login", timeout=30)
    assert form.status_code == 200 and "name='username'" in form.text


def test_gradio_client_with_the_token_answers(server: AppServer) -> None:
    client = Client(server.url, headers=BEARER, verbose=False)
    answer = client.predict("When did Porsche meet Apple?", 5, api_name="/answer")
    assert (answer["found"], answer["direct"]) == (True, "November 2021")


def test_gradio_client_with_a_login_answers(server: AppServer) -> None:
    client = Client(server.url, auth=("qa", PASSWORD), verbose=False)
    passages = client.predict("Porsche Apple", 2, api_name="/search")
    assert [p["rank"] for p in passages] == [1, 2]


def test_a_wrong_token_is_refused(server: AppServer) -> None:
    response = httpx.get(
        server.url + "config", headers={"Authorization": "Bearer wrong"}, timeout=30
    )
    assert (response.status_code, response.json()["detail"]) == (
        401,
        "The bearer token is not valid.",
    )


def test_rebuild_is_not_callable_with_a_token_alone(server: AppServer, fns: dict[str, int]) -> None:
    body = {"fn_index": fns["rebuild"], "data": [], "session_hash": uuid.uuid4().hex[:10]}
    response = httpx.post(
        server.url + "gradio_api/queue/join", json=body, headers=BEARER, timeout=30
    )
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "'rebuild' is an action of the chat page, not of the HTTP API; open the page to use it."
    )
    call = httpx.post(
        server.url + "gradio_api/call/rebuild", json={"data": []}, headers=BEARER, timeout=30
    )
    assert call.status_code == 403


def test_k_out_of_range_is_named_over_http(server: AppServer) -> None:
    client = Client(server.url, headers=BEARER, verbose=False)
    with pytest.raises(Exception, match=r"k must be a whole number from 1 to 50, got 1000000000"):
        client.predict("Porsche", 10**9, api_name="/search")


def test_uploads_are_refused(server: AppServer) -> None:
    response = httpx.post(
        server.url + "gradio_api/upload",
        files={"files": ("notes.txt", b"x" * 4096)},
        headers=BEARER,
        timeout=30,
    )
    assert response.status_code == 404


def test_a_50_mb_body_is_refused_without_the_process_growing(server: AppServer) -> None:
    before = rss_mb(server.process.pid)
    for _ in range(3):
        response = httpx.post(
            server.url + "gradio_api/queue/join",
            content=b"x" * (50 << 20),
            headers={**BEARER, "content-type": "application/json"},
            timeout=60,
        )
        assert response.status_code == 413
    assert rss_mb(server.process.pid) - before < 10


def test_a_foreign_host_header_is_refused(server: AppServer) -> None:
    response = httpx.get(
        server.url + "config", headers={**BEARER, "host": "rebind.attacker.example"}, timeout=30
    )
    assert response.status_code == 400


def test_a_flood_is_answered_busy_at_once(server: AppServer, fns: dict[str, int]) -> None:
    async def ask(address: str, times: int) -> list[httpx.Response]:
        # Each address stays under its own cap of 8 (tests/test_guard.py tests that cap):
        # it is the queue of 2 that these 60 questions from 10 addresses fill.
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(transport=transport, headers=BEARER, timeout=60) as http:
            body = {"fn_index": fns["answer"], "data": ["When did Porsche meet Apple?", 5]}
            return list(
                await asyncio.gather(
                    *(
                        http.post(
                            server.url + "gradio_api/queue/join",
                            json={**body, "session_hash": uuid.uuid4().hex[:10]},
                        )
                        for _ in range(times)
                    )
                )
            )

    async def flood() -> list[httpx.Response]:
        runs = await asyncio.gather(*(ask(f"127.0.0.{20 + n}", 6) for n in range(10)))
        return [response for run in runs for response in run]

    responses = asyncio.run(flood())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}
    busy = [r for r in responses if r.status_code == 503]
    assert busy, statuses
    assert {r.json()["detail"] for r in busy} == {BUSY}
    assert {r.headers["retry-after"] for r in busy} == {"2"}
    # The queue drains, and the next question is answered.
    client = Client(server.url, headers=BEARER, verbose=False)
    assert client.predict("When did Porsche meet Apple?", 5, api_name="/answer")["found"]


def test_the_audit_log_records_requests_without_their_text(server: AppServer) -> None:
    Client(server.url, headers=BEARER, verbose=False).predict(
        "Wer ist der Finanzvorstand von Porsche?", 3, api_name="/answer"
    )
    log = server.index.parent / "audit.log"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    answers = [r for r in records if r["endpoint"] == "answer" and r["status"] == 200]
    assert any(
        r["question_chars"] == len("Wer ist der Finanzvorstand von Porsche?") for r in answers
    )
    assert any(r["status"] == 401 for r in records)
    assert "Finanzvorstand" not in log.read_text()
    assert TOKEN not in log.read_text()
