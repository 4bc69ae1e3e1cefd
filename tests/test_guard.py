"""qa.ui.guard in front of a stub app: hosts, origins, bodies, logins, tokens, the page's
session, rate limits, the busy answer and the audit log — in-process, in milliseconds.

tests/test_app_security.py checks the same rules against the real app.py over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.errors import SettingsError
from qa.ui.guard import BUSY, Endpoints, Guard, RateLimiter
from qa.ui.security import (
    AccessSettings,
    Credentials,
    RateLimit,
    allowed_hosts,
    check_bind,
    is_loopback,
    load_credentials,
)

TOKEN = "t0k3n-" + "x" * 20
URL = "http://127.0.0.1:7860"
ENDPOINTS = Endpoints(
    public_fns=frozenset({10}),
    public_names=frozenset({"answer"}),
    names={0: "respond", 6: "rebuild", 10: "answer"},
    question_fns=frozenset({"answer", "respond"}),
)


class StubApp:
    """Records what reached it; answers 503 to queue joins while ``full`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.full = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append((scope["path"], body))
        status = 503 if self.full and scope["path"].endswith("/queue/join") else 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"event_id": "e1"}'})


def guard(**settings: Any) -> tuple[Guard, StubApp]:
    app = StubApp()
    return Guard(app, AccessSettings(**settings), ENDPOINTS), app


def request(g: Guard, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=g)
        async with httpx.AsyncClient(transport=transport, base_url=URL) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def join(fn: int, question: str = "When?", **kwargs: Any) -> dict[str, Any]:
    return {"json": {"fn_index": fn, "data": [question, 5], "session_hash": "s1"}, **kwargs}


AUTH = {"credentials": Credentials(tokens=(TOKEN,), users={"ann": "secret-pass"})}


# --- hosts and origins -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:7860", 200),
        ("localhost:7860", 200),
        ("[::1]:7860", 200),
        ("qa.example.org", 400),
        ("attacker.example:7860", 400),
    ],
)
def test_only_known_host_names_are_served(host: str, status: int) -> None:
    g, app = guard()
    response = request(g, "GET", "/config", headers={"host": host})
    assert response.status_code == status
    if status == 400:
        assert response.json()["detail"].startswith(f"Host {host!r} is not served here;")
        assert app.calls == []


def test_an_allowed_host_name_is_served() -> None:
    g, _ = guard(allowed_hosts=allowed_hosts("0.0.0.0", ["qa.example.org"]))
    assert request(g, "GET", "/config", headers={"host": "qa.example.org"}).status_code == 200
    assert allowed_hosts("0.0.0.0", []) == frozenset({"localhost", "127.0.0.1", "::1"})
    assert "192.168.1.5" in allowed_hosts("192.168.1.5", [])


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (URL, 200),
        ("http://127.0.0.1:7860", 200),
        ("http://evil.example", 403),
        ("http://localhost:3000", 403),  # another local site is another origin
        ("null", 403),
    ],
)
def test_cross_site_requests_are_refused(origin: str, status: int) -> None:
    g, _ = guard()
    response = request(g, "POST", "/gradio_api/queue/join", **join(10, headers={"origin": origin}))
    assert response.status_code == status


# --- routes and bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/gradio_api/upload", "/gradio_api/upload_progress", "/gradio_api/stream/x/y"]
)
def test_upload_and_other_unused_routes_are_gone(path: str) -> None:
    g, app = guard()
    response = request(g, "POST", path, files={"files": ("a.txt", b"x" * 1000)})
    assert response.status_code == 404
    assert app.calls == []


def test_a_large_body_is_refused_before_it_is_read() -> None:
    g, app = guard()
    response = request(g, "POST", "/gradio_api/queue/join", content=b"x" * (50 << 20), headers={})
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "The request body is over 16 KiB; a question may be at most 2000 characters and this "
        "app takes no files."
    )
    assert app.calls == []


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    g, app = guard(max_body_bytes=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    response = request(g, "POST", "/gradio_api/queue/join", content=chunks())
    assert response.status_code == 413
    assert app.calls == []


def test_a_small_body_reaches_the_app_unchanged() -> None:
    g, app = guard()
    response = request(g, "POST", "/gradio_api/queue/join", **join(10))
    assert response.status_code == 200
    assert json.loads(app.calls[0][1])["data"] == ["When?", 5]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


# --- without authentication ------------------------------------------------------------------


def test_the_page_starts_a_session_that_the_pages_actions_need() -> None:
    g, _ = guard()
    assert request(g, "POST", "/gradio_api/queue/join", **join(10)).status_code == 200
    refused = request(g, "POST", "/gradio_api/queue/join", **join(6))
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "'rebuild' is an action of the chat page, not of the HTTP API; open the page to use it."
    )
    page = request(g, "GET", "/")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("qa_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";")[0].split("=", 1)[1]
    allowed = request(
        g, "POST", "/gradio_api/queue/join", **join(6, headers={"cookie": f"qa_session={session}"})
    )
    assert allowed.status_code == 200
    forged = request(
        g, "POST", "/gradio_api/queue/join", **join(6, headers={"cookie": "qa_session=x"})
    )
    assert forged.status_code == 403


def test_a_function_index_in_the_body_decides_over_the_name_in_the_path() -> None:
    g, app = guard()
    body = {"fn_index": 6, "data": []}
    assert request(g, "POST", "/gradio_api/run/answer", json=body).status_code == 403
    assert request(g, "POST", "/gradio_api/component_server", json={}).status_code == 403
    assert request(g, "POST", "/gradio_api/queue/join", content=b"{not json").status_code == 403
    assert app.calls == []


def test_named_routes_follow_the_same_rule() -> None:
    g, _ = guard()
    assert request(g, "POST", "/gradio_api/call/answer", json={"data": ["q", 5]}).status_code == 200
    response = request(g, "POST", "/gradio_api/call/rebuild", json={"data": []})
    assert response.status_code == 403


# --- with authentication ---------------------------------------------------------------------


def test_every_route_needs_a_token_or_a_login() -> None:
    g, app = guard(**AUTH)
    for method, path in [
        ("GET", "/config"),
        ("GET", "/gradio_api/info"),
        ("POST", "/gradio_api/queue/join"),
    ]:
        response = request(g, method, path, **join(10))
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="qa"'
    page = request(g, "GET", "/", headers={"accept": "text/html"})
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2F")
    assert app.calls == []


def test_a_token_reaches_the_api_but_not_the_pages_actions() -> None:
    g, _ = guard(**AUTH)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert (
        request(g, "POST", "/gradio_api/queue/join", **join(10, headers=bearer)).status_code == 200
    )
    assert (
        request(g, "POST", "/gradio_api/queue/join", **join(6, headers=bearer)).status_code == 403
    )
    wrong = request(g, "GET", "/config", headers={"authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "The bearer token is not valid.")


def test_logging_in_gives_a_session_for_everything() -> None:
    g, _ = guard(**AUTH)
    form = request(g, "GET", "/login?next=/%3F__theme%3Ddark")
    assert form.status_code == 200
    assert "name='username'" in form.text and 'value="/?__theme=dark"' in form.text
    bad = request(g, "POST", "/login", data={"username": "ann", "password": "wrong", "form": "1"})
    assert bad.status_code == 401 and "Wrong user name or password." in bad.text
    good = request(
        g,
        "POST",
        "/login",
        data={"username": "ann", "password": "secret-pass", "form": "1", "next": "//evil"},
    )
    assert (good.status_code, good.headers["location"]) == (303, "/")
    session = good.cookies["qa_session"]
    assert (
        request(g, "GET", "/config", headers={"cookie": f"qa_session={session}"}).status_code == 200
    )
    assert (
        request(
            g,
            "POST",
            "/gradio_api/queue/join",
            **join(6, headers={"cookie": f"qa_session={session}"}),
        ).status_code
        == 200
    )
    out = request(g, "GET", "/logout", headers={"cookie": f"qa_session={session}"})
    assert out.status_code == 303
    assert (
        request(g, "GET", "/config", headers={"cookie": f"qa_session={session}"}).status_code == 401
    )


def test_gradio_client_style_login_gets_200_and_a_cookie() -> None:
    g, _ = guard(**AUTH)
    response = request(g, "POST", "/login", data={"username": "ann", "password": "secret-pass"})
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert "qa_session" in response.cookies
    token_login = request(g, "POST", "/login", data={"username": "", "password": TOKEN})
    assert token_login.status_code == 200


def test_login_attempts_are_limited_per_client() -> None:
    g, _ = guard(**AUTH)
    codes = [
        request(g, "POST", "/login", data={"username": "ann", "password": f"guess{n}"}).status_code
        for n in range(12)
    ]
    assert codes == [401] * 10 + [429] * 2


# --- rate limit, busy, audit -----------------------------------------------------------------


def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    g, app = guard(rate_limit=RateLimit(per_minute=60, burst=3))
    codes = [request(g, "POST", "/gradio_api/queue/join", **join(10)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    last = request(g, "POST", "/gradio_api/queue/join", **join(10))
    assert last.headers["retry-after"] == "1"
    assert last.json()["detail"] == "Too many requests from 127.0.0.1; try again in 1 s."
    assert len(app.calls) == 3


def test_rate_limiter_refills_and_forgets_idle_clients() -> None:
    limiter = RateLimiter(RateLimit(per_minute=60, burst=2), max_clients=2)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [None, None, 1.0]
    assert limiter.take("a", now=1.0) is None  # one token back after a second
    limiter.take("b", now=1.0)
    limiter.take("c", now=1.0)
    assert limiter.take("a", now=1.0) is None  # "a" was forgotten: a fresh bucket
    assert RateLimiter(RateLimit(per_minute=0)).take("a") is None


def test_a_client_with_enough_questions_waiting_must_wait() -> None:
    waiting = {"127.0.0.1": 8}
    app = StubApp()
    g = Guard(app, AccessSettings(), ENDPOINTS, waiting=lambda client: waiting.get(client, 0))
    response = request(g, "POST", "/gradio_api/queue/join", **join(10))
    assert (response.status_code, response.headers["retry-after"]) == (429, "2")
    assert response.json()["detail"] == (
        "8 requests from 127.0.0.1 are already waiting; try again when they are answered."
    )
    waiting["127.0.0.1"] = 7
    assert request(g, "POST", "/gradio_api/queue/join", **join(10)).status_code == 200
    assert request(g, "GET", "/config").status_code == 200  # only work is capped


def test_a_burst_cannot_slip_past_the_per_client_cap_before_it_is_queued() -> None:
    class SlowJoin(StubApp):
        """Holds every join until released, as a busy server does before queueing it."""

        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.release.wait()
            await super().__call__(scope, receive, send)

    async def burst() -> list[int]:
        app = SlowJoin()
        settings = AccessSettings(max_waiting_per_client=3, rate_limit=RateLimit(0))
        # The queue is still empty for every request of the burst: only the guard's own
        # count of requests on their way in can hold the burst to the cap.
        g = Guard(app, settings, ENDPOINTS, waiting=lambda client: 0)
        transport = httpx.ASGITransport(app=g)
        async with httpx.AsyncClient(transport=transport, base_url=URL) as client:
            tasks = [
                asyncio.create_task(client.post("/gradio_api/queue/join", **join(10)))
                for _ in range(10)
            ]
            await asyncio.sleep(0.2)
            app.release.set()
            statuses = [r.status_code for r in await asyncio.gather(*tasks)]
            # Once answered, the requests no longer count: the client may ask again.
            again = await client.post("/gradio_api/queue/join", **join(10))
        return [*statuses, again.status_code]

    statuses = asyncio.run(burst())
    assert sorted(statuses[:10]) == [200] * 3 + [429] * 7
    assert statuses[10] == 200


def test_a_full_queue_answers_busy_at_once() -> None:
    g, app = guard()
    app.full = True
    response = request(g, "POST", "/gradio_api/queue/join", **join(10))
    assert response.status_code == 503
    assert response.json() == {"detail": BUSY}
    assert response.headers["retry-after"] == "2"


def test_the_audit_log_has_lengths_not_questions(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    g, _ = guard(audit_log=log, **AUTH)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    request(g, "POST", "/gradio_api/queue/join", **join(10, "Wann kam Anna?", headers=bearer))
    request(g, "POST", "/gradio_api/queue/join", **join(10))
    request(g, "GET", "/assets/index.js", headers=bearer)  # quiet: not logged
    g.audit.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["endpoint"], r["question_chars"], r["status"]) for r in lines] == [
        ("answer", 14, 200),
        (None, None, 401),
    ]
    assert lines[0]["identity"].startswith("token:") and TOKEN not in log.read_text()
    assert "Wann kam Anna?" not in log.read_text()
    assert log.stat().st_mode & 0o077 == 0


def test_the_audit_log_can_hold_the_questions(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    g, _ = guard(audit_log=log, audit_questions=True)
    request(g, "POST", "/gradio_api/queue/join", **join(0, "Wann kam Anna?"))
    g.audit.close()
    [line] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (line["endpoint"], line["question"], line["status"]) == (
        "respond",
        "Wann kam Anna?",
        403,
    )


# --- binding and credentials -----------------------------------------------------------------


def test_binding_beyond_loopback_needs_authentication(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SettingsError) as caught:
        check_bind("0.0.0.0", Credentials(), insecure_no_auth=False)
    assert str(caught.value).startswith(
        "Refusing to serve on 0.0.0.0 without authentication: anyone who can reach it could "
        "read every seed and rebuild the index."
    )
    check_bind("127.0.0.1", Credentials(), insecure_no_auth=False)
    check_bind("::1", Credentials(), insecure_no_auth=False)
    check_bind("0.0.0.0", Credentials(tokens=(TOKEN,)), insecure_no_auth=False)
    with caplog.at_level(logging.WARNING):
        check_bind("0.0.0.0", Credentials(), insecure_no_auth=True)
    assert "WITHOUT authentication" in caplog.text
    assert [is_loopback(h) for h in ("127.0.0.2", "localhost", "10.0.0.1", "::")] == [
        True,
        True,
        False,
        False,
    ]


def test_credentials_come_from_the_environment_and_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# API tokens\n{TOKEN}\n{'y' * 32}\n")
    tokens.chmod(0o600)
    users = tmp_path / "users"
    users.write_text("ann:secret-pass\nbob:another-pass\n")
    users.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        credentials = load_credentials(
            {"QA_UI_PASSWORD": "hunter22hunter"},
            token_file=str(tokens),
            users_file=str(users),
        )
    assert credentials.tokens == (TOKEN, "y" * 32)
    assert dict(credentials.users) == {
        "qa": "hunter22hunter",
        "ann": "secret-pass",
        "bob": "another-pass",
    }
    assert f"the users file {users} can be read by other users (mode 644)" in caplog.text
    assert credentials.login("ann", "secret-pass") == "user:ann"
    assert credentials.login("ann", "wrong") is None
    assert credentials.login("", TOKEN) == credentials.token_id(TOKEN)


def test_a_weak_token_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load_credentials({"QA_API_TOKEN": "short"})
    assert str(caught.value).startswith(
        "The API token from QA_API_TOKEN is 5 characters long; use at least 16 random characters"
    )
