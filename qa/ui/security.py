"""Who may use the chat app and how much: credentials, allowed hosts, request bounds.

Everything here is plain data and checks; :mod:`qa.ui.guard` enforces it on every request and
:mod:`qa.ui.serve` runs the app with it. Secrets come from environment variables or files,
never from command-line arguments (they would land in the shell history and ``ps``):

- ``QA_API_TOKEN`` or ``--api-token-file FILE`` (one token a line): bearer tokens for the HTTP
  API (``Authorization: Bearer <token>``); a token also logs in on the login page.
- ``QA_UI_PASSWORD`` (user ``QA_UI_USER``, default ``qa``) or ``--users-file FILE``
  (``user:password`` a line): logins for the chat page.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SettingsError

logger = logging.getLogger(__name__)

#: Shortest accepted bearer token and password: guessing must not be a practical attack.
MIN_TOKEN_CHARS = 16
MIN_PASSWORD_CHARS = 8
#: Request bodies above this are refused before they are read (a question is ≤ 2000
#: characters; the chat's own requests carry no history, see app.py).
MAX_BODY_BYTES = 16 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Bearer tokens (HTTP API) and user logins (chat page); empty means no authentication."""

    tokens: tuple[str, ...] = ()
    users: Mapping[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.users)

    def token_id(self, token: str) -> str | None:
        """A short, non-secret label of a valid token (for the audit log), else ``None``."""
        given = token.encode("utf-8", "surrogateescape")
        found = None
        for known in self.tokens:  # compare with every token: no early exit to time
            if hmac.compare_digest(given, known.encode("utf-8", "surrogateescape")):
                found = known
        return None if found is None else "token:" + _digest(found)[:8]

    def login(self, user: str, password: str) -> str | None:
        """The identity a login form gives: a user with their password, or a token as the
        password (any user name); ``None`` when neither matches."""
        expected = self.users.get(user)
        ok = expected is not None and hmac.compare_digest(
            password.encode("utf-8", "surrogateescape"),
            expected.encode("utf-8", "surrogateescape"),
        )
        if ok:
            return "user:" + user
        return self.token_id(password)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Work requests (questions, page loads, logins) one client may make: ``per_minute`` on
    average, ``burst`` at once. ``per_minute == 0`` turns the limit off."""

    per_minute: int = 120
    burst: int = 30

    def __post_init__(self) -> None:
        if self.per_minute < 0 or self.burst < 1:
            raise SettingsError(
                f"The rate limit must be 0 (off) or more per minute with a burst of at least 1, "
                f"got {self.per_minute}/min, burst {self.burst}."
            )


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """How the app guards itself; built from the command line and environment by app.py."""

    credentials: Credentials = field(default_factory=Credentials)
    #: Host header names accepted (lower case, no port); ``"*"`` accepts any.
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    max_body_bytes: int = MAX_BODY_BYTES
    rate_limit: RateLimit = field(default_factory=RateLimit)
    #: Login attempts per client and minute (brute force).
    login_per_minute: int = 10
    #: Questions one client may have waiting in the queue at once (0: no limit), so that a
    #: flood from one client does not delay everybody else's answers.
    max_waiting_per_client: int = 8
    #: JSON-lines audit log (time, client, identity, endpoint, question length, status).
    audit_log: Path | None = None
    #: Also write the question text into the audit log.
    audit_questions: bool = False


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, credentials: Credentials, *, insecure_no_auth: bool) -> None:
    """Refuse to serve beyond this machine without authentication, unless told explicitly."""
    if is_loopback(host) or credentials.enabled:
        return
    if insecure_no_auth:
        logger.warning(
            "serving on %s WITHOUT authentication (--insecure-no-auth): anyone who can reach "
            "this address can read every seed and rebuild the index",
            host,
        )
        return
    raise SettingsError(
        f"Refusing to serve on {host} without authentication: anyone who can reach it could read "
        "every seed and rebuild the index. Set QA_API_TOKEN and/or QA_UI_PASSWORD (or pass "
        "--api-token-file / --users-file), put a TLS reverse proxy in front (see README, "
        "'Exposing qa on a network'), or pass --insecure-no-auth on a network you trust."
    )


def allowed_hosts(bind_host: str, extra: list[str]) -> frozenset[str]:
    """The Host header names to accept: loopback names, the bound address unless it is a
    wildcard, and ``extra`` (``--allowed-host``; ``*`` accepts any)."""
    names = set(LOOPBACK_NAMES)
    bound = bind_host.strip().strip("[]").lower()
    if bound not in ("0.0.0.0", "::", ""):
        names.add(bound)
    for item in extra:
        for name in item.split(","):
            name = name.strip().lower()
            if name:
                names.add(host_name(name) if name != "*" else "*")
    return frozenset(names)


def host_name(host_header: str) -> str:
    """The name part of a Host header, lower case, without port or IPv6 brackets.

    >>> host_name("[::1]:7860"), host_name("Example.org:443"), host_name("qa")
    ('::1', 'example.org', 'qa')
    """
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _secret_file_lines(path: Path, what: str) -> list[str]:
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"Cannot read the {what} file {path} ({exc}); check the path.") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "the %s file %s can be read by other users (mode %o); run chmod 600 %s",
            what,
            path,
            stat.S_IMODE(info.st_mode),
            path,
        )
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _check_token(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_CHARS:
        raise SettingsError(
            f"The API token from {where} is {len(token)} characters long; use at least "
            f"{MIN_TOKEN_CHARS} random characters, e.g. from `{TOKEN_HINT}`."
        )
    return token


def _check_password(user: str, password: str, where: str) -> None:
    if not user or any(c in user for c in ": \t"):
        raise SettingsError(f"The user name {user!r} from {where} must be a word without ':'.")
    if len(password) < MIN_PASSWORD_CHARS:
        raise SettingsError(
            f"The password of {user!r} from {where} is {len(password)} characters long; use at "
            f"least {MIN_PASSWORD_CHARS}."
        )


def load_credentials(
    env: Mapping[str, str],
    *,
    token_file: str | None = None,
    users_file: str | None = None,
) -> Credentials:
    """Credentials from ``QA_API_TOKEN``, ``QA_UI_USER``/``QA_UI_PASSWORD`` and the two files
    (``QA_API_TOKEN_FILE`` / ``QA_USERS_FILE`` when not given); :class:`SettingsError` names
    a weak or unreadable one."""
    tokens: list[str] = []
    if env.get("QA_API_TOKEN"):
        tokens.append(_check_token(env["QA_API_TOKEN"].strip(), "QA_API_TOKEN"))
    token_file = token_file or env.get("QA_API_TOKEN_FILE")
    if token_file:
        for line in _secret_file_lines(Path(token_file), "API token"):
            tokens.append(_check_token(line, token_file))
    users: dict[str, str] = {}
    if env.get("QA_UI_PASSWORD"):
        user = env.get("QA_UI_USER", "qa").strip()
        _check_password(user, env["QA_UI_PASSWORD"], "QA_UI_PASSWORD")
        users[user] = env["QA_UI_PASSWORD"]
    users_file = users_file or env.get("QA_USERS_FILE")
    if users_file:
        for line in _secret_file_lines(Path(users_file), "users"):
            user, sep, password = line.partition(":")
            if not sep:
                raise SettingsError(
                    f"A line of the users file {users_file} is not 'user:password'; fix it."
                )
            _check_password(user.strip(), password, users_file)
            users[user.strip()] = password
    return Credentials(tokens=tuple(dict.fromkeys(tokens)), users=users)
