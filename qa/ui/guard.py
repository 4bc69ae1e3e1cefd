"""The app's front door: one ASGI middleware that every request passes before Gradio sees it.

In order, for each request:

1. the ``Host`` header must name this server (DNS rebinding), and an ``Origin``, when a
   browser sends one, must be this site (cross-site requests);
2. routes the app does not use are gone: uploads (the app takes no files), streaming,
   monitoring, proxying, code editing;
3. the body is read only up to ``max_body_bytes`` (413 beyond, before anything parses it);
4. the caller must be known when authentication is on: a bearer token, or the session
   cookie of a login; the login form itself is served here;
5. the chat page's own actions (Rebuild, status, the side panel, the chat) need the page's
   session; a token alone reaches only the public API (``/answer``, ``/search``,
   ``/document``);
6. questions, logins and page loads are rate-limited per client (429), a client may have only
   a few questions waiting at once (429; one client cannot fill the queue in front of the
   others), and a full Gradio queue answers 503 "busy, try again" at once;
7. the optional audit log gets one line per request that did work or was refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .audit import AuditLog
from .login import (
    COOKIE,
    SessionStore,
    cookie_header,
    login_page,
    parse_form,
    read_cookie,
    safe_next,
)
from .security import AccessSettings, RateLimit, host_name

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API = "/gradio_api"
#: Routes of Gradio this app never uses; they answer 404 (prefix match).
BLOCKED = (
    f"{API}/upload",
    f"{API}/upload_progress",
    f"{API}/process_recording",
    f"{API}/stream/",
    f"{API}/proxy=",
    f"{API}/dev/",
    f"{API}/vibe-",
    f"{API}/undo-vibe-edit",
    f"{API}/run-history",
    f"{API}/mcp",
    "/monitoring",
)
#: Routes that run a function, and so are rate-limited and audited.
_RUN_PREFIXES = (f"{API}/run/", f"{API}/api/", f"{API}/call/")
_QUEUE_JOIN = f"{API}/queue/join"
_COMPONENT_SERVER = f"{API}/component_server"
#: Requests served often without doing work: not audited unless refused.
_QUIET_PREFIXES = ("/assets/", "/static/", "/svelte/", f"{API}/heartbeat/", f"{API}/queue/data")
BUSY = "The server is busy answering other questions; try again in a few seconds."
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The Gradio functions a token may call (the public API), by index and name, and those
    whose first input is a question (its length goes into the audit log)."""

    public_fns: frozenset[int]
    public_names: frozenset[str]
    names: dict[int, str]
    question_fns: frozenset[str]


