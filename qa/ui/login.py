"""Sessions of the chat page and its login form (used by :mod:`qa.ui.guard`).

A session is a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie. With logins
configured, only the login form creates one; without, loading the chat page does (an
anonymous session), so that the page's own actions (Rebuild, the status line, the side panel)
can be told apart from requests that did not come from the page.
"""

from __future__ import annotations

import html
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qs

COOKIE = "qa_session"
#: A session ends after this long without a request (the open page polls every 20 s).
IDLE_SECONDS = 12 * 3600
#: At most this many sessions are kept; the least recently used goes first.
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class Session:
    identity: str  # "user:NAME", "token:XXXXXXXX" or "anonymous"
    last_seen: float


class SessionStore:
    """Sessions by id, bounded in number and idle time (one event loop uses it)."""

    def __init__(self, *, max_sessions: int = MAX_SESSIONS, idle: float = IDLE_SECONDS) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._max = max_sessions
        self._idle = idle

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, identity: str) -> str:
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(identity, time.monotonic())
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        now = time.monotonic()
        if session is None or now - session.last_seen > self._idle:
            self._sessions.pop(session_id, None)
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)


def cookie_header(session_id: str, *, secure: bool, max_age: int | None = None) -> bytes:
    parts = [f"{COOKIE}={session_id}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode("latin-1")


def read_cookie(cookie_header_value: str) -> str | None:
    """The session id in a ``Cookie`` header, if any."""
    for part in cookie_header_value.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def parse_form(body: bytes) -> dict[str, str]:
    """An urlencoded form's fields (first value of each); undecodable bytes are replaced."""
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no ``//host`` or URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def login_page(*, users: bool, message: str = "", next_path: str = "/") -> str:
    """The login form: user name and password, or only the access token when no users exist."""
    note = f"<p class='msg' role='alert'>{html.escape(message)}</p>" if message else ""
    user_field = (
        "<label>User name<input name='username' autocomplete='username' required></label>"
        if users
        else "<input type='hidden' name='username' value=''>"
    )
    secret = "Password" if users else "Access token"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qa — log in</title>
<style>
body {{ font-family: system-ui, sans-serif; display: grid; place-items: center;
       min-height: 100vh; margin: 0; background: #f6f7f9; color: #1f2328; }}
form {{ background: #fff; padding: 2rem; border-radius: 12px; width: min(22rem, 90vw);
        box-shadow: 0 2px 12px rgba(0,0,0,.08); display: grid; gap: 1rem; }}
label {{ display: grid; gap: .3rem; font-size: .9rem; }}
input {{ font: inherit; padding: .5rem; border: 1px solid #c9ced6; border-radius: 6px; }}
button {{ font: inherit; padding: .6rem; border: 0; border-radius: 6px; background: #2563eb;
          color: #fff; cursor: pointer; }}
.msg {{ color: #b42318; margin: 0; }}
@media (prefers-color-scheme: dark) {{
  body {{ background: #0d1117; color: #e6edf3; }} form {{ background: #161b22; }}
  input {{ background: #0d1117; color: inherit; border-color: #30363d; }} }}
</style></head>
<body><form method="post" action="/login">
<h1 style="margin:0;font-size:1.3rem">Ask the seeds</h1>
{note}{user_field}
<label>{secret}<input name="password" type="password" autocomplete="current-password"
 required></label>
<input type="hidden" name="next" value="{html.escape(safe_next(next_path))}">
<input type="hidden" name="form" value="1">
<button type="submit">Log in</button>
</form></body></html>
"""
