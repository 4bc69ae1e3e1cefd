"""PDF pages as PNG images, with the cited sentence and the answer span highlighted."""

from __future__ import annotations

import io
from collections.abc import Iterable

from ...errors import InvalidQueryError
from .extraction import Box
from .pdfium_doc import open_pdf

#: Translucent yellow for the cited sentence, a stronger orange for the answer inside it.
HIGHLIGHT_RGBA = (255, 221, 0, 96)
STRONG_RGBA = (255, 120, 0, 150)
#: Scales outside this range are refused: below, text is unreadable; above, an A4 page at
#: 6× is ~3,600 × 5,000 pixels (54 MB raw), the most one request may cost.
MIN_SCALE, MAX_SCALE = 0.25, 6.0
_PAD = 1.0  # points around each box, so that descenders and accents stay inside


def page_count(data: bytes, *, source: str = "PDF") -> int:
    """The number of pages of the PDF in ``data`` (:class:`SeedError` if it cannot be opened)."""
    with open_pdf(data, source) as pdf:
        return len(pdf)


def _device(
    x: float, top: float, rotation: int, width: float, height: float
) -> tuple[float, float]:
    """Unrotated top-left page coordinates to the rendered (rotated) page's coordinates."""
    if rotation == 90:
        return height - top, x
    if rotation == 180:
        return width - x, height - top
    if rotation == 270:
        return top, width - x
    return x, top


def render_pdf_page(
    data: bytes,
    page: int,
    *,
    highlight: Iterable[Box] = (),
    strong: Iterable[Box] = (),
    scale: float = 2.0,
    source: str = "PDF",
) -> bytes:
    """Page ``page`` (1-based) of the PDF in ``data`` as PNG bytes, boxes drawn over it.

    Boxes are :meth:`Extraction.boxes` rectangles; those of other pages are ignored, so the
    boxes of a sentence that runs over a page break can be passed whole. The caller reads
    ``data`` (safely, from the seeds folder); this function never opens a path.

    >>> png = render_pdf_page(data, 3, highlight=extraction.boxes(s, e))   # doctest: +SKIP
    """
    from PIL import Image, ImageDraw

    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise InvalidQueryError(
            f"Render scale {scale} is outside {MIN_SCALE}–{MAX_SCALE}; pass a scale in range."
        )
    with open_pdf(data, source) as pdf:
        if not 1 <= page <= len(pdf):
            raise InvalidQueryError(
                f"{source} has pages 1–{len(pdf)}, not page {page}; pass a page in range."
            )
        pdf_page = pdf[page - 1]
        try:
            left, bottom, right, top = pdf_page.get_bbox()
            rotation = pdf_page.get_rotation()
            image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        finally:
            pdf_page.close()
    width, height = right - left, top - bottom
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for boxes, colour in ((highlight, HIGHLIGHT_RGBA), (strong, STRONG_RGBA)):
        for box_page, x0, box_top, x1, box_bottom in boxes:
            if box_page != page:
                continue
            corners = [
                _device(x, y, rotation, width, height)
                for x, y in ((x0 - _PAD, box_top - _PAD), (x1 + _PAD, box_bottom + _PAD))
            ]
            xs = sorted(c[0] * scale for c in corners)
            ys = sorted(c[1] * scale for c in corners)
            draw.rectangle((xs[0], ys[0], xs[1], ys[1]), fill=colour)
    # Strong boxes are drawn over the highlight on one overlay: the answer stays legible.
    composed = Image.alpha_composite(image, overlay).convert("RGB")
    buffer = io.BytesIO()
    composed.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
