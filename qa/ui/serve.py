"""Serve a Gradio Blocks behind :class:`qa.ui.guard.Guard` with uvicorn, bounded.

``demo.launch()`` builds its server itself; here the Blocks are mounted on a FastAPI app
(``gr.mount_gradio_app``) so that the guard sits in front of every route and uvicorn's own
bounds can be set: how many connections at once, how long idle ones stay, how large headers
may be.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .guard import ASGIApp, Endpoints, Guard
from .security import AccessSettings

if TYPE_CHECKING:
    import gradio as gr


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds of the server process around the guard."""

    #: Events waiting in Gradio's queue at most; more are answered "busy" at once.
    queue_size: int = 64
    #: Open connections and running requests at most (uvicorn answers 503 beyond).
    max_connections: int = 512
    #: Browser sessions whose state Gradio keeps (least recently used ones go first).
    sessions: int = 500
    #: Addresses whose X-Forwarded-For/-Proto uvicorn believes (a reverse proxy here).
    trusted_proxies: str = "127.0.0.1"


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
    return Guard(asgi, settings, endpoints(demo, question_fns))


def serve(app: Guard, *, host: str, port: int, limits: ServerLimits) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=5,
        proxy_headers=True,
        forwarded_allow_ips=limits.trusted_proxies,
        server_header=False,
        log_level="warning",
        h11_max_incomplete_event_size=16 * 1024,
    )
    uvicorn.Server(config).run()
