"""Chat rendering: answers, source panels, the document view and the status line as HTML.

The CSS classes and the "Open in document" and page buttons written here are styled and
handled by ``chat.css`` and ``chat.js`` beside this module (see :func:`assets`).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
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


def source_title(label: str, passage: Passage, citation: Citation | None = None) -> str:
    """The one-line title of a source panel: ``[1] file · date · authors``.

    For a PDF the page comes after the file (``[1] bericht.pdf · p. 2 · …``): the cited
    sentence's page, else the passage's.
    """
    where = citation.location if citation and citation.page is not None else None
    if where is None and passage.page is not None:
        where = passage.location
    head = [f"{label} {passage.source}", *([where] if where else [])]
    return " · ".join([*head, *_byline(passage.date, passage.authors)])


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
    location = citation.location if citation else passage.location
    if location:
        meta.append(html.escape(location))
    if passage.title:
        meta.append(f"<i>{html.escape(passage.title)}</i>")
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
    body = _mark(document.body, document.body_start, start, end, span).replace(
        "<mark class='qa-cited'>", "<mark class='qa-cited' id='qa-doc-mark'>", 1
    )
    return (
        "<div class='qa-doc'>"
        f"<div class='qa-doc-head'>{_doc_head(document)}</div>"
        f"<div class='qa-doc-text'>{body}</div>"
        "</div>"
    )


def _doc_head(document: Document) -> str:
    head = [f"<div class='qa-doc-title'>{html.escape(document.source)}</div>"]
    if document.title:
        head.append(f"<div class='qa-doc-name'>{html.escape(document.title)}</div>")
    byline = _byline(document.date, document.authors)
    if byline:
        head.append(f"<div class='qa-doc-byline'>{html.escape(' · '.join(byline))}</div>")
    return "".join(head)


@dataclass(frozen=True, slots=True)
class PageImage:
    """One rendered PDF page: the PNG, which page of how many, and the cited sentence's box.

    ``mark`` is the union of the cited sentence's boxes on this page as fractions of the
    image (left, top, width, height), or ``None`` when the sentence is not on this page.
    """

    png: bytes
    page: int
    pages: int
    cited_page: int | None
    mark: tuple[float, float, float, float] | None


def _page_button(label: str, where: list[Any], page: int, enabled: bool, title: str) -> str:
    target = html.escape(json.dumps([*where, page], ensure_ascii=False))
    disabled = "" if enabled else " disabled"
    return (
        f"<button class='qa-page-turn' type='button' value='{target}' title='{title}'"
        f"{disabled}>{label}</button>"
    )


def pdf_page_html(
    document: Document,
    image: PageImage,
    start: int,
    end: int,
    span: tuple[int, int] | None = None,
) -> str:
    """A PDF seed in the side panel: page ``image`` with the cited sentence highlighted in it,
    previous/next page buttons (``.qa-page-turn``, ``value`` the JSON ``[source, start, end,
    span start, span end, page]``), "Page 2 of 3", and the cited sentence as text below.

    An invisible ``#qa-doc-mark`` lies over the highlight, so the panel scrolls to it.
    """
    where: list[Any] = [document.source, start, end, *(span or (None, None))]
    label = f"Page {image.page} of {image.pages}"
    if image.cited_page is not None and image.cited_page != image.page:
        label += f" · the cited sentence is on page {image.cited_page}"
    nav = (
        "<div class='qa-page-nav'>"
        + _page_button("◀ Previous", where, image.page - 1, image.page > 1, "Previous page")
        + f"<span class='qa-page-label'>{html.escape(label)}</span>"
        + _page_button("Next ▶", where, image.page + 1, image.page < image.pages, "Next page")
        + "</div>"
    )
    highlighted = ", the cited sentence highlighted" if image.mark else ""
    alt = f"Page {image.page} of {image.pages} of {document.source}{highlighted}"
    mark = ""
    if image.mark is not None:
        left, top, width, height = (f"{100 * v:.3f}%" for v in image.mark)
        mark = (
            "<span class='qa-page-mark' id='qa-doc-mark' "
            f"style='left:{left};top:{top};width:{width};height:{height}'></span>"
        )
    data = base64.b64encode(image.png).decode("ascii")
    picture = (
        "<div class='qa-page'>"
        f"<img class='qa-page-img' src='data:image/png;base64,{data}' alt='{html.escape(alt)}'>"
        f"{mark}</div>"
    )
    quote = ""
    if 0 <= start < end <= len(document.text):
        cited = _mark(document.text[start:end], start, start, end, span)
        page = f"p. {image.cited_page}: " if image.cited_page else ""
        quote = f"<blockquote class='qa-page-quote'>{page}{cited}</blockquote>"
    return (
        "<div class='qa-doc qa-doc-pdf'>"
        f"<div class='qa-doc-head'>{_doc_head(document)}</div>"
        f"{nav}{picture}{quote}"
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
        metadata: dict[str, Any] = {"title": source_title(label, passage, citation)}
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
