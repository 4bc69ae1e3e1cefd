"""Bounded load test of the chat app's HTTP API, on loopback only.

    python scripts/load_test.py                      # start app.py over the test seeds, all phases
    python scripts/load_test.py --phases concurrent,flood --json out.json
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid 1234   # an app already running

Phases (each bounded in requests and in time, and stopping by itself):

- ``concurrent``: 20 clients, each from its own loopback address (127.0.0.x, so each is its
  own client for the rate limit), ask 50 questions each through ``/answer`` one after another;
  errors and latency p50/p95.
- ``flood``: one client fires 1,000 questions at once (at most 200 connections); how they are
  answered (busy, rate-limited, accepted) and how fast, while another client asks a real
  question and times its answer (and the same question alone just before, for comparison).
- ``memory``: the server's resident memory after 1,000 and after 10,000 requests (answers,
  searches and documents, each request in a fresh session like a short-lived client).
- ``body``: 50 MB request bodies (with Content-Length and chunked), and the server's memory
  before and after.

Only 127.0.0.0/8 and ::1 are accepted as targets; this is a test of our own app, not a tool
to point at other machines. The app this script starts runs with ``--rate-limit 600`` (10
questions a second per client), so that one client asking 50 questions back to back is not
slowed down by the default limit (120 a minute after a burst of 30) — that is policy, not
capacity, and the flood phase shows the limit at work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from app_server import free_port, wait_for_http  # noqa: E402

#: /answer's third argument: the reader model (the app's default answer path), or "none"
#: (``--reader none``: the sentence scorer alone).
READER = "onnx"
QUESTIONS = [
    "When did Porsche meet Apple?",
    "Wann haben sich Porsche und Apple getroffen?",
    "Who is the chief executive of Porsche?",
    "Wer ist der Finanzvorstand von Porsche?",
    "When did the Lindholm Harbour Bridge open?",
    "Wie viel Kaffee röstet die Rösterei?",
    "What is the capital of Peru?",
    "Porsche Apple Treffen Los Angeles",
]
DOCUMENTS = ["000_2e679b4798c0fccf.txt", "de/roesterei.txt", "en/harbour_bridge.md"]
#: No single request may take longer than this; the phase deadline bounds the whole phase.
REQUEST_TIMEOUT = 30.0


def check_loopback(url: str) -> str:
    """``url`` if it points at this machine over loopback, else exit: never load others."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load {url}: only 127.0.0.0/8, ::1 or localhost")
    return url.rstrip("/")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Outcome:
    ok: bool
    seconds: float
    status: str  # "ok", "error", "busy" (503), "limited" (429), or the HTTP status


@dataclass
class Target:
    url: str
    pid: int | None
    fns: dict[str, int] = field(default_factory=dict)


def client(address: str, *, connections: int = 4) -> httpx.AsyncClient:
    """An HTTP client whose connections come from loopback ``address`` (its own client IP)."""
    transport = httpx.AsyncHTTPTransport(
        local_address=address,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    return httpx.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT)


async def call(
    http: httpx.AsyncClient, target: Target, api: str, data: list[Any], *, session: str
) -> Outcome:
    """One API call as gradio_client makes it: join the queue, then read the event stream."""
    started = time.perf_counter()
    body = {"fn_index": target.fns[api], "data": data, "session_hash": session}
    try:
        joined = await http.post(f"{target.url}/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            kind = {503: "busy", 429: "limited"}.get(joined.status_code, str(joined.status_code))
            return Outcome(False, time.perf_counter() - started, kind)
        params = {"session_hash": session}
        async with http.stream("GET", f"{target.url}/gradio_api/queue/data", params=params) as s:
            async for line in s.aiter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    ok = bool(message.get("success"))
                    return Outcome(ok, time.perf_counter() - started, "ok" if ok else "error")
    except httpx.HTTPError as exc:
        return Outcome(False, time.perf_counter() - started, type(exc).__name__)
    return Outcome(False, time.perf_counter() - started, "no result")


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    ok = [o.seconds for o in outcomes if o.ok]
    return {
        "requests": len(outcomes),
        "ok": len(ok),
        "statuses": dict(Counter(o.status for o in outcomes)),
        "p50_s": round(statistics.median(ok), 3) if ok else None,
        "p95_s": round(percentile(ok, 0.95), 3) if ok else None,
        "max_s": round(max(ok), 3) if ok else None,
    }


async def phase_concurrent(target: Target, clients: int, questions: int) -> dict[str, Any]:
    async def one(i: int) -> list[Outcome]:
        session = uuid.uuid4().hex[:12]
        results = []
        async with client(f"127.0.0.{10 + i}") as http:
            for n in range(questions):
                question = QUESTIONS[(i + n) % len(QUESTIONS)]
                results.append(
                    await call(http, target, "answer", [question, 5, READER], session=session)
                )
        return results

    started = time.perf_counter()
    runs = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(clients))), 600)
    wall = time.perf_counter() - started
    outcomes = [o for run in runs for o in run]
    result = summary(outcomes)
    result.update(clients=clients, per_client=questions, wall_s=round(wall, 1))
    result["per_s"] = round(len(outcomes) / wall, 1)
    result["load_avg_1min"] = round(os.getloadavg()[0], 1)
    return result


