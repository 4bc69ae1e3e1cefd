"""Serve a Gradio Blocks behind :class:`qa.ui.guard.Guard` with uvicorn, bounded.

``demo.launch()`` builds its server itself; here the Blocks are mounted on a FastAPI app
(``gr.mount_gradio_app``) so that the guard sits in front of every route and uvicorn's own
bounds can be set: how many connections at once, how long idle ones stay, how large headers
may be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .guard import ASGIApp, Endpoints, Guard
from .security import AccessSettings

if TYPE_CHECKING:
    import gradio as gr

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds of the server process around the guard."""

    #: Events waiting in Gradio's queue at most; more are answered "busy" at once.
    queue_size: int = 64
    #: Open connections and running requests at most (uvicorn answers 503 beyond).
    max_connections: int = 512
    #: Browser sessions whose state Gradio keeps (least recently used ones go first).
    sessions: int = 500
    #: Addresses whose X-Forwarded-For/-Proto uvicorn believes (a reverse proxy), comma
    #: separated; none by default, so that no client can choose its own address.
    trusted_proxies: str = ""


def endpoints(demo: gr.Blocks, question_fns: Collection[str]) -> Endpoints:
    """The public API of ``demo`` (functions with ``api_visibility="public"``) and the names
    of all its functions, for the guard."""
    names: dict[int, str] = {}
    public: set[int] = set()
    for index, fn in demo.fns.items():
        names[index] = fn.api_name or fn.name or f"fn#{index}"
        if fn.api_visibility == "public" and fn.fn is not None:
            public.add(index)
    return Endpoints(
        public_fns=frozenset(public),
        public_names=frozenset(names[i] for i in public),
        names=names,
        question_fns=frozenset(question_fns),
    )


def guarded_app(
    demo: gr.Blocks,
    settings: AccessSettings,
    *,
    limits: ServerLimits,
    question_fns: Collection[str] = (),
    **mount: Any,
) -> Guard:
    """``demo`` mounted at ``/`` on a FastAPI app, behind the guard (``mount`` goes to
    ``gr.mount_gradio_app``: css, head, footer_links…)."""
    import gradio as gr
    from fastapi import FastAPI

    demo.queue(max_size=limits.queue_size)
    demo.state_session_capacity = limits.sessions
    root = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app = gr.mount_gradio_app(
        root,
        demo,
        path="/",
        # The app takes no files: Gradio refuses any upload above 0 bytes (the guard also
        # closes the upload route).
        max_file_size=0,
        allowed_paths=[],
        **mount,
    )
    asgi: ASGIApp = app
    return Guard(asgi, settings, endpoints(demo, question_fns), waiting=waiting_events(demo))


def waiting_events(demo: gr.Blocks) -> Callable[[str], int]:
    """How many events from one client address wait in ``demo``'s queue.

    Gradio has no public way to ask; this reads its queue (``Event.request`` is the request
    that joined). Should a Gradio release change that, the count is 0 and only the global
    queue bound applies (logged once).
    """
    warned = False

    def waiting(client: str) -> int:
        nonlocal warned
        try:
            queues = demo._queue.event_queue_per_concurrency_id.values()
            return sum(
                1
                for queue in queues
                for event in queue.queue
                if event.request is not None
                and event.request.client is not None
                and event.request.client.host == client
            )
        except AttributeError as exc:
            if not warned:
                warned = True
                logger.warning(
                    "cannot count a client's waiting events (%s); no per-client cap", exc
                )
            return 0

    return waiting


def serve(app: Guard, *, host: str, port: int, limits: ServerLimits) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=5,
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=limits.trusted_proxies or None,
        server_header=False,
        log_level="warning",
        h11_max_incomplete_event_size=16 * 1024,
    )
    uvicorn.Server(config).run()
