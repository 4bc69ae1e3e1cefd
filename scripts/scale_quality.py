"""Quality side of the scale choices, on real XQuAD vectors (used by bench_scale.py).

Mirrors ``qa.retrieval.Retriever._dense`` with numpy: candidates are the chunk search's top
``pool`` plus the chunks of the sentence search's top ``2 * pool``; a candidate scores
chunk cosine + best-sentence cosine (+ 0.5 x latent-term cosine). Paragraph recall@k counts
a question as found when a chunk containing its answer offset is among the first k.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scale_data as sd

LATENT_WEIGHT = 0.5


class XQuAD:
    """Chunks, sentences, their real vectors and latent rows, questions and gold chunks."""

    def __init__(self) -> None:
        chunks, sentences, _ = sd.xquad_units()
        self.chunks, self.sentences = chunks, sentences
        self.chunk_vectors = sd.load("xquad_chunks")["vectors"]
        pool = sd.load("pool")
        self.sentence_vectors = pool["vectors"][pool["languages"] == "de"]
        assert len(self.sentence_vectors) == len(sentences)
        self.queries = sd.load("queries")["vectors"]
        qs = sd.questions()
        self.n_questions = len(qs)
        # Row r < n: English question r; r >= n: German question r - n.
        self.gold = [self._gold(q) for q in qs] * 2
        self.chunk_sentences = [
            [
                j
                for j, s in enumerate(sentences)
                if s.source == c.source and s.end > c.start and s.start < c.end
            ]
            for c in chunks
        ]
        self.sentence_chunks: list[list[int]] = [[] for _ in sentences]
        for i, rows in enumerate(self.chunk_sentences):
            for j in rows:
                self.sentence_chunks[j].append(i)

    def _gold(self, q: dict[str, Any]) -> set[int]:
        pos = int(q["answer_start_doc"])
        return {
            i for i, c in enumerate(self.chunks) if c.source == q["doc"] and c.start <= pos < c.end
        }


def rank(
    x: XQuAD,
    query: np.ndarray,
    *,
    pool: int = 50,
    sentence_search: bool = True,
    sentence_vectors: np.ndarray | None = None,
    chunk_latent: np.ndarray | None = None,
    query_latent: np.ndarray | None = None,
) -> list[int]:
    sv = x.sentence_vectors if sentence_vectors is None else sentence_vectors
    chunk_cos = x.chunk_vectors @ query
    candidates = set(np.argsort(-chunk_cos, kind="stable")[:pool].tolist())
    sent_cos = sv.astype(np.float32) @ query
    if sentence_search:
        for j in np.argsort(-sent_cos, kind="stable")[: 2 * pool]:
            candidates.update(x.sentence_chunks[int(j)])
    scores = {}
    for i in candidates:
        rows = x.chunk_sentences[i]
        best = float(sent_cos[rows].max()) if rows else float(chunk_cos[i])
        score = float(chunk_cos[i]) + best
        if chunk_latent is not None and query_latent is not None:
            score += LATENT_WEIGHT * float(chunk_latent[i] @ query_latent)
        scores[i] = score
    return sorted(scores, key=lambda i: (-scores[i], i))


def recall(x: XQuAD, rows: list[int], **options: Any) -> dict[str, float]:
    hits1 = hits5 = 0
    for r in rows:
        order = rank(x, x.queries[r], **options)
        gold = x.gold[r]
        hits1 += bool(gold & set(order[:1]))
        hits5 += bool(gold & set(order[:5]))
    return {"recall@1": round(hits1 / len(rows), 4), "recall@5": round(hits5 / len(rows), 4)}


def sentence_storage(x: XQuAD) -> dict[str, Any]:
    """float32 vs float16 vs SQ8 sentence vectors; global sentence search vs candidates only."""
    import faiss

    f32 = x.sentence_vectors.astype(np.float32)
    f16 = f32.astype(np.float16)
    sq = faiss.ScalarQuantizer(f32.shape[1], faiss.ScalarQuantizer.QT_8bit)
    sq.train(f32)
    sq8 = sq.decode(sq.compute_codes(f32))
    queries = x.queries.astype(np.float32)
    ref = queries @ f32.T
    out: dict[str, Any] = {"sentences": len(f32)}
    for name, approx in (("float16", f16.astype(np.float32)), ("sq8", sq8)):
        got = queries @ approx.T
        top1 = np.mean(np.argmax(got, 1) == np.argmax(ref, 1))
        ref10 = np.argsort(-ref, 1)[:, :10]
        got10 = np.argsort(-got, 1)[:, :10]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref10, got10, strict=True)])
        out[name] = {
            "max_abs_score_error": float(np.abs(got - ref).max()),
            "top1_same": round(float(top1), 4),
            "top10_overlap": round(float(overlap), 4),
        }
    rows = list(range(len(x.queries)))
    started = time.perf_counter()
    variants: dict[str, dict[str, Any]] = {
        "float32, sentence search (current)": {},
        "float16, sentence search": {"sentence_vectors": f16},
        "sq8, sentence search": {"sentence_vectors": sq8},
    }
    for pool in (5, 10, 20, 50):
        variants[f"float32, no sentence search, pool {pool}"] = {
            "sentence_search": False,
            "pool": pool,
        }
        variants[f"float32, sentence search, pool {pool}"] = {"pool": pool}
    out["retrieval"] = {}
    for name, options in variants.items():
        en = recall(x, rows[: x.n_questions], **options)
        de = recall(x, rows[x.n_questions :], **options)
        out["retrieval"][name] = {"en": en, "de": de}
    out["retrieval_seconds"] = round(time.perf_counter() - started, 1)
    return out


def _pooled(latent: dict[str, np.ndarray], groups: list[list[int]], dim: int) -> np.ndarray:
    """Dense (rows x dim) max-pooled latent vectors (small sets only)."""
    indptr, indices, values = (latent[k] for k in ("indptr", "indices", "values"))
    out = np.zeros((len(groups), dim), np.float32)
    for g, rows in enumerate(groups):
        for r in rows:
            a, b = indptr[r], indptr[r + 1]
            np.maximum.at(out[g], indices[a:b], values[a:b])
    return out


def _truncate(dense: np.ndarray, k: int) -> np.ndarray:
    """Keep each row's ``k`` largest entries (float16 values), zero the rest."""
    out = np.zeros_like(dense)
    top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    rows = np.arange(len(dense))[:, None]
    out[rows, top] = dense[rows, top].astype(np.float16).astype(np.float32)
    return out


