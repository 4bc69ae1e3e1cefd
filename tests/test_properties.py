"""Property-based tests (hypothesis): the seed decoder and metadata line, chunk and sentence
offsets, the viewer's path resolution, and the checks of questions, ``k`` and requests.

Each property is one promise the code makes for every input, not just the examples the other
tests pick; the example counts keep the file to a few seconds.
"""

from __future__ import annotations

import asyncio
import string
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from qa.config import MAX_K
from qa.errors import InvalidQueryError, SeedError
from qa.ingest.chunking import Chunker
from qa.ingest.seeds import extract_seed, parse_metadata
from qa.ingest.sentences import split_sentences
from qa.ingest.viewer import resolve_seed
from qa.search.query import MAX_QUESTION_CHARS, check_k, check_question, parse_k
from qa.ui.guard import BLOCKED, Endpoints, Guard
from qa.ui.security import AccessSettings, Credentials

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Text like the seeds': words in two languages, punctuation, digits, both line ends.
WORDS = st.sampled_from(
    [
        "Porsche",
        "Apple",
        "traf",
        "sich",
        "im",
        "November",
        "2021",
        "Dr.",
        "z.B.",
        "3.",
        "März",
        "Straße",
        "»Zitat«",
        '"quote."',
        "U.S.",
        "e.g.",
        "café",
        "1.500",
        "–",
        "(Klammer)",
        "Ende.",
        "Frage?",
        "Ruf!",
        "…",
        "😀",
    ]
)
SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\r\n", "\n\n", "\r\n\r\n", "\t", ". ", "  "])
SEED_TEXT = st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=120).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)
DATES = st.from_regex(r"20[0-9]{2}-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]))?", fullmatch=True)
NAMES = st.from_regex(r"[A-Z][a-zäöü]{1,8} [A-Z][a-zäöü]{1,10}", fullmatch=True)


# --- the seed decoder and the metadata line --------------------------------------------------


@FAST
@given(st.binary(max_size=400))
@example(b"\xef\xbb\xbf date 2022-03 Von A B\n\nText")
@example(b" date 2022-03\r\n\r\n")
def test_decoding_any_bytes_gives_a_document_of_the_file_as_is_or_a_seed_error(
    data: bytes,
) -> None:
    try:
        document = extract_seed(data, "x.txt")[0]
    except SeedError as exc:
        assert str(exc).startswith("Seed x.txt ")
        return
    assert document.text == data.decode("utf-8")  # offsets are offsets in the file
    assert 0 <= document.body_start <= len(document.text)
    assert document.body.strip()
    if document.date is not None:  # the blank lines after a metadata line are skipped
        assert not document.body.startswith(("\r", "\n"))


@FAST
@given(st.text(max_size=300))
def test_parse_metadata_never_reaches_past_the_text(text: str) -> None:
    body_start, date, authors = parse_metadata(text)
    assert 0 <= body_start <= len(text)
    if date is None:
        assert (body_start, authors) == (0, ())
    else:
        assert text[:body_start].lstrip(" \t").lower().startswith("date")
        assert date in text[:body_start]
        assert all(a and a == a.strip() and a in text[:body_start] for a in authors)
        assert not text[body_start:].startswith(("\r", "\n"))


@FAST
@given(
    DATES,
    st.lists(NAMES, max_size=3),
    st.sampled_from(["Von", "By", "von", "by"]),
    st.sampled_from(["\n", "\r\n", "\n\n", "\r\n\r\n"]),
    SEED_TEXT,
)
def test_a_metadata_line_is_read_back_exactly(
    date: str, authors: list[str], word: str, newline: str, body: str
) -> None:
    assume(body.strip() and not body.startswith(("\r", "\n", " ", "\t")))
    byline = f" {word} " + " und ".join(authors) if authors else ""
    line = f" date {date}{byline}"
    text = line + newline + body
    body_start, parsed_date, parsed_authors = parse_metadata(text)
    assert (parsed_date, parsed_authors) == (date, tuple(authors))
    assert text[body_start:] == body


# --- chunk and sentence offsets --------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(SEED_TEXT, st.sampled_from([(80, 0), (120, 30), (1500, 200)]))
def test_chunks_are_exact_slices_that_cover_the_body(text: str, size: tuple[int, int]) -> None:
    assume(text.strip())
    document = extract_seed(text.encode("utf-8"), "x.txt")[0]
    chunks = Chunker(chunk_size=size[0], chunk_overlap=size[1]).split(document)
    covered = [False] * len(text)
    previous = -1
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert document.body_start <= chunk.start < chunk.end <= len(text)
        assert chunk.start > previous
        previous = chunk.start
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    lost = [
        i for i in range(document.body_start, len(text)) if not text[i].isspace() and not covered[i]
    ]
    assert lost == []


@settings(max_examples=60, deadline=None)
@given(SEED_TEXT, st.sampled_from(["de", "en"]), st.integers(0, 40))
def test_sentences_are_ordered_trimmed_slices_that_keep_every_word(
    text: str, language: str, start: int
) -> None:
    start = min(start, len(text))
    sentences = split_sentences(text, "x.txt", start, language=language)
    end = start
    for sentence in sentences:
        assert text[sentence.start : sentence.end] == sentence.text
        assert end <= sentence.start < sentence.end <= len(text)
        assert sentence.text == sentence.text.strip()
        end = sentence.end
    words = [i for i in range(start, len(text)) if text[i].isalnum()]
    inside = {i for s in sentences for i in range(s.start, s.end)}
    assert [i for i in words if i not in inside] == []


