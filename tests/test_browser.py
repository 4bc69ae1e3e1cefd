"""The chat in a real browser: Playwright driving Debian's Chromium against ``app.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from app_server import ROOT, AppServer, chromium, running_app

sync_api = pytest.importorskip("playwright.sync_api")
Browser = sync_api.Browser
Page = sync_api.Page
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ROOT / "test-artifacts" / "screenshots"
MEETING = (
    "Das Treffen zwischen Blume, Porsche-Finanzvorstand Lutz Meschke und anderen "
    "Porsche-Vorstandsmitgliedern mit noch unbekannten Apple-Führungskräften fand im November "
    "am Rande der Los Angeles Auto Show statt, sagte eine mit der Situation vertraute Person."
)
LIGHTHOUSE = (
    " date 2024-02 By Anna Lund\n\n# Kestrel Point Lighthouse\n\n"
    "The Kestrel Point lighthouse was first lit on 3 March 1871 by its keeper, Elias Brand. "
    "Its lamp can be seen from 22 nautical miles away.\n"
)
ANSWER_TIMEOUT = 30_000  # ms; the machine is shared with heavy jobs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_app(tmp_path_factory.mktemp("app-browser")) as app:
        yield app


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def open_page(
    browser: Browser, server: AppServer, *, width: int = 1280, height: int = 900, theme: str = ""
) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(server.url + (f"?__theme={theme}" if theme else ""))
    page.locator("#qa-question textarea").wait_for()
    expect(page.locator("#qa-status")).to_contain_text("documents")
    return page


@pytest.fixture
def page(browser: Browser, server: AppServer) -> Iterator[Page]:
    page = open_page(browser, server)
    yield page
    page.context.close()


def shot(page: Page, name: str) -> None:
    """Save a screenshot once the source panels have finished sliding open."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('#qa-chat .thought-group .content')]
            .every(c => c.clientHeight >= c.scrollHeight - 1)"""
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def wait_for_document_panel(page: Page) -> None:
    """Wait until the side panel has slid fully in and shows the marked sentence on screen."""
    page.wait_for_function(
        """() => { const m = document.getElementById('qa-doc-mark'); if (!m) return false;
            const r = m.getBoundingClientRect();
            return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth
                && r.top >= 0 && r.bottom <= window.innerHeight; }"""
    )


def ask(page: Page, question: str) -> None:
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")


def last_answer(page: Page) -> sync_api.Locator:
    """The last answer message (not a source panel) in the chat."""
    return page.locator("#qa-chat [data-testid='bot']:not(:has(.thought-group))").last


@pytest.mark.parametrize(
    ("name", "question"),
    [
        ("01-english-question", "When did Porsche meet Apple?"),
        ("02-german-question", "Wann haben sich Porsche und Apple getroffen?"),
    ],
)
def test_the_cited_sentence_is_highlighted(page: Page, name: str, question: str) -> None:
    ask(page, question)
    mark = page.locator("#qa-chat mark.qa-cited").first
    expect(mark).to_have_text(MEETING, timeout=ANSWER_TIMEOUT)
    expect(mark.locator("b.qa-span")).to_have_text("November")
    expect(last_answer(page)).to_contain_text("November 2021")
    expect(last_answer(page)).to_contain_text("[1]")
    title = page.locator("#qa-chat .thought-group .title").first
    expect(title).to_have_text(
        "[1] 000_2e679b4798c0fccf.txt · 2022-03 · William Boston, Tim Higgins"
    )
    expect(page.locator("#qa-question textarea")).to_have_value("")
    shot(page, name)


def test_a_source_opens_the_document_at_the_cited_sentence(page: Page) -> None:
    ask(page, "When did Porsche meet Apple?")
    page.locator("#qa-chat button.qa-open").first.click(timeout=ANSWER_TIMEOUT)
    mark = page.locator("#qa-doc-mark")
    expect(mark).to_have_text(MEETING)
    expect(mark.locator("b.qa-span")).to_have_text("November")  # the answer span, in bold
    expect(page.locator("#qa-doc .qa-doc-byline")).to_have_text(
        "2022-03 · William Boston, Tim Higgins"
    )
    expect(mark).to_be_in_viewport()  # scrolled to the cited place
    wait_for_document_panel(page)
    box = mark.bounding_box()
    assert box is not None and box["x"] > 640  # in the side panel on the right
    shot(page, "03-document-panel")


def test_an_unanswerable_question_says_so_and_shows_the_closest_passages(page: Page) -> None:
    ask(page, "What is the capital of Peru?")
    notice = page.locator("#qa-chat .qa-notfound")
    expect(notice).to_contain_text("The seeds do not answer this question.", timeout=ANSWER_TIMEOUT)
    titles = page.locator("#qa-chat .thought-group .title")
    expect(titles).to_have_count(3)
    expect(titles.nth(0)).to_contain_text("Closest passage 1:")
    expect(page.locator("#qa-chat mark")).to_have_count(0)
    shot(page, "04-not-answered")


def test_examples_ask_and_the_conversation_clears(page: Page) -> None:
    page.locator("#qa-examples").get_by_text("Wann haben sich Porsche und Apple getroffen?").click()
    expect(page.locator("#qa-chat mark.qa-cited").first).to_have_text(
        MEETING, timeout=ANSWER_TIMEOUT
    )
    page.locator("#qa-clear").click()
    expect(page.locator("#qa-chat [data-testid='bot']")).to_have_count(0)
    expect(page.locator("#qa-chat [data-testid='user']")).to_have_count(0)


def test_an_answer_can_be_copied(browser: Browser, server: AppServer) -> None:
    page = open_page(browser, server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    ask(page, "When did Porsche meet Apple?")
    expect(page.locator("#qa-chat mark.qa-cited").first).to_be_visible(timeout=ANSWER_TIMEOUT)
    message = last_answer(page)
    message.hover()
    page.locator("#qa-chat .bot-row").first.get_by_label("Copy message").first.click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("**November 2021** — ")
    page.context.close()


def test_an_empty_question_shows_a_short_message(page: Page) -> None:
    page.locator("#qa-ask").click()
    toast = page.locator(".toast-body")
    expect(toast).to_contain_text("Type a question about the seeds first.")
    assert "Traceback" not in page.content()


def test_scores_appear_when_the_setting_asks(page: Page) -> None:
    page.locator("#qa-settings").get_by_text("Settings").click()
    page.locator("#qa-show-scores input").check()
    ask(page, "When did Porsche meet Apple?")
    expect(page.locator("#qa-chat .qa-score").first).to_contain_text(
        re.compile(r"similarity 0\.\d{3}, fused 0\.\d{4}, sentence \d\.\d{3}"),
        timeout=ANSWER_TIMEOUT,
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_themes_and_phone_width_look_right(browser: Browser, server: AppServer, theme: str) -> None:
    page = open_page(browser, server, width=390, height=844, theme=theme)
    assert page.evaluate("() => document.body.classList.contains('dark')") is (theme == "dark")
    ask(page, "Wann haben sich Porsche und Apple getroffen?")
    mark = page.locator("#qa-chat mark.qa-cited").first
    expect(mark).to_have_text(MEETING, timeout=ANSWER_TIMEOUT)
    colours = {"light": "rgb(253, 230, 138)", "dark": "rgb(133, 77, 14)"}
    expect(mark).to_have_css("background-color", colours[theme])
    # Nothing sticks out sideways at phone width.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    expect(page.locator("#qa-ask")).to_be_in_viewport()
    shot(page, f"05-phone-{theme}")
    page.locator("#qa-chat button.qa-open").first.click()
    expect(page.locator("#qa-doc-mark")).to_be_in_viewport()
    wait_for_document_panel(page)
    shot(page, f"06-phone-{theme}-document")
    page.context.close()


def test_the_theme_button_switches_light_and_dark(page: Page) -> None:
    dark = "() => document.body.classList.contains('dark')"
    before = page.evaluate(dark)
    page.locator("#qa-theme").click()
    assert page.evaluate(dark) is not before
    page.locator("#qa-theme").click()
    assert page.evaluate(dark) is before


def test_the_askers_words_show_as_typed_and_load_nothing(page: Page) -> None:
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    question = 'Porsche <img src="/probe-img.png"> [link](/probe-link) **fett** www.example.org?'
    ask(page, question)
    expect(page.locator("#qa-chat [data-testid='bot']").first).to_be_visible(timeout=ANSWER_TIMEOUT)
    user = page.locator("#qa-chat [data-testid='user']").last
    expect(user).to_contain_text(question)
    for tag in ("img", "a", "strong"):
        expect(user.locator(tag)).to_have_count(0)
    assert [url for url in fetched if "probe-" in url] == []


def test_rebuild_after_adding_a_seed_answers_from_it(page: Page, server: AppServer) -> None:
    """Last in the module: it adds a seed to the shared app's folder."""
    (server.seeds / "en" / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    page.reload()
    status = page.locator("#qa-status")
    expect(status).to_contain_text("Seeds changed since this build (1 added)")
    shot(page, "07-seeds-changed")
    # Record every status text, to see the progress that a fast build shows only briefly.
    page.evaluate(
        """() => { window.qaStatuses = [];
        new MutationObserver(() => window.qaStatuses.push(
            document.getElementById('qa-status').innerText)).observe(
            document.getElementById('qa-status'), {subtree: true, childList: true,
            characterData: true}); }"""
    )
    page.locator("#qa-rebuild").click()
    # The chat keeps answering while the rebuild runs (separate queue group).
    ask(page, "When did Porsche meet Apple?")
    expect(page.locator("#qa-chat mark.qa-cited").first).to_have_text(
        MEETING, timeout=ANSWER_TIMEOUT
    )
    expect(status).to_contain_text("Rebuilt in", timeout=120_000)
    expect(status).to_contain_text("1 added, 0 changed, 0 removed")
    expect(status).not_to_contain_text("Seeds changed")
    statuses = page.evaluate("() => window.qaStatuses")
    assert any("Rebuilding" in s for s in statuses), statuses
    shot(page, "08-rebuilt")
    ask(page, "When was the Kestrel Point lighthouse first lit?")
    mark = page.locator("#qa-chat mark.qa-cited").last
    expect(mark).to_contain_text("first lit on 3 March 1871", timeout=ANSWER_TIMEOUT)
    expect(last_answer(page)).to_contain_text("3 March 1871")
    expect(page.locator("#qa-chat .thought-group .title").last).to_contain_text("en/lighthouse.md")
    shot(page, "09-answer-from-new-seed")
