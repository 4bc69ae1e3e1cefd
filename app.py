"""The chat app: adapts Gradio 6 to the ``qa`` library (no retrieval logic lives here).

    python app.py [--host 127.0.0.1] [--port 7860] [--seeds seeds] [--index index]

The same options can come from ``QA_HOST``, ``QA_PORT``, ``QA_SEEDS`` and ``QA_INDEX``.
HTTP API (``gradio_client``): ``/answer`` (question, k) -> Answer as JSON, ``/search`` (query, k)
-> passages as JSON, ``/document`` (source) -> one seed document as JSON.

Authentication, allowed hosts, request bounds and the audit log live in ``qa.ui.security`` /
``qa.ui.guard`` (see README, "Exposing qa on a network"); secrets come from the environment
(``QA_API_TOKEN``, ``QA_UI_PASSWORD``) or files, never from the command line.
"""

from __future__ import annotations

import os

# An entry point may set the environment: no analytics, no model-hub calls. Before gradio.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import logging
import math
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import api as gr_api

import qa
from qa import ui
from qa.config import DEFAULT_INDEX_DIR, DEFAULT_K, DEFAULT_SEEDS_DIR
from qa.formatting import describe
from qa.search.query import parse_k
from qa.ui.document import document_view, read_document
from qa.ui.render import (
    answer_markdown,
    plain_markdown,
    reading_markdown,
    source_messages,
    status_markdown,
)
from qa.ui.security import AccessSettings, RateLimit, allowed_hosts, check_bind, load_credentials
from qa.ui.serve import ServerLimits, guarded_app, serve

logger = logging.getLogger("qa.app")

EXAMPLES = [
    "When did Porsche meet Apple?",
    "Wann haben sich Porsche und Apple getroffen?",
    "Who is the chief executive of Porsche?",
    "Wer ist der Finanzvorstand von Porsche?",
]
MAX_K = 20  # the slider's end; the library accepts up to qa.config.MAX_K
#: The chat keeps this many messages of a conversation on the server (a question, its answer
#: and its source panels are 3-5 messages).
MAX_HISTORY = 200
#: Pause between streamed pieces of an answer: long enough to be seen, short enough not to wait.
STREAM_PAUSE = 0.015

Message = dict[str, Any]


def _error(exc: Exception) -> gr.Error:
    """A short message for the page; the traceback goes to the server log only."""
    if isinstance(exc, qa.QAError):
        return gr.Error(str(exc), print_exception=False)
    logger.exception("unexpected error")
    return gr.Error(
        f"Something went wrong ({type(exc).__name__}); the server log has the details.",
        print_exception=False,
    )


def _offset(value: object) -> int:
    """A character offset from the page (a number, maybe a float); 0 when it is none."""
    if isinstance(value, int | float) and math.isfinite(value):
        return max(0, int(value))
    return 0


def _page(value: object) -> int | None:
    """A page number from the page (a number, maybe a float), or ``None`` for the cited one."""
    if isinstance(value, int | float) and math.isfinite(value):
        return int(value)
    return None