# --- the viewer's path resolution ------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeds folder with a seed, a sub-folder, a hidden file, a link out and a link loop,
    beside a secret file outside it."""
    base = tmp_path_factory.mktemp("viewer")
    seeds = base / "seeds"
    (seeds / "de").mkdir(parents=True)
    (seeds / "a.txt").write_text("A.", encoding="utf-8")
    (seeds / "de" / "b.md").write_text("B.", encoding="utf-8")
    (seeds / ".hidden.txt").write_text("H.", encoding="utf-8")
    (base / "secret.txt").write_text("S.", encoding="utf-8")
    (seeds / "out.txt").symlink_to(base / "secret.txt")
    (seeds / "loop.txt").symlink_to("loop.txt")
    (seeds / "dir.txt").mkdir()
    return seeds


PATH_PARTS = st.sampled_from(
    [
        "a.txt",
        "de",
        "b.md",
        "..",
        ".",
        "",
        ".hidden.txt",
        "out.txt",
        "loop.txt",
        "dir.txt",
        "secret.txt",
        "seeds",
        "etc",
        "passwd",
        "\\",
        "C:",
        "\x00",
        "%2e%2e",
        "~",
        " ",
        "ä.txt",
    ]
)
SOURCES = st.one_of(
    st.lists(PATH_PARTS, min_size=1, max_size=6).map("/".join),
    st.lists(PATH_PARTS, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    st.text(string.printable, max_size=40),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(SOURCES)
@example("a.txt")
@example("de/b.md")
@example("de/../a.txt")
def test_the_viewer_resolves_only_seed_files_inside_the_folder(tree: Path, source: str) -> None:
    try:
        path = resolve_seed(tree, source)
    except SeedError as exc:
        assert str(exc).startswith("Cannot show ")
        assert str(exc).endswith("pick a source from an answer.")
        return
    real = path.resolve()
    assert real.is_relative_to(tree.resolve())
    assert real.is_file()
    assert real.name in {"a.txt", "b.md"}
    assert ".." not in Path(source).parts


# --- questions, k and requests ---------------------------------------------------------------

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
)


@FAST
@given(ANYTHING)
@example("5")
@example(" 50 ")
@example(5.0)
@example(2.7)
@example(float("nan"))
@example(10**9)
def test_k_is_a_whole_number_from_1_to_50_or_a_named_error(value: Any) -> None:
    for check in (check_k, parse_k):
        try:
            k = check(value)
        except InvalidQueryError as exc:
            assert str(exc).startswith(f"k must be a whole number from 1 to {MAX_K}, got ")
            continue
        assert type(k) is int and 1 <= k <= MAX_K
        if check is check_k:
            assert k == value and type(value) is int


@FAST
@given(st.one_of(ANYTHING, st.text(max_size=2100), st.text(min_size=1990, max_size=2010)))
@example("\ud800 surrogate")
@example("   ")
def test_a_question_is_usable_text_or_a_named_error(question: Any) -> None:
    try:
        checked = check_question(question, 5)
    except InvalidQueryError as exc:
        assert str(exc).startswith(("The question ", "k must"))
        return
    assert isinstance(checked, str) and checked == checked.strip() and checked
    assert len(question) <= MAX_QUESTION_CHARS
    checked.encode("utf-8")


async def _send(guard: Guard, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7860") as c:
        return await c.request(method, path, headers=headers, content=body)


class _Recorder:
    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


REBUILD = b'{"fn_index": 6, "data": []}'
HEADER_VALUES = st.sampled_from(
    [
        "127.0.0.1:7860",
        "localhost",
        "evil.example",
        "",
        "http://127.0.0.1:7860",
        "null",
        "Bearer " + "k" * 20,
        "Bearer wrong",
        "qa_session=x",
        "text/html",
        "999999999",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
    st.one_of(
        st.sampled_from(
            [
                "/",
                "/config",
                "/gradio_api/run/answer",
                "/login",
                "/logout",
                "/gradio_api/queue/join",
                "/gradio_api/upload",
                "/gradio_api/call/answer",
                "/gradio_api/call/rebuild",
                "/assets/x.js",
                "/monitoring",
            ]
        ),
        st.text(string.ascii_letters + "/._-=", max_size=30).map(lambda p: "/" + p),
    ),
    st.dictionaries(
        st.sampled_from(["host", "origin", "authorization", "cookie", "accept", "content-type"]),
        HEADER_VALUES,
        max_size=5,
    ),
    st.one_of(st.binary(max_size=64), st.just(b"x" * 20_000), st.just(REBUILD)),
    st.booleans(),
)
def test_the_guard_answers_every_request_and_lets_through_only_what_its_rules_allow(
    method: str, path: str, headers: dict[str, str], body: bytes, auth: bool
) -> None:
    app = _Recorder()
    credentials = Credentials(tokens=("k" * 20,)) if auth else Credentials()
    endpoints = Endpoints(
        frozenset({10}), frozenset({"answer"}), {6: "rebuild", 10: "answer"}, frozenset({"answer"})
    )
    guard = Guard(app, AccessSettings(credentials=credentials), endpoints)
    response = asyncio.run(_send(guard, method, path, headers, body))
    assert 200 <= response.status_code < 600
    if not app.reached:
        return
    # What reached the app passed every rule.
    host = headers.get("host", "127.0.0.1:7860").split(":")[0] or ""
    assert host in {"127.0.0.1", "localhost"}
    assert headers.get("origin") in (None, "http://127.0.0.1:7860")
    assert not path.startswith(BLOCKED)
    assert len(body) <= 16 * 1024
    if auth:
        assert headers.get("authorization") == "Bearer " + "k" * 20
    assert not (method == "POST" and "/call/rebuild" in path)  # a GET only reads results
    runs = path.rstrip("/") == "/gradio_api/queue/join" or path.startswith(
        ("/gradio_api/run/", "/gradio_api/call/", "/gradio_api/api/")
    )
    assert not (method == "POST" and runs and body == REBUILD), "the page's action ran"
