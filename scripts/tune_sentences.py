"""Choose the sentence-scoring weights (qa.config.AnswerSettings) on the XQuAD dev split.

The dev split is every other article (sorted by name, even positions); the weights with the best
mean answer-sentence accuracy over English and German dev questions win, and the held-out
articles show how well that carries over. Usage:

    python scripts/tune_sentences.py INDEX_DIR QUERIES.jsonl
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace

from qa.answer.sentences import rank_sentences
from qa.config import AnswerSettings
from qa.evaluation import load_queries
from qa.pipeline import load_index


def main(index_dir: str, queries_path: str) -> None:
    retriever = load_index(index_dir)
    docs = sorted(retriever.documents)
    dev_docs = set(docs[::2])
    cases = []
    for lang in ("en", "de"):
        queries = load_queries(
            queries_path,
            question_field=f"question_{lang}",
            source_field="doc",
            answer_field="answer_de",
            answer_start_field="answer_start_doc",
        )
        for q in queries:
            cases.append((lang, q, retriever.evidence(q.question, 10)))
    grid = itertools.product((1, 2, 3), (0.0, 0.25, 0.5), (0.0, 0.05, 0.1, 0.2), (0.0, 0.1, 0.2))
    results = []
    for passages, passage, kind, overlap in grid:
        weights = replace(
            AnswerSettings(), passages=passages, passage=passage, kind=kind, overlap=overlap
        )
        hits: dict[tuple[str, bool], list[bool]] = {}
        for lang, q, evidence in cases:
            ranked = rank_sentences(q.question, evidence, weights)
            best = ranked[0].evidence.sentence if ranked else None
            ok = best is not None and (
                best.source == q.source and q.answer.casefold() in best.text.casefold()
            )
            hits.setdefault((lang, q.source in dev_docs), []).append(ok)
        acc = {key: sum(v) / len(v) for key, v in hits.items()}
        dev = (acc[("en", True)] + acc[("de", True)]) / 2
        results.append((dev, acc, weights))
        print(
            f"{passages} p={passage} k={kind} o={overlap}: dev {dev:.3f} "
            f"en {acc[('en', True)]:.3f}/{acc[('en', False)]:.3f} "
            f"de {acc[('de', True)]:.3f}/{acc[('de', False)]:.3f}",
            flush=True,
        )
    best = max(results, key=lambda r: r[0])
    print("best on dev:", best[2], {k: round(v, 3) for k, v in best[1].items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