def _pieces(text: str, n: int = 8) -> Iterator[str]:
    """Growing prefixes of ``text``, cut at word boundaries, ending with the whole text."""
    cuts = [m.end() for m in re.finditer(r"\S+\s*", text)]
    step = max(1, len(cuts) // n)
    for i in range(step - 1, len(cuts) - 1, step):
        yield text[: cuts[i]]
    yield text


class QAApp:
    """The app's state: where the seeds and index are, and the rebuild in progress if any."""

    def __init__(self, seeds_dir: Path, index_dir: Path) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        self._build_lock = threading.Lock()
        self.build_note: str | None = None  # what the running rebuild is doing

    # -- library calls -------------------------------------------------------------------

    def answer(self, question: str, k: int, reader: qa.config.Reader = "onnx") -> qa.Answer:
        return qa.answer(question, k, index_dir=self.index_dir, reader=reader)

    def status(self) -> str:
        try:
            line = status_markdown(qa.index_info(self.index_dir, self.seeds_dir))
        except qa.QAError as exc:
            line = f"⚠ {exc}"
        if self.build_note:
            line += f"  \n↻ {self.build_note}"
        return line

    # -- Gradio event handlers -----------------------------------------------------------

    def respond(
        self,
        message: str,
        history: list[Message] | None,
        k: float,
        show_scores: bool,
        use_reader: bool = True,
    ) -> Iterator[tuple[list[Message], str, list[Message]]]:
        """Stream the answer into the chat, then add one source panel per citation.

        The conversation lives in the session's server-side state (``history``), not in the
        request: a question's request stays a few hundred bytes however long the chat grows.
        Yields the chat, the cleared question box and the new state. With the reader on, a
        "reading" note naming the passages comes first: retrieval takes milliseconds, the
        reader a few hundred.
        """
        question = message.strip() if isinstance(message, str) else ""
        if not question:
            raise gr.Error("Type a question about the seeds first.", print_exception=False)
        try:
            passages = parse_k(k)
        except qa.QAError as exc:
            raise _error(exc) from None
        earlier = list(history or [])[-MAX_HISTORY:]
        # The asker's own words are shown as text: no Markdown, links or HTML of theirs.
        chat = [*earlier, {"role": "user", "content": plain_markdown(question)}]
        yield chat, "", chat
        try:
            retriever = qa.cached_retriever(self.index_dir)
            evidence = retriever.evidence(question, passages)
            if use_reader and evidence.passages:
                note = {"role": "assistant", "content": reading_markdown(evidence.ranked)}
                yield [*chat, note], "", chat
            result = retriever.answer_from(evidence, reader="onnx" if use_reader else "none")
        except Exception as exc:
            raise _error(exc) from None
        final = answer_markdown(result)
        if result.found:
            for piece in _pieces(result.text):
                partial = [*chat, {"role": "assistant", "content": plain_markdown(piece)}]
                yield partial, "", chat
                time.sleep(STREAM_PAUSE)
        reply = [{"role": "assistant", "content": final}]
        done = [*chat, *reply, *source_messages(result, show_scores=show_scores)]
        yield done, "", done

    def open_document(
        self,
        source: str,
        start: float,
        end: float,
        span_start: float | None = None,
        span_end: float | None = None,
        page: float | None = None,
    ) -> tuple[str, Any]:
        """The document for the side panel, the cited range marked and the answer span in it
        bold (a PDF: the page as an image, highlighted); opens the panel."""
        span = None
        if span_start is not None and span_end is not None:
            span = (_offset(span_start), _offset(span_end))
        try:
            html = document_view(
                self.seeds_dir,
                self.index_dir,
                source,
                _offset(start),
                _offset(end),
                span,
                _page(page),
            )
        except Exception as exc:
            raise _error(exc) from None
        return html, gr.Sidebar(open=True)

    def rebuild(self) -> Iterator[tuple[str, Any]]:
        """Rebuild the index, streaming progress into the status line; questions keep being
        answered from the previous version until the new one is published."""
        if not self._build_lock.acquire(blocking=False):
            raise gr.Error("A rebuild is already running.", print_exception=False)
        try:
            yield from self._rebuild()
        finally:
            self.build_note = None
            self._build_lock.release()

    def rebuild_in_background(self) -> threading.Thread | None:
        """Start a rebuild without waiting for it (at start, when the seeds changed): the
        current index keeps answering until the new one is published. ``None`` when a rebuild
        is already running."""
        if not self._build_lock.acquire(blocking=False):
            return None

        def work() -> None:
            try:
                for _ in self._rebuild():
                    pass
            except gr.Error as exc:
                logger.warning("rebuild failed, serving the previous index: %s", exc.message)
            finally:
                self.build_note = None
                self._build_lock.release()

        thread = threading.Thread(target=work, name="qa-background-rebuild", daemon=True)
        thread.start()
        return thread

    def _rebuild(self) -> Iterator[tuple[str, Any]]:
        updates: queue.Queue[qa.BuildProgress] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["stats"] = qa.build_index(
                    self.seeds_dir, self.index_dir, progress=updates.put, lock_timeout=0
                )
            except Exception as exc:  # reported to the page below
                outcome["error"] = exc

        self.build_note = "Rebuilding: reading the seeds…"
        yield self.status(), gr.Button(interactive=False, value="Rebuilding…")
        worker = threading.Thread(target=work, name="qa-rebuild", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(timeout=0.25)
            latest = None
            while not updates.empty():
                latest = updates.get_nowait()
            if latest is not None:
                pct = 100 * latest.chunks_done / max(1, latest.chunks_total)
                self.build_note = (
                    f"Rebuilding: embedded {latest.chunks_done}/{latest.chunks_total} "
                    f"chunks ({pct:.0f}%)"
                )
                yield self.status(), gr.Button(interactive=False, value=f"Rebuilding {pct:.0f}%")
        if "error" in outcome:
            self.build_note = None
            raise _error(outcome["error"])
        stats: qa.IndexStats = outcome["stats"]
        qa.cached_retriever(self.index_dir)  # load the new version now, not at the next question
        self.build_note = None
        done = f"  \n✓ Rebuilt in {stats.seconds:.1f} s: {describe(stats, seconds=False)}."
        yield self.status() + done, gr.Button(interactive=True, value="Rebuild index")

    # -- HTTP API ------------------------------------------------------------------------

    def api_answer(self, question: str, k: int = DEFAULT_K, reader: str = "onnx") -> dict[str, Any]:
        """Answer a question from the seeds; the Answer as JSON (text, found, citations…).

        ``reader``: ``onnx`` (the reader model finds the answer span) or ``none``.
        """
        try:
            if reader not in qa.config.READERS:
                raise qa.InvalidQueryError(
                    f"reader must be one of {', '.join(qa.config.READERS)}, got {reader!r}."
                )
            return asdict(self.answer(question, parse_k(k), reader))
        except Exception as exc:
            raise _error(exc) from None

    def api_search(self, query: str, k: int = DEFAULT_K) -> list[dict[str, Any]]:
        """The k best passages for a query, as JSON (text, source, start, end, score…)."""
        try:
            return [asdict(p) for p in qa.retrieve(query, parse_k(k), index_dir=self.index_dir)]
        except Exception as exc:
            raise _error(exc) from None

    def api_document(self, source: str) -> dict[str, Any]:
        """One seed document (only files inside the seeds folder) as JSON."""
        try:
            return asdict(read_document(self.seeds_dir, self.index_dir, source))
        except Exception as exc:
            raise _error(exc) from None


def build_demo(
    seeds_dir: str | os.PathLike[str],
    index_dir: str | os.PathLike[str],
    *,
    app: QAApp | None = None,
) -> gr.Blocks:
    """The Gradio Blocks of the chat over ``index_dir`` (documents shown from ``seeds_dir``)."""
    app = app or QAApp(Path(seeds_dir), Path(index_dir))
    demo: gr.Blocks
    with gr.Blocks(title="qa — ask the seeds") as demo:
        with gr.Sidebar(label="Document", open=False, position="right", width=460) as sidebar:
            doc_view = gr.HTML(
                "<p>Open a source to read the whole document here.</p>",
                elem_id="qa-doc",
                js_on_load=None,
            )
        with gr.Row(equal_height=True, elem_classes="qa-header"):
            gr.Markdown("# Ask the seeds", elem_classes="qa-header")
            theme = gr.Button("◐ Theme", size="sm", scale=0, min_width=90, elem_id="qa-theme")
        status = gr.Markdown(app.status(), elem_id="qa-status")
        chatbot = gr.Chatbot(
            elem_id="qa-chat",
            label="Answers with their sources",
            height=560,
            buttons=["copy", "copy_all"],
            feedback_options=None,
            latex_delimiters=[],  # seed text and questions are shown, never typeset
            placeholder="Ask a question about the seed documents. Every answer quotes and "
            "cites the sentence it rests on; open a source to see it in its document.",
            layout="panel",
        )
        with gr.Row(equal_height=True):
            question = gr.Textbox(
                placeholder="Ask a question, e.g. When did Porsche meet Apple?",
                show_label=False,
                scale=5,
                autofocus=True,
                submit_btn=False,
                elem_id="qa-question",
            )
            ask = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="qa-ask")
        examples = gr.Dataset(
            components=[question],
            samples=[[e] for e in EXAMPLES],
            label="Examples",
            elem_id="qa-examples",
        )
        with gr.Row():
            clear = gr.Button("Clear conversation", size="sm", elem_id="qa-clear")
            rebuild = gr.Button("Rebuild index", size="sm", elem_id="qa-rebuild")
        with gr.Accordion("Settings", open=False, elem_id="qa-settings"):
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages (k)")
            use_reader = gr.Checkbox(
                True,
                label="Read the passages with the reader model (off: quote the best sentence)",
                elem_id="qa-use-reader",
            )
            show_scores = gr.Checkbox(False, label="Show scores", elem_id="qa-show-scores")
        with gr.Row(elem_id="qa-hidden"):
            doc_source = gr.Textbox(visible="hidden")
            doc_start = gr.Number(visible="hidden", precision=0)
            doc_end = gr.Number(visible="hidden", precision=0)
            doc_span_start = gr.Number(visible="hidden", precision=0)
            doc_span_end = gr.Number(visible="hidden", precision=0)
            doc_page = gr.Number(visible="hidden", precision=0)
            open_doc = gr.Button("open", visible="hidden", elem_id="qa-open-doc")
        timer = gr.Timer(20)
        history = gr.State([])  # the conversation, kept per session on the server

        chat_inputs = [question, history, k, show_scores, use_reader]
        chat_outputs = [chatbot, question, history]
        private: dict[str, Any] = {"api_visibility": "private", "concurrency_id": "chat"}
        gr.on(
            [question.submit, ask.click],
            app.respond,
            chat_inputs,
            chat_outputs,
            show_progress="hidden",
            concurrency_limit=4,
            **private,
        )
        examples.click(
            lambda sample: sample[0], examples, question, queue=False, api_visibility="private"
        ).then(app.respond, chat_inputs, chat_outputs, show_progress="hidden", **private)
        clear.click(
            lambda: ([], [], gr.Sidebar(open=False)),
            None,
            [chatbot, history, sidebar],
            queue=False,
            api_visibility="private",
        )
        open_doc.click(
            app.open_document,
            [doc_source, doc_start, doc_end, doc_span_start, doc_span_end, doc_page],
            [doc_view, sidebar],
            js=ui.OPEN_DOC_JS,
            show_progress="hidden",
            **private,
        ).then(None, js=ui.SCROLL_DOC_JS)
        rebuild.click(
            app.rebuild,
            None,
            [status, rebuild],
            show_progress="minimal",
            concurrency_limit=1,
            concurrency_id="rebuild",
            api_visibility="private",
        )
        timer.tick(app.status, None, status, show_progress="hidden", api_visibility="private")
        demo.load(app.status, None, status, show_progress="hidden", api_visibility="private")
        theme.click(None, js=ui.THEME_JS)

        gr_api(app.api_answer, api_name="answer", concurrency_limit=4, concurrency_id="chat")
        gr_api(app.api_search, api_name="search", concurrency_limit=4, concurrency_id="chat")
        gr_api(app.api_document, api_name="document", concurrency_limit=4, concurrency_id="chat")
    return demo


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        description="Chat with the seed documents in a browser.",
        epilog="Secrets are read from the environment (QA_API_TOKEN, QA_UI_PASSWORD, "
        "QA_UI_USER) or from files, never from the command line.",
    )
    parser.add_argument("--host", default=env.get("QA_HOST", "127.0.0.1"), help="bind address")
    parser.add_argument("--port", type=int, default=int(env.get("QA_PORT", "7860")))
    parser.add_argument("--seeds", default=env.get("QA_SEEDS", DEFAULT_SEEDS_DIR))
    parser.add_argument("--index", default=env.get("QA_INDEX", DEFAULT_INDEX_DIR))
    group = parser.add_argument_group("access (see README, 'Exposing qa on a network')")
    group.add_argument(
        "--api-token-file",
        metavar="FILE",
        help="bearer tokens for the HTTP API, one a line (or QA_API_TOKEN / QA_API_TOKEN_FILE)",
    )
    group.add_argument(
        "--users-file",
        metavar="FILE",
        help="chat logins, 'user:password' a line (or QA_UI_PASSWORD / QA_USERS_FILE)",
    )
    group.add_argument(
        "--allowed-host",
        action="append",
        default=[h for h in env.get("QA_ALLOWED_HOSTS", "").split(",") if h],
        metavar="NAME",
        help="a Host name clients use to reach the app (repeatable; loopback names always)",
    )
    group.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback address without authentication (trusted networks only)",
    )
    group.add_argument(
        "--trusted-proxy",
        default=env.get("QA_TRUSTED_PROXY", ""),
        metavar="ADDR",
        help="address of a reverse proxy whose X-Forwarded-For/-Proto headers are believed",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--rate-limit",
        type=int,
        default=int(env.get("QA_RATE_LIMIT", str(RateLimit().per_minute))),
        metavar="N",
        help=f"questions and page loads per client and minute (0: off; default "
        f"{RateLimit().per_minute}, bursts of {RateLimit().burst})",
    )
    limits.add_argument(
        "--queue-size",
        type=int,
        default=int(env.get("QA_QUEUE_SIZE", str(ServerLimits().queue_size))),
        metavar="N",
        help=f"questions waiting at most; more are answered 'busy' (default "
        f"{ServerLimits().queue_size})",
    )
    limits.add_argument(
        "--client-queue",
        type=int,
        default=int(env.get("QA_CLIENT_QUEUE", str(AccessSettings().max_waiting_per_client))),
        metavar="N",
        help=f"questions one client may have waiting; more get 429 (0: no cap; default "
        f"{AccessSettings().max_waiting_per_client})",
    )
    limits.add_argument(
        "--audit-log",
        default=env.get("QA_AUDIT_LOG"),
        metavar="FILE",
        help="append one JSON line per request (time, client, question length, status)",
    )
    limits.add_argument(
        "--audit-questions",
        action="store_true",
        help="also write the questions' text into the audit log",
    )
    return parser.parse_args(argv)


