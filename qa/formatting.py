"""Formatting: answers and passages as plain text (CLI) and Markdown/HTML (chat UI)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from .types import Answer, Citation, Passage


def _snippet(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def citation_line(citation: Citation) -> str:
    return f"[{citation.number}] {citation.source}:{citation.start}-{citation.end}"


def answer_to_text(answer: Answer) -> str:
    """The answer, then one line per citation and the passages considered."""
    lines = [answer.text, ""]
    if answer.citations:
        lines.append("Sources:")
        for citation in answer.citations:
            lines.append(f"  {citation_line(citation)}  {_snippet(citation.quote, 200)}")
    elif answer.passages:
        lines.append("Closest passages:")
        for passage in answer.passages[:3]:
            lines.append(
                f"  {passage.rank}. {passage.source}:{passage.start}-{passage.end} "
                f"(similarity {passage.dense_score:.3f})  {_snippet(passage.text, 160)}"
            )
    return "\n".join(lines).rstrip()


def passages_to_text(passages: Sequence[Passage]) -> str:
    if not passages:
        return "No passages."
    blocks = []
    for p in passages:
        blocks.append(
            f"{p.rank}. {p.source}:{p.start}-{p.end}  score {p.score:.4f} "
            f"(dense {p.dense_score:.3f}, bm25 {p.lexical_score:.2f})\n"
            f"   {_snippet(p.text)}"
        )
    return "\n".join(blocks)


def highlight(passage_text: str, passage_start: int, citation: Citation) -> str:
    """HTML of the passage with the cited sentence in ``<mark>`` and the span in ``<b>``."""
    s = max(0, citation.start - passage_start)
    e = min(len(passage_text), citation.end - passage_start)
    if s >= e:
        return html.escape(passage_text)
    sentence = passage_text[s:e]
    inner = html.escape(sentence)
    if citation.span is not None:
        a = citation.span.start - citation.start
        b = citation.span.end - citation.start
        if 0 <= a < b <= len(sentence):
            inner = (
                html.escape(sentence[:a])
                + "<b class='qa-span'>"
                + html.escape(sentence[a:b])
                + "</b>"
                + html.escape(sentence[b:])
            )
    return (
        html.escape(passage_text[:s])
        + f"<mark class='qa-cited'>{inner}</mark>"
        + html.escape(passage_text[e:])
    )
