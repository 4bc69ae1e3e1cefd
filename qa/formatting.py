"""Plain-text formatting for the command line: answers, passages and build summaries."""

from __future__ import annotations

from collections.abc import Sequence

from .types import Answer, Citation, IndexStats, Passage


def _snippet(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _where(location: str | None) -> str:
    return f" ({location})" if location else ""


def citation_line(citation: Citation) -> str:
    """``[1] bericht.pdf:175-236 (p. 2)``: file, offsets in its text, and where that is."""
    return (
        f"[{citation.number}] {citation.source}:{citation.start}-{citation.end}"
        f"{_where(citation.location)}"
    )


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
                f"  {passage.rank}. {passage.source}:{passage.start}-{passage.end}"
                f"{_where(passage.location)} (similarity {passage.dense_score:.3f})  "
                f"{_snippet(passage.text, 160)}"
            )
    return "\n".join(lines).rstrip()


def passages_to_text(passages: Sequence[Passage]) -> str:
    if not passages:
        return "No passages."
    blocks = []
    for p in passages:
        blocks.append(
            f"{p.rank}. {p.source}:{p.start}-{p.end}{_where(p.location)}  score {p.score:.4f} "
            f"(dense {p.dense_score:.3f}, latent {p.latent_score:.3f}, "
            f"bm25 {p.lexical_score:.2f})\n"
            f"   {_snippet(p.text)}"
        )
    return "\n".join(blocks)


def describe(stats: IndexStats, *, seconds: bool = True) -> str:
    """What a build did, in one line (the CLI, ``qa watch`` and the app's Rebuild say this).

    >>> describe(stats)                                       # doctest: +SKIP
    '3 documents, 4 chunks in 9.1 s (4 embedded, 0 reused; 3 added, 0 changed, 0 removed)'
    """
    took = f" in {stats.seconds:.1f} s" if seconds else ""
    resumed = (
        f"; resumed {stats.texts_resumed} texts embedded by an interrupted build"
        if stats.texts_resumed
        else ""
    )
    return (
        f"{stats.documents} documents, {stats.chunks} chunks{took} "
        f"({stats.chunks_embedded} embedded, {stats.chunks_reused} reused; "
        f"{stats.documents_added} added, {stats.documents_changed} changed, "
        f"{stats.documents_removed} removed{resumed})"
    )