async def raw_post(url: str, path: str, body: bytes, *, source: str) -> tuple[int, float]:
    """POST ``body`` over a fresh connection from loopback ``source``; the status and seconds.

    Hand-written HTTP/1.1 on asyncio streams: a flood client must cost far less per request
    than the server, or on a busy machine it measures itself.
    """
    parts = urlsplit(url)
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port, local_addr=(source, 0)
    )
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return status, time.perf_counter() - started


async def phase_flood(target: Target, requests: int) -> dict[str, Any]:
    real: dict[str, Any] = {}
    gate = asyncio.Semaphore(200)  # connections open at once

    async def fire(n: int) -> tuple[str, float]:
        body = json.dumps(
            {
                "fn_index": target.fns["answer"],
                "data": [QUESTIONS[n % 4], 5, READER],
                "session_hash": uuid.uuid4().hex[:12],
            }
        ).encode("utf-8")
        async with gate:
            try:
                status, seconds = await raw_post(
                    target.url, "/gradio_api/queue/join", body, source="127.0.1.1"
                )
            except (OSError, ValueError, IndexError) as exc:
                return type(exc).__name__, 0.0
        return {200: "accepted", 503: "busy", 429: "limited"}.get(status, str(status)), seconds

    async def honest() -> None:
        await asyncio.sleep(0.2)  # the flood is under way
        async with client("127.0.1.2") as http:
            outcome = await call(
                http, target, "answer", [QUESTIONS[0], 5, READER], session=uuid.uuid4().hex[:12]
            )
        real.update(ok=outcome.ok, status=outcome.status, seconds=round(outcome.seconds, 3))

    # The same question alone first (after one warm-up): what "within 3 s" compares with on a
    # machine this busy.
    async with client("127.0.1.2") as http:
        alone = []
        for _ in range(2):
            outcome = await call(
                http, target, "answer", [QUESTIONS[0], 5, READER], session=uuid.uuid4().hex[:12]
            )
            alone.append(round(outcome.seconds, 3) if outcome.ok else outcome.status)
    started = time.perf_counter()
    fired, _ = await asyncio.wait_for(
        asyncio.gather(asyncio.gather(*(fire(n) for n in range(requests))), honest()), 300
    )
    wall = time.perf_counter() - started
    refused = [seconds for status, seconds in fired if status in ("busy", "limited")]
    return {
        "requests": requests,
        "statuses": dict(Counter(status for status, _ in fired)),
        "refusal_p50_s": round(percentile(refused, 0.5), 3) if refused else None,
        "refusal_p95_s": round(percentile(refused, 0.95), 3) if refused else None,
        "flood_wall_s": round(wall, 2),
        "real_question": real,
        "same_question_alone_s": alone[1],
        "load_avg_1min": round(os.getloadavg()[0], 1),
    }


async def phase_memory(target: Target, first: int, total: int, clients: int) -> dict[str, Any]:
    if target.pid is None:
        return {"skipped": "no server pid (pass --pid)"}
    counter = 0
    statuses: Counter[str] = Counter()
    marks: dict[str, float] = {"start_mb": round(rss_mb(target.pid), 1)}

    async def worker(i: int, until: int) -> None:
        nonlocal counter
        async with client(f"127.0.2.{10 + i}") as http:
            while counter < until:
                n = counter
                counter += 1
                api = ("answer", "search", "document")[n % 3]
                data: list[Any] = [QUESTIONS[n % 8], 5]
                if api == "document":
                    data = [DOCUMENTS[n % 3]]
                elif api == "answer":
                    data = [QUESTIONS[n % 8], 5, READER]
                session = uuid.uuid4().hex[:12]  # a fresh session each time: the worst case
                outcome = await call(http, target, api, data, session=session)
                statuses[outcome.status] += 1
                if outcome.status == "limited":
                    await asyncio.sleep(1.0)

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(i, first) for i in range(clients))), 900)
    await asyncio.sleep(2)
    marks[f"after_{first}_mb"] = round(rss_mb(target.pid), 1)
    await asyncio.wait_for(asyncio.gather(*(worker(i, total) for i in range(clients))), 2400)
    await asyncio.sleep(2)
    marks[f"after_{total}_mb"] = round(rss_mb(target.pid), 1)
    marks["growth_mb"] = round(marks[f"after_{total}_mb"] - marks[f"after_{first}_mb"], 1)
    return {
        "requests": counter,
        "statuses": dict(statuses),
        "wall_s": round(time.perf_counter() - started, 1),
        **marks,
    }


