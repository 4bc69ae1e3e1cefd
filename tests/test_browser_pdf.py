"""A PDF source in a real browser: the cited page as an image, highlighted, with page buttons."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from app_server import AppServer, chromium, running_app
from seed_files import FERRY, make_report_pdf, write_format_seeds
from test_browser import ANSWER_TIMEOUT, SHOTS, ask, open_page, wait_for_document_panel

from qa.ingest.formats import extract

sync_api = pytest.importorskip("playwright.sync_api")
Browser = sync_api.Browser
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The colours of the image's pixels from x0 to x1 (CSS pixels from its top left) on row y,
#: read via a canvas at the image's own resolution.
ROW_JS = """([x0, x1, y]) => { const img = document.querySelector('#qa-doc img.qa-page-img');
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d'); context.drawImage(img, 0, 0);
    const scale = img.naturalWidth / img.clientWidth;
    const left = Math.round(x0 * scale), width = Math.max(1, Math.round((x1 - x0) * scale));
    const data = context.getImageData(left, Math.round(y * scale), width, 1).data;
    const row = [];
    for (let i = 0; i < data.length; i += 4) row.push([data[i], data[i + 1], data[i + 2]]);
    return row; }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("app-pdf")
    seeds = write_format_seeds(workdir / "format-seeds")
    with running_app(workdir, seeds=seeds) as app:
        yield app


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def test_a_pdf_citation_opens_its_page_highlighted(browser: Browser, server: AppServer) -> None:
    page = open_page(browser, server)
    ask(page, "Wann wurde die Fähre Seeschwalbe getauft?")
    expect(page.locator("#qa-chat mark.qa-cited").first).to_have_text(FERRY, timeout=ANSWER_TIMEOUT)
    expect(page.locator("#qa-chat .thought-group .title").first).to_have_text(
        "[1] bericht.pdf · p. 2 · 2023-04-18 · Anna Müller, Tom Reed"
    )
    page.locator("#qa-chat button.qa-open").first.click()
    image = page.locator("#qa-doc img.qa-page-img")
    expect(image).to_have_attribute(
        "alt", "Page 2 of 3 of bericht.pdf, the cited sentence highlighted"
    )
    expect(page.locator("#qa-doc .qa-page-label")).to_have_text("Page 2 of 3")
    expect(page.locator("#qa-doc .qa-page-quote b.qa-span")).to_have_text("14. Juni 2022")
    page.wait_for_function(
        "() => document.querySelector('#qa-doc img.qa-page-img').naturalWidth === 893"
    )
    wait_for_document_panel(page)  # slid in, the highlight scrolled into view

    # The highlight is drawn where the sentence is: yellow over it, orange over the answer
    # span, white paper beside the line. Boxes in points; the image is 893 px for 595 pt.
    pdf = extract(make_report_pdf(), "bericht.pdf")
    start = pdf.text.index(FERRY)
    [(box_page, x0, top, x1, bottom)] = pdf.boxes(start, start + len(FERRY))
    span_start = pdf.text.index("14. Juni 2022")
    [(_, sx0, _, sx1, _)] = pdf.boxes(span_start, span_start + len("14. Juni 2022"))
    assert box_page == 2
    width = page.evaluate("() => document.querySelector('#qa-doc img.qa-page-img').clientWidth")
    points = width / 595.28  # CSS pixels a point
    middle = (top + bottom) / 2 * points
    # Glyphs darken single pixels: judge each stretch by its median colour.
    yellow = np.array(page.evaluate(ROW_JS, [(x0 + 2) * points, (sx0 - 2) * points, middle]))
    red, green, blue = np.median(yellow, axis=0)
    assert red > 200 and green > 180 and blue < 200
    orange = np.array(page.evaluate(ROW_JS, [(sx0 + 2) * points, (sx1 - 2) * points, middle]))
    red, green, blue = np.median(orange, axis=0)
    assert red > 200 and green < 200 and blue < 150
    paper = np.array(page.evaluate(ROW_JS, [(x1 + 10) * points, (x1 + 60) * points, middle]))
    assert (paper == 255).all()
    box = image.bounding_box()
    assert box is not None and box["x"] > 640  # in the side panel on the right
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "10-pdf-page.png"))

    page.locator("#qa-doc button.qa-page-turn", has_text="Next").click()
    expect(page.locator("#qa-doc .qa-page-label")).to_have_text(
        "Page 3 of 3 · the cited sentence is on page 2"
    )
    expect(image).to_have_attribute("alt", "Page 3 of 3 of bericht.pdf")
    expect(page.locator("#qa-doc button.qa-page-turn", has_text="Next")).to_be_disabled()
    page.locator("#qa-doc button.qa-page-turn", has_text="Previous").click()
    expect(page.locator("#qa-doc .qa-page-label")).to_have_text("Page 2 of 3")
    expect(image).to_have_attribute(
        "alt", "Page 2 of 3 of bericht.pdf, the cited sentence highlighted"
    )
    page.context.close()
