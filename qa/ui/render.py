"""Chat rendering: answers, source panels, the document view and the status line as HTML.

The CSS classes and the "Open in document" button written here are styled and handled by
``chat.css`` and ``chat.js`` beside this module (see :func:`assets`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..types import Answer, Citation, Document, IndexInfo, Passage, Span

Message = dict[str, Any]


def highlight(passage_text: str, passage_start: int, citation: Citation) -> str:
    """HTML of the passage with the cited sentence in ``<mark>`` and the span in ``<b>``."""
    return _mark(passage_text, passage_start, citation.start, citation.end, _range(citation.span))


#: Every ASCII punctuation character Markdown could read as syntax is backslash-escaped
#: (CommonMark shows an escaped punctuation character as itself), and ``&<>`` become entities:
#: text from a question or a seed can then neither emphasise, nor link (``[x](url)``,
#: ``https://…``, ``www.…``, ``a@b.c``), nor embed HTML such as ``<img>``.
_MD_PLAIN = str.maketrans(
    {
        **{c: "\\" + c for c in "\\`*_~[](){}#+-.!|:@=$^"},
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
    }
)


def plain_markdown(text: str) -> str:
    r"""``text`` as a Markdown message that renders as exactly that text.

    >>> plain_markdown("a*b [x](u) <img>")
    'a\\*b \\[x\\]\\(u\\) &lt;img&gt;'
    """
    return text.translate(_MD_PLAIN)


_inline = plain_markdown


def _range(span: Span | None) -> tuple[int, int] | None:
    return (span.start, span.end) if span else None


def _mark(text: str, text_start: int, start: int, end: int, span: tuple[int, int] | None) -> str:
    """HTML of ``text`` (at file offset ``text_start``) with ``[start, end)`` in ``<mark>``.

    The span (file offsets), when it lies inside the marked range, is wrapped in
    ``<b class='qa-span'>``.
    """
    s = max(0, start - text_start)
    e = min(len(text), end - text_start)
    if s >= e:
        return html.escape(text)
    sentence = text[s:e]
    inner = html.escape(sentence)
    if span is not None:
        a, b = span[0] - text_start - s, span[1] - text_start - s
        if 0 <= a < b <= len(sentence):
            inner = (
                html.escape(sentence[:a])
                + "<b class='qa-span'>"
                + html.escape(sentence[a:b])
                + "</b>"
                + html.escape(sentence[b:])
            )
    return html.escape(text[:s]) + f"<mark class='qa-cited'>{inner}</mark>" + html.escape(text[e:])


def _byline(date: str | None, authors: Sequence[str]) -> list[str]:
    parts = []
    if date:
        parts.append(date)
    if authors:
        parts.append(", ".join(authors))
    return parts


def answer_markdown(answer: Answer) -> str:
    """The chat message for an answer: the direct answer in bold, then the quotes with ``[n]``.

    When the seeds do not answer, a distinct notice that says so (the closest passages follow
    as their own panels).
    """
    if not answer.found:
        return (
            "<div class='qa-notfound'><strong>⚠ "
            + html.escape(answer.text)
            + "</strong><br>The closest passages are below; none is close enough to quote.</div>"
        )
    text = answer.text
    if answer.direct and text.startswith(answer.direct):
        return f"**{_inline(answer.direct)}**{_inline(text[len(answer.direct) :])}"
    return _inline(text)


def reading_markdown(passages: Sequence[Passage]) -> str:
    """The note shown while the reader reads: how many passages, from which documents."""
    sources = list(dict.fromkeys(p.source for p in passages))
    names = ", ".join(f"<code>{html.escape(s)}</code>" for s in sources[:3])
    more = f" and {len(sources) - 3} more" if len(sources) > 3 else ""
    return f"<div class='qa-reading'>Reading the best passages of {names}{more}…</div>"


def source_title(label: str, passage: Passage) -> str:
    """The one-line title of a source panel: ``[1] file · date · authors``."""
    return " · ".join([f"{label} {passage.source}", *_byline(passage.date, passage.authors)])


def source_html(passage: Passage, citation: Citation | None, *, show_score: bool = False) -> str:
    """A source panel: file and metadata, the passage with the cited sentence marked, and a
    button (``.qa-open``, its ``value`` the JSON ``[source, start, end, span start, span end]``,
    the span's offsets ``null`` without a span) to open the document there.

    Kept on one line without blank lines, so Markdown leaves the HTML alone.
    """
    start, end = (citation.start, citation.end) if citation else (passage.start, passage.end)
    span = citation.span if citation else None
    body = (
        _mark(passage.text, passage.start, citation.start, citation.end, _range(span))
        if citation
        else html.escape(passage.text)
    )
    # File, date and authors are in the panel's title; the body adds where and how well.
    meta = [f"<code>{html.escape(passage.source)}</code> characters {start}–{end}"]
    if show_score:
        scores = [f"similarity {passage.dense_score:.3f}", f"fused {passage.score:.4f}"]
        if citation:
            scores.append(f"sentence {citation.score:.3f}")
        meta.append("<span class='qa-score'>" + ", ".join(scores) + "</span>")
    # Chatbot sanitising drops data-* attributes but keeps ``value`` and ``title``.
    where = [passage.source, start, end, span.start if span else None, span.end if span else None]
    target = html.escape(json.dumps(where, ensure_ascii=False))
    button = (
        f"<button class='qa-open' type='button' value='{target}' "
        f"title='Show this place in {html.escape(passage.source)}'>Open in document ↗</button>"
    )
    text = body.strip().replace("\r", "").replace("\n", "<br>")
    return (
        "<div class='qa-source'>"
        f"<div class='qa-meta'>{' · '.join(meta)}</div>"
        f"<div class='qa-passage'>{text}</div>"
        f"<div class='qa-actions'>{button}</div>"
        "</div>"
    )


def document_html(
    document: Document, start: int, end: int, span: tuple[int, int] | None = None
) -> str:
    """The whole document for the side panel, the range ``[start, end)`` marked with the id
    ``qa-doc-mark`` so the page can scroll to it, and the answer span ``(start, end)`` inside
    it in bold. Offsets are file offsets."""
    head = [f"<div class='qa-doc-title'>{html.escape(document.source)}</div>"]
    byline = _byline(document.date, document.authors)
    if byline:
        head.append(f"<div class='qa-doc-byline'>{html.escape(' · '.join(byline))}</div>")
    body = _mark(document.body, document.body_start, start, end, span).replace(
        "<mark class='qa-cited'>", "<mark class='qa-cited' id='qa-doc-mark'>", 1
    )
    return (
        "<div class='qa-doc'>"
        f"<div class='qa-doc-head'>{''.join(head)}</div>"
        f"<div class='qa-doc-text'>{body}</div>"
        "</div>"
    )


def _when(built_at: str) -> str:
    try:
        moment = datetime.fromisoformat(built_at)
    except ValueError:
        return built_at or "unknown time"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def status_markdown(info: IndexInfo) -> str:
    """The status line: documents, chunks, embedder, build time, and a warning when stale."""
    line = (
        f"**{info.documents}** documents · **{info.chunks}** chunks · "
        f"embedder `{info.embedder}` · built {_when(info.built_at)}"
    )
    if info.stale:
        counts = [
            f"{len(names)} {label}"
            for label, names in (
                ("added", info.seeds_added),
                ("changed", info.seeds_changed),
                ("removed", info.seeds_removed),
            )
            if names
        ]
        line += f"  \n⚠ Seeds changed since this build ({', '.join(counts)}): press **Rebuild**."
    return line


def source_messages(answer: Answer, *, show_scores: bool) -> list[Message]:
    """One collapsible message per citation, or per closest passage when not found."""
    panels: list[tuple[str, Passage, Citation | None, float]]
    if answer.found:
        panels = [(f"[{c.number}]", answer.passage_of(c), c, c.score) for c in answer.citations]
    else:
        closest = answer.passages[:3]
        panels = [(f"Closest passage {p.rank}:", p, None, p.dense_score) for p in closest]
    messages: list[Message] = []
    for i, (label, passage, citation, score) in enumerate(panels):
        # The first panel opens (a metadata message without status "done" is expanded), so
        # the cited sentence is in view at once; the others stay collapsed.
        metadata: dict[str, Any] = {"title": source_title(label, passage)}
        if i > 0:
            metadata["status"] = "done"
        if show_scores:
            metadata["log"] = f"score {score:.3f}"
        messages.append(
            {
                "role": "assistant",
                "content": source_html(passage, citation, show_score=show_scores),
                "metadata": metadata,
            }
        )
    return messages