async def phase_body(target: Target, megabytes: int, repeat: int) -> dict[str, Any]:
    before = rss_mb(target.pid) if target.pid else None
    statuses: Counter[str] = Counter()
    seconds: list[float] = []

    async def chunks() -> AsyncIterator[bytes]:
        block = b"x" * (1 << 20)
        for _ in range(megabytes):
            yield block

    async with client("127.0.3.1") as http:
        for n in range(repeat * 2):
            started = time.perf_counter()
            try:
                if n % 2 == 0:
                    content: Any = b"x" * (megabytes << 20)
                else:
                    content = chunks()
                response = await http.post(
                    f"{target.url}/gradio_api/queue/join",
                    content=content,
                    headers={"content-type": "application/json"},
                )
                statuses[str(response.status_code)] += 1
            except httpx.HTTPError as exc:  # the server may close the connection after 413
                statuses[type(exc).__name__] += 1
            seconds.append(time.perf_counter() - started)
    await asyncio.sleep(1)
    after = rss_mb(target.pid) if target.pid else None
    return {
        "bodies": repeat * 2,
        "megabytes": megabytes,
        "statuses": dict(statuses),
        "max_s": round(max(seconds), 3),
        "rss_before_mb": None if before is None else round(before, 1),
        "rss_after_mb": None if after is None else round(after, 1),
    }


async def discover(target: Target) -> None:
    """The function index of each public API name (as gradio_client reads it)."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
        config = (await http.get(f"{target.url}/config")).json()
    for dep in config["dependencies"]:
        if dep.get("api_visibility") == "public" and dep.get("api_name"):
            target.fns[dep["api_name"]] = dep["id"]
    missing = {"answer", "search", "document"} - set(target.fns)
    if missing:
        raise SystemExit(f"the app at {target.url} has no endpoints {sorted(missing)}")


@contextlib.contextmanager
def started_app(extra: list[str]) -> Iterator[tuple[str, int]]:
    """app.py over a copy of the test seeds on a free loopback port; stopped afterwards."""
    work = Path(tempfile.mkdtemp(prefix="qa-load-"))
    seeds = work / "seeds"
    shutil.copytree(ROOT / "tests" / "data" / "seeds", seeds)
    port = free_port()
    log = work / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        str(ROOT / "app.py"),
        "--seeds",
        str(seeds),
        "--index",
        str(work / "index"),
        "--port",
        str(port),
        *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, process, log, 600)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


async def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    await discover(target)
    results: dict[str, Any] = {}
    if target.pid:
        results["rss_at_start_mb"] = round(rss_mb(target.pid), 1)
    for phase in args.phases.split(","):
        print(f"phase {phase}…", file=sys.stderr, flush=True)
        if phase == "concurrent":
            results[phase] = await phase_concurrent(target, args.clients, args.questions)
        elif phase == "flood":
            results[phase] = await phase_flood(target, args.flood)
        elif phase == "memory":
            results[phase] = await phase_memory(
                target, args.memory_first, args.memory_total, args.memory_clients
            )
        elif phase == "body":
            results[phase] = await phase_body(target, args.body_mb, 3)
        else:
            raise SystemExit(f"unknown phase {phase!r}")
        print(json.dumps(results[phase]), file=sys.stderr, flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an app already running on loopback (default: start one)")
    parser.add_argument("--pid", type=int, help="its process id, for the memory figures")
    parser.add_argument("--phases", default="concurrent,flood,memory,body")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--memory-first", type=int, default=1000)
    parser.add_argument("--memory-total", type=int, default=10_000)
    parser.add_argument("--memory-clients", type=int, default=8)
    parser.add_argument("--body-mb", type=int, default=50)
    parser.add_argument("--app-args", default="--rate-limit 600", help="extra app.py options")
    parser.add_argument("--reader", choices=("onnx", "none"), default="onnx")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    global READER
    READER = args.reader
    for name in ("clients", "questions", "flood", "memory_total"):
        if not 0 < getattr(args, name) <= 20_000:
            raise SystemExit(f"--{name.replace('_', '-')} must be between 1 and 20000")
    with contextlib.ExitStack() as stack:
        if args.url:
            url, pid = check_loopback(args.url), args.pid
        else:
            url, pid = stack.enter_context(started_app(args.app_args.split()))
        target = Target(check_loopback(url), pid)
        results = asyncio.run(run(target, args))
    results["machine"] = {"cores": os.cpu_count(), "load_avg": os.getloadavg()}
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