class RateLimiter:
    """Token buckets per client, bounded in number (idle clients are forgotten first)."""

    def __init__(self, limit: RateLimit, *, max_clients: int = 10_000) -> None:
        self._limit = limit
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_clients

    def take(self, client: str, now: float | None = None) -> float | None:
        """``None`` when ``client`` may go ahead, else the seconds until it may."""
        if self._limit.per_minute == 0:
            return None
        now = time.monotonic() if now is None else now
        rate = self._limit.per_minute / 60.0
        tokens, stamp = self._buckets.pop(client, (float(self._limit.burst), now))
        tokens = min(float(self._limit.burst), tokens + (now - stamp) * rate)
        wait = None if tokens >= 1.0 else (1.0 - tokens) / rate
        self._buckets[client] = (tokens - 1.0 if wait is None else tokens, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return wait


@dataclass(slots=True)
class _Call:
    """What the guard learnt about one request, for its decisions and the audit line."""

    method: str
    path: str
    client: str
    identity: str = "-"
    has_session: bool = False
    endpoint: str | None = None
    question: str | None = None
    status: int = 0


class Guard:
    """The ASGI middleware in front of the Gradio app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: AccessSettings,
        endpoints: Endpoints,
        *,
        waiting: Callable[[str], int] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.endpoints = endpoints
        #: How many of a client's events wait in the app's queue (see qa.ui.serve).
        self.waiting = waiting
        self.sessions = SessionStore()
        self.limiter = RateLimiter(settings.rate_limit)
        self.login_limiter = RateLimiter(
            RateLimit(per_minute=settings.login_per_minute, burst=settings.login_per_minute)
        )
        self.audit = AuditLog(settings.audit_log, questions=settings.audit_questions)
        #: Work requests of each client passed on to the app and not yet answered. A burst
        #: arrives before any of it is in the app's queue; without this count every request
        #: of the burst would see an empty queue and pass the per-client cap.
        self._in_flight: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        client = (scope.get("client") or ("-", 0))[0]
        call = _Call(scope.get("method", "WS"), scope["path"], client)

        async def respond(status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
            call.status = status
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*headers, *_SECURITY_HEADERS],
                }
            )
            await send({"type": "http.response.body", "body": body})

        try:
            await self._handle(scope, receive, send, call, respond)
        finally:
            quiet = call.path.startswith(_QUIET_PREFIXES) and call.status < 400
            if not quiet:
                self.audit.write(call, time.monotonic() - started)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        call: _Call,
        respond: Callable[[int, bytes, list[tuple[bytes, bytes]]], Awaitable[None]],
    ) -> None:
        headers = _headers(scope)

        async def refuse(status: int, message: str, *extra: tuple[bytes, bytes]) -> None:
            body = json.dumps({"detail": message}).encode("utf-8")
            await respond(status, body, [(b"content-type", b"application/json"), *extra])

        # 1. Host and Origin.
        allowed = self.settings.allowed_hosts
        host = host_name(headers.get("host", ""))
        if "*" not in allowed and host not in allowed:
            await refuse(
                400,
                f"Host {headers.get('host', '')[:100]!r} is not served here; start the app with "
                "--allowed-host NAME to accept it.",
            )
            return
        origin = headers.get("origin")
        if origin is not None and not self._same_site(origin, headers.get("host", "")):
            await refuse(403, "Cross-site requests are refused; use the page this server serves.")
            return
        # 2. Routes the app does not use.
        if call.path.startswith(BLOCKED):
            await refuse(404, "Not found: this app takes no files and offers no such route.")
            return
        # 3. The body, bounded before anything parses it.
        body = b""
        if scope["type"] == "http":
            length = headers.get("content-length", "")
            cap = self.settings.max_body_bytes
            if length.isdigit() and int(length) > cap:
                await refuse(413, _too_large(cap))
                return
            read = await _read_body(receive, cap)
            if read is None:
                await refuse(413, _too_large(cap))
                return
            body = read
        # 4. Who is asking.
        cookie_id = read_cookie(headers.get("cookie", ""))
        session = self.sessions.get(cookie_id)
        if session is not None:
            call.identity, call.has_session = session.identity, True
        credentials = self.settings.credentials
        authorization = headers.get("authorization", "")
        if credentials.enabled and authorization.lower().startswith("bearer "):
            token_id = credentials.token_id(authorization[7:].strip())
            if token_id is None:
                await refuse(401, "The bearer token is not valid.", _challenge())
                return
            if session is None:
                call.identity = token_id
        if call.path.rstrip("/") in ("/login", "/logout") and scope["type"] == "http":
            await self._login(scope, send, call, body, cookie_id, respond, refuse)
            return
        if credentials.enabled and call.identity == "-":
            if call.method == "GET" and "text/html" in headers.get("accept", ""):
                target = "/login?next=" + _quote_next(scope)
                await respond(303, b"", [(b"location", target.encode("latin-1"))])
                return
            await refuse(
                401,
                "Log in first: send 'Authorization: Bearer <token>' (QA_API_TOKEN) or log in "
                "at /login.",
                _challenge(),
            )
            return
        # 5. The page's own actions need the page's session.
        work = self._classify(call, body) if scope["type"] == "http" else False
        internal = call.endpoint is not None and call.endpoint not in self.endpoints.public_names
        if work and internal and not call.has_session:
            await refuse(
                403,
                f"{call.endpoint!r} is an action of the chat page, not of the HTTP API; "
                "open the page to use it.",
            )
            return
        page = call.method == "GET" and call.path == "/"
        # 6. Rate limit and busy.
        if work or page:
            wait = self.limiter.take(call.client)
            if wait is not None:
                seconds = max(1, int(wait + 0.999))
                await refuse(
                    429,
                    f"Too many requests from {call.client}; try again in {seconds} s.",
                    (b"retry-after", str(seconds).encode()),
                )
                return
            limit = self.settings.max_waiting_per_client
            if work and limit and self._queued(call.client) >= limit:
                await refuse(
                    429,
                    f"{limit} requests from {call.client} are already waiting; try again when "
                    "they are answered.",
                    (b"retry-after", b"2"),
                )
                return
        new_session = None
        if page and not credentials.enabled and session is None:
            new_session = self.sessions.create("anonymous")
            call.has_session, call.identity = True, "anonymous"
        secure = scope.get("scheme") in ("https", "wss")
        if work:
            self._in_flight[call.client] += 1
        try:
            await self.app(
                scope,
                _replay(body, receive) if scope["type"] == "http" else receive,
                _Responder(send, call, rewrite_busy=work, new_session=new_session, secure=secure),
            )
        finally:
            if work:
                self._in_flight[call.client] -= 1
                if self._in_flight[call.client] <= 0:
                    del self._in_flight[call.client]

    def _queued(self, client: str) -> int:
        """A client's requests in the app's queue, plus those on their way into it."""
        waiting = self.waiting(client) if self.waiting is not None else 0
        return waiting + self._in_flight[client]

    def _classify(self, call: _Call, body: bytes) -> bool:
        """Whether the request runs a function; note which one and its question.

        A function index in the body decides over a name in the path: Gradio's ``/run/NAME``
        runs the body's ``fn_index`` when there is one.
        """
        path = call.path.rstrip("/")
        if call.method != "POST":
            return False
        if path == _COMPONENT_SERVER:
            call.endpoint = "component_server"
            return True
        named = path.startswith(_RUN_PREFIXES)
        if path != _QUEUE_JOIN and not named:
            return False
        try:
            payload: Any = json.loads(body or b"{}")
        except ValueError:
            payload = None
        index = payload.get("fn_index") if isinstance(payload, dict) else None
        if isinstance(index, int) and not isinstance(index, bool):
            call.endpoint = self.endpoints.names.get(index, f"fn#{index}")
        elif named:
            rest = path.split("/", 3)[3] if path.count("/") >= 3 else ""
            call.endpoint = rest.removeprefix("v2/").split("/", 1)[0] or "?"
        else:
            call.endpoint = "fn#?"
        data = payload.get("data") if isinstance(payload, dict) else None
        if call.endpoint in self.endpoints.question_fns and isinstance(data, list) and data:
            first = data[0]
            call.question = first if isinstance(first, str) else None
        return True

    def _same_site(self, origin: str, host_header: str) -> bool:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return _without_default_port(parts.netloc) == _without_default_port(host_header)

    async def _login(
        self,
        scope: Scope,
        send: Send,
        call: _Call,
        body: bytes,
        cookie_id: str | None,
        respond: Callable[[int, bytes, list[tuple[bytes, bytes]]], Awaitable[None]],
        refuse: Callable[..., Awaitable[None]],
    ) -> None:
        credentials = self.settings.credentials
        users = bool(credentials.users)
        html_type = (b"content-type", b"text/html; charset=utf-8")
        secure = scope.get("scheme") == "https"
        if call.path.rstrip("/") == "/logout":
            self.sessions.end(cookie_id)
            clear = (b"set-cookie", cookie_header("", secure=secure, max_age=0))
            await respond(303, b"", [(b"location", b"/login" if users else b"/"), clear])
            return
        if call.method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            next_path = safe_next((query.get("next") or ["/"])[0])
            page = login_page(users=users, next_path=next_path).encode("utf-8")
            await respond(200, page, [html_type])
            return
        if call.method != "POST":
            await refuse(405, "Use GET to see the login form and POST to log in.")
            return
        call.endpoint = "login"
        wait = self.login_limiter.take(call.client)
        if wait is not None:
            seconds = max(1, int(wait + 0.999))
            await refuse(
                429,
                f"Too many login attempts from {call.client}; try again in {seconds} s.",
                (b"retry-after", str(seconds).encode()),
            )
            return
        form = parse_form(body)
        from_page = form.get("form") == "1"
        identity = (
            credentials.login(form.get("username", ""), form.get("password", ""))
            if credentials.enabled
            else None
        )
        if identity is None:
            message = "Wrong user name or password." if users else "Wrong access token."
            if not credentials.enabled:
                message = "This server has no logins; open / directly."
            if from_page:
                retry = login_page(users=users, message=message, next_path=form.get("next", "/"))
                await respond(401, retry.encode("utf-8"), [html_type])
            else:
                await refuse(401, message)
            return
        self.sessions.end(cookie_id)
        session_id = self.sessions.create(identity)
        call.identity = identity
        cookie = (b"set-cookie", cookie_header(session_id, secure=secure))
        if from_page:
            target = safe_next(form.get("next")).encode("latin-1", "replace")
            await respond(303, b"", [(b"location", target), cookie])
        else:  # gradio_client's Client(auth=...) and scripts: 200 with the cookie
            json_type = (b"content-type", b"application/json")
            await respond(200, b'{"success": true}', [json_type, cookie])


class _Responder:
    """Passes the app's response on: adds the security headers and a new session's cookie,
    turns Gradio's "queue full" 503 into the busy answer, and notes the status."""

    def __init__(
        self,
        send: Send,
        call: _Call,
        *,
        rewrite_busy: bool,
        new_session: str | None,
        secure: bool,
    ) -> None:
        self._send = send
        self._call = call
        self._rewrite_busy = rewrite_busy
        self._new_session = new_session
        self._secure = secure
        self._swallow = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            self._call.status = status
            if status == 503 and self._rewrite_busy:
                self._swallow = True
                body = json.dumps({"detail": BUSY}).encode("utf-8")
                await self._send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"retry-after", b"2"),
                            *_SECURITY_HEADERS,
                        ],
                    }
                )
                await self._send({"type": "http.response.body", "body": body})
                return
            headers = [*message.get("headers", []), *_SECURITY_HEADERS]
            if self._new_session is not None:
                cookie = cookie_header(self._new_session, secure=self._secure)
                headers.append((b"set-cookie", cookie))
            message = {**message, "headers": headers}
        elif kind == "http.response.body" and self._swallow:
            return
        elif kind == "websocket.accept":
            self._call.status = 101
        await self._send(message)


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (the last of repeated ones wins)."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


async def _read_body(receive: Receive, cap: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it grows past ``cap`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left; the app will notice on its own receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the real messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _too_large(cap: int) -> str:
    return (
        f"The request body is over {cap // 1024} KiB; a question may be at most 2000 "
        "characters and this app takes no files."
    )


def _challenge() -> tuple[bytes, bytes]:
    return (b"www-authenticate", b'Bearer realm="qa"')


def _quote_next(scope: Scope) -> str:
    from urllib.parse import quote

    path = scope.get("path", "/")
    query = scope.get("query_string", b"").decode("latin-1")
    return quote(path + (f"?{query}" if query else ""), safe="")


def _without_default_port(netloc: str) -> str:
    value = netloc.strip().lower()
    for port in (":80", ":443"):
        if value.endswith(port):
            return value[: -len(port)]
    return value


__all__ = ["BLOCKED", "BUSY", "COOKIE", "Endpoints", "Guard", "RateLimiter"]