def latent_quality(x: XQuAD) -> dict[str, Any]:
    """Real latent rows: nnz, and what truncating chunk rows to the top-k terms costs."""
    dim = 16384
    raw = sd.load("pool_latent_de")
    latent = {
        "indptr": raw["latent_indptr"],
        "indices": raw["latent_indices"],
        "values": raw["latent_values"],
    }
    q = sd.load("queries_latent")
    q_rows = q["rows"].tolist()
    q_latent = _pooled(
        {
            "indptr": q["latent_indptr"],
            "indices": q["latent_indices"],
            "values": q["latent_values"],
        },
        [[i] for i in range(len(q_rows))],
        dim,
    )
    q_latent /= np.maximum(np.linalg.norm(q_latent, axis=1, keepdims=True), 1e-12)
    chunk = _pooled(latent, x.chunk_sentences, dim)
    nnz_chunk = (chunk > 0).sum(1)
    out: dict[str, Any] = {
        "sentence_nnz_mean": float(np.diff(latent["indptr"]).mean()),
        "sentence_nnz_max": int(np.diff(latent["indptr"]).max()),
        "query_nnz_mean": float(np.diff(q["latent_indptr"]).mean()),
        "chunk_pooled_nnz_mean": float(nnz_chunk.mean()),
        "chunk_pooled_nnz_p95": float(np.percentile(nnz_chunk, 95)),
        "queries": len(q_rows),
    }

    def evaluate(chunk_rows: np.ndarray | None) -> dict[str, float]:
        normed = None
        if chunk_rows is not None:
            normed = chunk_rows / np.maximum(
                np.linalg.norm(chunk_rows, axis=1, keepdims=True), 1e-12
            )
        hits1 = hits5 = 0
        for i, r in enumerate(q_rows):
            order = rank(
                x,
                x.queries[r],
                chunk_latent=normed,
                query_latent=q_latent[i] if normed is not None else None,
            )
            hits1 += bool(x.gold[r] & set(order[:1]))
            hits5 += bool(x.gold[r] & set(order[:5]))
        return {
            "recall@1": round(hits1 / len(q_rows), 4),
            "recall@5": round(hits5 / len(q_rows), 4),
        }

    out["retrieval"] = {"no latent": evaluate(None), "full pooled (current)": evaluate(chunk)}
    for k in (32, 64, 128, 256):
        out["retrieval"][f"chunk rows top-{k}, float16"] = evaluate(_truncate(chunk, k))
    # Answering picks sentences by dense + latent score; how often does truncating the
    # sentence rows change the latent-best sentence inside the gold chunk?
    sent = _pooled(latent, [[j] for j in range(len(x.sentences))], dim)
    for k in (32, 64, 128):
        t = _truncate(sent, k)
        same = total = 0
        for i, r in enumerate(q_rows):
            for c in x.gold[r]:
                rows = x.chunk_sentences[c]
                if len(rows) > 1:
                    total += 1
                    same += int(
                        np.argmax(sent[rows] @ q_latent[i]) == np.argmax(t[rows] @ q_latent[i])
                    )
        out[f"sentence rows top-{k}: same latent-best sentence in gold chunk"] = round(
            same / total, 4
        )
    return out
