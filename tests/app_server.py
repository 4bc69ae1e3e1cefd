"""Start ``app.py`` in a subprocess on a free loopback port, for the API and browser tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).parent / "data" / "seeds"
#: Imports alone take 20–30 s on a busy machine; building the small index adds a few.
START_TIMEOUT = 180.0
#: Debian's Chromium, started as NOTES.md says (no background traffic on a closed network).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def load_app(name: str) -> ModuleType:
    """``app.py`` imported as module ``name`` (it is a script beside the package, not in it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (see NOTES.md)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@dataclass(frozen=True)
class AppServer:
    url: str
    seeds: Path
    index: Path
    log: Path
    process: subprocess.Popen[bytes]
    started_seconds: float  # launch to first HTTP 200


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app exited with {process.returncode}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for a login
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"app not up at {url} after {timeout:.0f} s:\n{_log_tail(log)}")


@contextmanager
def running_app(
    workdir: Path,
    *,
    seeds: Path = SEEDS,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[AppServer]:
    """Copy ``seeds`` into ``workdir``, start the app over it (with extra ``args`` and
    environment ``env``), and stop it afterwards."""
    seeds_copy = workdir / "seeds"
    shutil.copytree(seeds, seeds_copy)
    index = workdir / "index"
    log = workdir / "app.log"
    port = free_port()
    environment = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("QA_API", "QA_UI", "QA_USERS"))
        },
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [
        sys.executable,
        str(ROOT / "app.py"),
        "--seeds",
        str(seeds_copy),
        "--index",
        str(index),
        "--port",
        str(port),
        *args,
    ]
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=workdir, env=environment, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, process, log, START_TIMEOUT)
        yield AppServer(url, seeds_copy, index, log, process, time.monotonic() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
