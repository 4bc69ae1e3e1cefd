"""Evaluate the reader alone on XQuAD-de (gold paragraph given), and measure latency and memory.

    python scripts/eval_reader.py quality [--backend onnx|torch] [--model PATH] [--limit N]
    python scripts/eval_reader.py latency [--threads 2] [--repeat 20]
    python scripts/eval_reader.py memory

quality: EM and F1 (SQuAD v1.1 normalisation) of the best non-empty span, answer-sentence hit
(the sentence, by qa's splitter, that holds the predicted span's start overlaps the gold answer)
and no-answer rate (no-answer score above the best span's score), for the English and the German
questions separately. XQuAD's paragraphs were never trained on, but other paragraphs of the same
articles were: the figures are somewhat optimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer.reader.readings import Reading  # noqa: E402
from qa.ingest.sentences import sentence_spans  # noqa: E402

DEFAULT_XQUAD = ROOT.parent / "shared" / "data" / "xquad_de"


class ReadsContexts(Protocol):
    def read(
        self,
        question: str,
        contexts: Sequence[str],
        *,
        top_n: int = ...,
        max_answer_tokens: int = ...,
    ) -> list[Reading]: ...


@dataclass(frozen=True, slots=True)
class Item:
    """One XQuAD question with its German paragraph and the gold answer's offsets in it."""

    id: str
    question_en: str
    question_de: str
    context: str
    answer: str
    answer_start: int

    def question(self, language: str) -> str:
        return self.question_de if language == "de" else self.question_en


def load_xquad(folder: Path = DEFAULT_XQUAD) -> list[Item]:
    paragraphs = {}
    for line in (folder / "paragraphs.jsonl").read_text().splitlines():
        p = json.loads(line)
        paragraphs[(p["doc"], p["paragraph_index"])] = p["text"]
    items = []
    for line in (folder / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        context = paragraphs[(q["doc"], q["paragraph_index"])]
        start = q["answer_start_de"]
        if context[start : start + len(q["answer_de"])] != q["answer_de"]:
            raise SystemExit(f"{q['id']}: the gold answer is not at its offset")
        items.append(
            Item(q["id"], q["question_en"], q["question_de"], context, q["answer_de"], start)
        )
    return items


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower case, no punctuation, no English articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True, slots=True)
class Outcome:
    item: Item
    prediction: str
    start: int
    em: bool
    f1: float
    sentence_hit: bool
    no_answer: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    label: str
    outcomes: tuple[Outcome, ...]

    def figures(self) -> dict[str, float]:
        n = len(self.outcomes) or 1
        return {
            "questions": len(self.outcomes),
            "em": 100 * sum(o.em for o in self.outcomes) / n,
            "f1": 100 * sum(o.f1 for o in self.outcomes) / n,
            "sentence_hit": 100 * sum(o.sentence_hit for o in self.outcomes) / n,
            "no_answer_rate": 100 * sum(o.no_answer for o in self.outcomes) / n,
            "seconds_p50": statistics.median(o.seconds for o in self.outcomes),
        }


def _sentence_hit(item: Item, start: int, end: int) -> bool:
    spans = sentence_spans(item.context, language="de")
    holding = next((s for s in spans if s[0] <= start < s[1]), None)
    if holding is None:
        return False
    gold_end = item.answer_start + len(item.answer)
    return holding[0] < gold_end and item.answer_start < holding[1]


def evaluate(reader: ReadsContexts, items: Sequence[Item], *, language: str) -> Evaluation:
    outcomes = []
    for item in items:
        started = time.perf_counter()
        (reading,) = reader.read(item.question(language), [item.context], top_n=1)
        seconds = time.perf_counter() - started
        best = reading.best
        text, start, end = (best.text, best.start, best.end) if best else ("", -1, -1)
        outcomes.append(
            Outcome(
                item=item,
                prediction=text,
                start=start,
                em=normalize_answer(text) == normalize_answer(item.answer),
                f1=f1_score(text, item.answer),
                sentence_hit=best is not None and _sentence_hit(item, start, end),
                no_answer=reading.margin < 0,
                seconds=seconds,
            )
        )
    return Evaluation(language, tuple(outcomes))


def _reader(args: argparse.Namespace) -> ReadsContexts:
    if args.backend == "torch":
        from export_reader import DEFAULT_READER_DIR, TorchReader

        from qa.answer.reader.e5file import E5File, default_path

        return TorchReader(args.reader_dir or DEFAULT_READER_DIR, E5File(default_path()))
    from qa.answer.reader import Reader

    return Reader(model_path=args.model, threads=args.threads)


