"""The optional audit log: one JSON line per request that did work or was refused.

Each line holds the time, the client address, who it was (``user:NAME``, ``token:XXXXXXXX``
— a hash prefix, never the token —, ``anonymous`` or ``-``), the method, path and endpoint,
the question's length, the HTTP status and the duration. The question text itself only when
asked for (``--audit-questions``): questions can be personal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class AuditedCall(Protocol):
    method: str
    path: str
    client: str
    identity: str
    endpoint: str | None
    question: str | None
    status: int


class AuditLog:
    """Appends audit lines to ``path`` (created owner-only); does nothing without a path."""

    def __init__(self, path: Path | None, *, questions: bool = False) -> None:
        self._questions = questions
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is not None:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, call: AuditedCall, seconds: float) -> None:
        if self._fd is None:
            return
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "client": call.client,
            "identity": call.identity,
            "method": call.method,
            "path": call.path[:200],
            "endpoint": call.endpoint,
            "question_chars": None if call.question is None else len(call.question),
            "status": call.status,
            "ms": round(seconds * 1000, 1),
        }
        if self._questions and call.question is not None:
            record["question"] = call.question
        line = json.dumps(record, ensure_ascii=True) + "\n"
        try:
            with self._lock:
                os.write(self._fd, line.encode("ascii"))
        except OSError as exc:  # a full disk must not stop the answers
            logger.warning("cannot write the audit log: %s", exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
