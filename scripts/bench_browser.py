"""Browser-measured chat latency: Enter to first streamed token and to the full answer.

    python scripts/bench_browser.py          # prints a Markdown section for docs/BENCHMARKS.md

Starts ``app.py`` over a copy of the test seeds on a free loopback port (building the index
from scratch), drives Debian's Chromium with Playwright, and times inside the page with
``performance.now()``: from the Enter keydown to the first answer text in the chat, and to the
moment the source panels (with the highlighted sentence) are there.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the app launcher and Chromium flags the tests use

from app_server import CHROMIUM, CHROMIUM_ARGS, START_TIMEOUT, free_port, wait_for_http  # noqa: E402

SEEDS = ROOT / "tests" / "data" / "seeds"
QUESTIONS = ["When did Porsche meet Apple?", "Wann haben sich Porsche und Apple getroffen?"]
WARMUP = 2
RUNS = 20

# Timestamps taken in the page: Enter keydown, first bot text, first new cited <mark>.
PROBE_JS = """() => {
  const chat = document.getElementById('qa-chat');
  const bots = () => chat.querySelectorAll("[data-testid='bot']").length;
  const marks = () => chat.querySelectorAll('mark.qa-cited').length;
  const state = {enter: null, first: null, full: null, bots: bots(), marks: marks()};
  window.qaBench = state;
  const textarea = document.querySelector('#qa-question textarea');
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && state.enter === null) state.enter = performance.now();
  }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    if (state.enter === null) return;
    const now = performance.now();
    if (state.first === null && bots() > state.bots) {
      const last = [...chat.querySelectorAll("[data-testid='bot']")].pop();
      if (last && last.innerText.trim()) state.first = now;
    }
    if (state.full === null && marks() > state.marks) { state.full = now; observer.disconnect(); }
  });
  observer.observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ask(page: Any, question: str, timeout_ms: float = 60_000) -> tuple[float, float]:
    """Milliseconds from Enter to the first streamed token and to the full answer."""
    page.evaluate(PROBE_JS)
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function("() => window.qaBench.full !== null", timeout=timeout_ms)
    state = page.evaluate("() => window.qaBench")
    first = state["first"] if state["first"] is not None else state["full"]
    return first - state["enter"], state["full"] - state["enter"]


def _clear(page: Any) -> None:
    page.locator("#qa-clear").click()
    page.wait_for_function(
        "() => document.querySelectorAll(\"#qa-chat [data-testid='bot']\").length === 0"
    )


def measure(runs: int = RUNS) -> dict[str, Any]:
    """Start the app, ask once cold, then ``runs`` warm questions; timings in ms / s."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="qa-bench-browser-") as tmp:
        work = Path(tmp)
        shutil.copytree(SEEDS, work / "seeds")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
        command += ["--seeds", str(work / "seeds"), "--index", str(work / "index")]
        started = time.monotonic()
        with (work / "app.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=log)
        try:
            wait_for_http(url, process, work / "app.log", START_TIMEOUT)
            http_up = time.monotonic() - started
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.locator("#qa-question textarea").wait_for()
                _ask(page, QUESTIONS[0])
                first_answer = time.monotonic() - started
                for i in range(WARMUP):
                    _clear(page)
                    _ask(page, QUESTIONS[i % 2])
                firsts, fulls = [], []
                for i in range(runs):
                    _clear(page)
                    first, full = _ask(page, QUESTIONS[i % 2])
                    firsts.append(first)
                    fulls.append(full)
                browser.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    return {
        "runs": runs,
        "first": firsts,
        "full": fulls,
        "http_up_s": http_up,
        "first_answer_s": first_answer,
    }


def run() -> str:
    """The Markdown section: a heading and a table of the browser-measured timings."""
    m = measure()
    rows = [
        ("Enter → first streamed token", m["first"]),
        ("Enter → full answer with source panels", m["full"]),
    ]
    lines = [
        "## Chat UI in a real browser",
        "",
        f"Chromium (headless, Playwright) against `app.py` on loopback, test seeds "
        f"({len(list(SEEDS.rglob('*.txt')) + list(SEEDS.rglob('*.md')))} documents); "
        f"warm: {m['runs']} questions (English and German alternating) after {WARMUP} "
        f"warm-ups, timed in the page from the Enter keydown. {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; shared machine, so treat as rough.",
        "",
        "| measure | p50 | p95 | runs |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, values in rows:
        lines.append(
            f"| {label} | {_percentile(values, 0.5):.0f} ms | {_percentile(values, 0.95):.0f} ms "
            f"| {len(values)} |"
        )
    lines.append(f"| app start → HTTP 200 | {m['http_up_s']:.1f} s | | 1 |")
    lines.append(
        f"| app start → first answer in the browser (index built at start) "
        f"| {m['first_answer_s']:.1f} s | | 1 |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