def prepare_index(seeds_dir: str, index_dir: str) -> bool:
    """Build the index before serving only when there is none that can serve; return whether
    a rebuild should run in the background (the seeds or settings changed)."""
    reason = qa.needs_build(seeds_dir, index_dir)
    if reason is None:
        return False
    if reason.kind.index_usable:
        logger.warning("serving the current index; rebuilding in the background (%s)", reason)
        return True
    logger.warning("building the index before serving (%s)…", reason)
    stats = qa.build_index(seeds_dir, index_dir)
    logger.warning(
        "index ready: %d documents, %d chunks in %.1f s",
        stats.documents,
        stats.chunks,
        stats.seconds,
    )
    return False


def access_settings(args: argparse.Namespace) -> AccessSettings:
    """The guard's settings from the command line and the environment."""
    credentials = load_credentials(
        os.environ, token_file=args.api_token_file, users_file=args.users_file
    )
    check_bind(args.host, credentials, insecure_no_auth=args.insecure_no_auth)
    per_minute = args.rate_limit
    return AccessSettings(
        credentials=credentials,
        allowed_hosts=allowed_hosts(args.host, args.allowed_host),
        rate_limit=RateLimit(per_minute=per_minute, burst=max(1, min(30, per_minute or 30))),
        max_waiting_per_client=max(0, args.client_queue),
        audit_log=Path(args.audit_log) if args.audit_log else None,
        audit_questions=args.audit_questions,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = access_settings(args)
        rebuild_later = prepare_index(args.seeds, args.index)
        qa.cached_retriever(args.index)  # load once now: the first question is answered warm
    except qa.QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = QAApp(Path(args.seeds), Path(args.index))
    demo = build_demo(args.seeds, args.index, app=app)
    if rebuild_later:
        app.rebuild_in_background()
    limits = ServerLimits(queue_size=args.queue_size, trusted_proxies=args.trusted_proxy)
    guarded = guarded_app(
        demo,
        settings,
        limits=limits,
        question_fns=("answer", "search", "respond"),
        css=ui.css(),
        head=ui.head(),
        footer_links=["api"],
        show_error=True,
    )
    print(f"* Running on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    serve(guarded, host=args.host, port=args.port, limits=limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