def quality(args: argparse.Namespace) -> None:
    items = load_xquad(args.xquad)
    items = items[:: args.every]
    items = items[: args.limit] if args.limit else items
    reader = _reader(args)
    rows = {}
    for language in args.languages:
        result = evaluate(reader, items, language=language)
        rows[language] = result.figures()
        print(json.dumps({"backend": args.backend, "language": language, **rows[language]}))
        if args.predictions:
            with open(args.predictions, "a") as out:
                for o in result.outcomes:
                    out.write(json.dumps({"backend": args.backend, "language": language,
                                          "id": o.item.id, "prediction": o.prediction,
                                          "start": o.start, "f1": o.f1, "no_answer": o.no_answer})
                              + "\n")  # fmt: skip


def _passage(text: str, size: int, start: int = 0) -> str:
    """The sentences of ``text`` from ``start`` whose length comes closest to ``size``."""
    spans = sentence_spans(text, start, language="de")
    begin = spans[0][0]
    end = min((e for _, e in spans), key=lambda e: abs(e - begin - size))
    return text[begin:end]


def latency(args: argparse.Namespace) -> None:
    from qa.answer.reader import Reader

    items = load_xquad(args.xquad)
    docs = sorted((args.xquad / "docs").glob("*.txt"))
    texts = [d.read_text() for d in docs]
    reader = Reader(model_path=args.model, threads=args.threads)
    started = time.perf_counter()
    reader.load()
    print(json.dumps({"load_seconds": round(time.perf_counter() - started, 3)}))
    cases: dict[str, list[tuple[str, list[str]]]] = {"a: 1 x 700": [], "b: 3 x 1000": [],
                                                      "c: 3 x 1500": []}  # fmt: skip
    for k in range(args.repeat):
        question = items[(k * 37) % len(items)].question_de
        doc = texts[k % len(texts)]
        cases["a: 1 x 700"].append((question, [_passage(doc, 700)]))
        cases["b: 3 x 1000"].append(
            (question, [_passage(doc, 1000, at) for at in (0, len(doc) // 3, 2 * len(doc) // 3)])
        )
        cases["c: 3 x 1500"].append(
            (question, [_passage(doc, 1500, at) for at in (0, len(doc) // 3, 2 * len(doc) // 3)])
        )
    reader.read(*cases["a: 1 x 700"][0])  # warm-up: the first run allocates ORT's arena
    for name, calls in cases.items():
        seconds, cpu = [], []
        for question, contexts in calls:
            started, cpu_started = time.perf_counter(), time.process_time()
            reader.read(question, contexts)
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        ordered = sorted(seconds)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        chars = statistics.mean(sum(map(len, c)) for _, c in calls)
        # CPU seconds (all threads) say what a call costs when the machine is busy with others.
        print(json.dumps({"case": name, "threads": args.threads, "calls": len(seconds),
                          "mean_chars": round(chars), "p50": round(statistics.median(seconds), 3),
                          "p95": round(p95, 3), "cpu_p50": round(statistics.median(cpu), 3),
                          "load_avg": round(os.getloadavg()[0], 1)}))  # fmt: skip


_MEMORY_PROBE = """
import json, resource, sys, psutil
sys.path.insert(0, {root!r})
proc = psutil.Process()
import numpy, onnxruntime
from qa.answer.reader import Reader
before = proc.memory_info().rss
reader = Reader()
reader.load()
loaded = proc.memory_info().rss
for q, ctx in {cases!r}:
    reader.read(q, ctx)
after = proc.memory_info().rss
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"loaded_mb": round((loaded - before) / 2**20, 1),
                  "after_reads_mb": round((after - before) / 2**20, 1),
                  "peak_during_reads_mb": round((peak - before) / 2**20, 1),
                  "process_rss_mb": round(after / 2**20, 1)}}))
"""


def memory(args: argparse.Namespace) -> None:
    """RSS growth of a fresh process (imports excluded) after loading and answering."""
    items = load_xquad(args.xquad)
    doc = (args.xquad / "docs" / "Super_Bowl_50.txt").read_text()
    cases = [(items[k].question_de, [doc[i : i + 1500] for i in (0, 1500, 3000)]) for k in range(5)]
    probe = _MEMORY_PROBE.format(root=str(ROOT), cases=cases)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    print(out.stdout.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["quality", "latency", "memory"])
    parser.add_argument("--xquad", type=Path, default=DEFAULT_XQUAD)
    parser.add_argument("--backend", choices=["onnx", "torch"], default="onnx")
    parser.add_argument("--model", type=Path, default=None, help="an .onnx file (default: shipped)")
    parser.add_argument("--reader-dir", type=Path, default=None, help="torch weights folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--every", type=int, default=1, help="every k-th question only")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--languages", nargs="+", default=["en", "de"])
    parser.add_argument("--predictions", type=Path, default=None, help="append per-question JSONL")
    args = parser.parse_args(argv)
    {"quality": quality, "latency": latency, "memory": memory}[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
