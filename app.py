"""The chat app: adapts Gradio 6 to the ``qa`` library (no retrieval logic lives here).

    python app.py [--host 127.0.0.1] [--port 7860] [--seeds seeds] [--index index]

The same options can come from ``QA_HOST``, ``QA_PORT``, ``QA_SEEDS`` and ``QA_INDEX``.
HTTP API (``gradio_client``): ``/answer`` (question, k) -> Answer as JSON, ``/search`` (query, k)
-> passages as JSON, ``/document`` (source) -> one seed document as JSON.
"""

from __future__ import annotations

import os

# An entry point may set the environment: no analytics, no model-hub calls. Before gradio.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import logging
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
from qa.ui.document import document_view, read_document
from qa.ui.render import answer_markdown, source_messages, status_markdown

logger = logging.getLogger("qa.app")

EXAMPLES = [
    "When did Porsche meet Apple?",
    "Wann haben sich Porsche und Apple getroffen?",
    "Who is the chief executive of Porsche?",
    "Wer ist der Finanzvorstand von Porsche?",
]
MAX_K = 20
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

    def answer(self, question: str, k: int) -> qa.Answer:
        return qa.answer(question, k, index_dir=self.index_dir)

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
        self, message: str, history: list[Message], k: float, show_scores: bool
    ) -> Iterator[tuple[list[Message], str]]:
        """Stream the answer into the chat, then add one source panel per citation."""
        question = (message or "").strip()
        if not question:
            raise gr.Error("Type a question about the seeds first.", print_exception=False)
        history = [*history, {"role": "user", "content": question}]
        yield history, ""
        try:
            result = self.answer(question, int(k))
        except Exception as exc:
            raise _error(exc) from None
        final = answer_markdown(result)
        if result.found:
            for piece in _pieces(result.text):
                yield [*history, {"role": "assistant", "content": piece}], ""
                time.sleep(STREAM_PAUSE)
        reply = [{"role": "assistant", "content": final}]
        yield [*history, *reply, *source_messages(result, show_scores=show_scores)], ""

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
            span = (int(span_start), int(span_end))
        try:
            html = document_view(
                self.seeds_dir,
                self.index_dir,
                source,
                int(start or 0),
                int(end or 0),
                span,
                None if page is None else int(page),
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

    def api_answer(self, question: str, k: int = DEFAULT_K) -> dict[str, Any]:
        """Answer a question from the seeds; the Answer as JSON (text, found, citations…)."""
        try:
            return asdict(self.answer(question, int(k)))
        except Exception as exc:
            raise _error(exc) from None

    def api_search(self, query: str, k: int = DEFAULT_K) -> list[dict[str, Any]]:
        """The k best passages for a query, as JSON (text, source, start, end, score…)."""
        try:
            return [asdict(p) for p in qa.retrieve(query, int(k), index_dir=self.index_dir)]
        except Exception as exc:
            raise _error(exc) from None

    def api_document(self, source: str) -> dict[str, Any]:
        """One seed document (only files inside the seeds folder) as JSON."""
        try:
            return asdict(read_document(self.seeds_dir, self.index_dir, source))
        except Exception as exc:
            raise _error(exc) from None


def build_demo(seeds_dir: str | os.PathLike[str], index_dir: str | os.PathLike[str]) -> gr.Blocks:
    """The Gradio Blocks of the chat over ``index_dir`` (documents shown from ``seeds_dir``)."""
    app = QAApp(Path(seeds_dir), Path(index_dir))
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

        chat_inputs = [question, chatbot, k, show_scores]
        private: dict[str, Any] = {"api_visibility": "private", "concurrency_id": "chat"}
        gr.on(
            [question.submit, ask.click],
            app.respond,
            chat_inputs,
            [chatbot, question],
            show_progress="hidden",
            concurrency_limit=4,
            **private,
        )
        examples.click(
            lambda sample: sample[0], examples, question, queue=False, api_visibility="private"
        ).then(app.respond, chat_inputs, [chatbot, question], show_progress="hidden", **private)
        clear.click(
            lambda: ([], gr.Sidebar(open=False)),
            None,
            [chatbot, sidebar],
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
    parser = argparse.ArgumentParser(description="Chat with the seed documents in a browser.")
    parser.add_argument("--host", default=env.get("QA_HOST", "127.0.0.1"), help="bind address")
    parser.add_argument("--port", type=int, default=int(env.get("QA_PORT", "7860")))
    parser.add_argument("--seeds", default=env.get("QA_SEEDS", DEFAULT_SEEDS_DIR))
    parser.add_argument("--index", default=env.get("QA_INDEX", DEFAULT_INDEX_DIR))
    return parser.parse_args(argv)


def prepare_index(seeds_dir: str, index_dir: str) -> None:
    """Build the index when it is missing or stale; keep a usable old one if that fails."""
    reason = qa.needs_build(seeds_dir, index_dir)
    if reason is None:
        return
    logger.warning("building the index (%s)…", reason)
    try:
        stats = qa.build_index(seeds_dir, index_dir)
    except qa.QAError as exc:
        if not reason.kind.index_usable:
            raise
        logger.warning("rebuild failed, serving the previous index: %s", exc)
        return
    logger.warning(
        "index ready: %d documents, %d chunks in %.1f s",
        stats.documents,
        stats.chunks,
        stats.seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        prepare_index(args.seeds, args.index)
        qa.cached_retriever(args.index)  # load once now: the first question is answered warm
    except qa.QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    demo = build_demo(args.seeds, args.index)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        css=ui.css(),
        head=ui.head(),
        footer_links=["api"],
        show_error=True,
        quiet=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
