"""Cost side at 1M passages: sentence rows, latent terms and BM25 (used by bench_scale.py).

* Sentence vectors of the candidates only: float16 rows on disk, memory-mapped, one
  contiguous slice per candidate passage (its sentences are stored together).
* Latent terms: per-chunk rows cut to the top 128 terms (uint16 term ids, float16 values),
  synthesized at 1M by max-pooling the real latent rows of each passage's German sentences
  (20k distinct passages, repeated); scored for candidates only, or through an inverted index.
* BM25: bm25s over the recombined passages, tokenized as qa does (stemmed, stop words out,
  each token once per text), from token ids of each pool sentence.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import numpy as np
import scale_data as sd

TOP_TERMS = 128
CANDIDATES = 60
QUERIES = 200


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def _rss() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def _candidates(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.sort(rng.choice(n, CANDIDATES, replace=False))


# ---------------------------------------------------------------- sentence rows


def sentence_rows(corpus: sd.Corpus) -> dict[str, Any]:
    """Score the sentences of 60 candidate passages from a float16 memmap of all sentences."""
    n_rows = len(corpus.ids)
    path = sd.CACHE / f"sentences_f16_{len(corpus)}.npy"
    started = time.perf_counter()
    if not path.exists():
        real = sd.load("pool")["vectors"]
        mean, chol = sd.fit_gaussian(real)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n_rows, 384))
        rng = np.random.default_rng(3)
        for a in range(0, n_rows, 500_000):
            b = min(n_rows, a + 500_000)
            z = rng.standard_normal((b - a, 384), dtype=np.float32)
            x = mean + z @ chol.T
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[a:b] = x.astype(np.float16)
        out.flush()
        del out
    write_s = time.perf_counter() - started
    before = _rss()
    t = time.perf_counter()
    vectors = np.load(path, mmap_mode="r")
    load_s = time.perf_counter() - t
    queries = sd.load("queries")["vectors"][:QUERIES]
    rng = np.random.default_rng(5)
    offsets = corpus.offsets

    def score(q: np.ndarray, cands: np.ndarray) -> np.ndarray:
        parts = [vectors[offsets[c] : offsets[c + 1]] for c in cands]
        lengths = [len(p) for p in parts]
        rows = np.concatenate(parts).astype(np.float32)
        sims = rows @ q
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return np.maximum.reduceat(sims, starts)

    first, second = [], []
    for q in queries:
        cands = _candidates(rng, len(corpus))
        t = time.perf_counter()
        score(q, cands)
        first.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        score(q, cands)
        second.append((time.perf_counter() - t) * 1000)
    after = _rss()
    return {
        "passages": len(corpus),
        "sentences": n_rows,
        "file_gb": round(path.stat().st_size / 1e9, 2),
        "float32_would_be_gb": round(n_rows * 384 * 4 / 1e9, 2),
        "generate_s": round(write_s, 1),
        "load_s": round(load_s, 4),
        "candidates": CANDIDATES,
        "first_touch_p50_ms": _pct(first, 0.5),
        "first_touch_p95_ms": _pct(first, 0.95),
        "warm_p50_ms": _pct(second, 0.5),
        "warm_p95_ms": _pct(second, 0.95),
        "rss_growth_mb": round(after["VmRSS"] - before["VmRSS"], 1),
        "anon_growth_mb": round(after["RssAnon"] - before["RssAnon"], 1),
        "note": "first touch reads from the page cache if the file was just written; "
        "a truly cold disk read adds one random read per candidate passage",
    }


# ---------------------------------------------------------------- latent terms


def _pool_rows(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.concatenate([indices[indptr[r] : indptr[r + 1]] for r in rows])
    val = np.concatenate([values[indptr[r] : indptr[r + 1]] for r in rows])
    order = np.lexsort((-val, idx))
    idx, val = idx[order], val[order]
    first = np.ones(len(idx), bool)
    first[1:] = idx[1:] != idx[:-1]
    idx, val = idx[first], val[first]
    if len(idx) > TOP_TERMS:
        keep = np.argpartition(-val, TOP_TERMS - 1)[:TOP_TERMS]
        idx, val = idx[keep], val[keep]
    keep = np.argsort(idx)
    return idx[keep], val[keep]


def latent_terms(corpus: sd.Corpus, distinct: int = 20_000) -> dict[str, Any]:
    raw = sd.load("pool_latent_de")
    indptr, indices, values = raw["latent_indptr"], raw["latent_indices"], raw["latent_values"]
    n_de = len(indptr) - 1
    german = np.flatnonzero(corpus.languages == "de")[:distinct]
    started = time.perf_counter()
    rows = [_pool_rows(indptr, indices, values, corpus.sentence_ids(int(i))) for i in german]
    assert all(int(corpus.sentence_ids(int(i)).max()) < n_de for i in german[:100])
    pool_s = time.perf_counter() - started
    n = len(corpus)
    rng = np.random.default_rng(11)
    pick = rng.integers(0, len(rows), n)  # each passage gets one of the real pooled rows
    lengths = np.array([len(rows[p][0]) for p in pick], np.int64)
    c_indptr = np.zeros(n + 1, np.int64)
    c_indptr[1:] = np.cumsum(lengths)
    c_indices = np.empty(c_indptr[-1], np.uint16)
    c_values = np.empty(c_indptr[-1], np.float16)
    for i, p in enumerate(pick):
        a, b = c_indptr[i], c_indptr[i + 1]
        c_indices[a:b] = rows[p][0]
        c_values[a:b] = rows[p][1]
    norms = np.sqrt(
        np.bincount(np.repeat(np.arange(n), lengths), c_values.astype(np.float32) ** 2, n)
    ).astype(np.float32)
    nnz = int(c_indptr[-1])
    folder = sd.CACHE / "latent1m"
    folder.mkdir(exist_ok=True)
    for name, array in (
        ("indptr", c_indptr),
        ("indices", c_indices),
        ("values", c_values),
        ("norms", norms),
    ):
        np.save(folder / f"{name}.npy", array)
    del c_indices, c_values
    gc.collect()
    result: dict[str, Any] = {
        "passages": n,
        "distinct_pooled_rows": len(rows),
        "pool_seconds_for_distinct": round(pool_s, 1),
        "nnz_per_chunk_mean": round(nnz / n, 1),
        "csr_top128_uint16_f16_mb": round(nnz * 4 / 2**20 + (n + 1) * 8 / 2**20, 1),
        "csr_current_int32_f32_full_pooled_mb_estimate": None,
    }
    before = _rss()
    t = time.perf_counter()
    m_indptr = np.load(folder / "indptr.npy", mmap_mode="r")
    m_indices = np.load(folder / "indices.npy", mmap_mode="r")
    m_values = np.load(folder / "values.npy", mmap_mode="r")
    m_norms = np.load(folder / "norms.npy", mmap_mode="r")
    result["mmap_load_s"] = round(time.perf_counter() - t, 4)
    q = sd.load("queries_latent")
    q_dense = np.zeros((len(q["rows"]), 16384), np.float32)
    for i in range(len(q["rows"])):
        a, b = q["latent_indptr"][i], q["latent_indptr"][i + 1]
        q_dense[i, q["latent_indices"][a:b]] = q["latent_values"][a:b]
    q_dense /= np.maximum(np.linalg.norm(q_dense, axis=1, keepdims=True), 1e-12)

    def candidates_only(qv: np.ndarray, cands: np.ndarray) -> np.ndarray:
        out = np.empty(len(cands), np.float32)
        for j, c in enumerate(cands):
            a, b = m_indptr[c], m_indptr[c + 1]
            out[j] = m_values[a:b].astype(np.float32) @ qv[m_indices[a:b]]
        return np.asarray(out / np.maximum(m_norms[cands], 1e-12))

    lat = []
    for qv in q_dense[:QUERIES]:
        cands = _candidates(rng, n)
        t = time.perf_counter()
        candidates_only(qv, cands)
        lat.append((time.perf_counter() - t) * 1000)
    result["candidates_only_p50_ms"] = _pct(lat, 0.5)
    result["candidates_only_p95_ms"] = _pct(lat, 0.95)
    result["rss_growth_candidates_only_mb"] = round(_rss()["VmRSS"] - before["VmRSS"], 1)

    # The current design: a dot product with every row (O(all nnz)), twice to be fair to caches.
    all_idx = np.asarray(m_indices)
    all_val = np.asarray(m_values)
    row_ids = np.repeat(np.arange(n, dtype=np.int32), np.diff(np.asarray(m_indptr)))
    full = []
    for qv in q_dense[:3]:
        t = time.perf_counter()
        np.bincount(row_ids, all_val.astype(np.float32) * qv[all_idx], n)
        full.append((time.perf_counter() - t) * 1000)
    result["all_rows_dot_ms"] = [round(x, 1) for x in full]
    del row_ids
    gc.collect()

    # Inverted index: term -> (chunk ids uint32, values float16), from the CSR.
    t = time.perf_counter()
    order = np.argsort(all_idx, kind="stable")
    post_ids = (np.searchsorted(np.asarray(m_indptr), order, side="right") - 1).astype(np.uint32)
    post_vals = all_val[order]
    term_ptr = np.zeros(16385, np.int64)
    term_ptr[1:] = np.cumsum(np.bincount(all_idx, minlength=16384))
    result["inverted_build_s"] = round(time.perf_counter() - t, 1)
    result["inverted_mb"] = round((post_ids.nbytes + post_vals.nbytes + term_ptr.nbytes) / 2**20, 1)
    df = np.diff(term_ptr)
    result["postings_per_term_mean"] = round(float(df.mean()), 1)
    result["postings_per_term_max"] = int(df.max())
    del order, all_idx, all_val
    gc.collect()
    inv_norms = np.asarray(m_norms)

    def inverted(qv: np.ndarray, terms: int | None) -> np.ndarray:
        nz = np.flatnonzero(qv)
        if terms is not None and len(nz) > terms:
            nz = nz[np.argpartition(-qv[nz], terms - 1)[:terms]]
        ids = np.concatenate([post_ids[term_ptr[t] : term_ptr[t + 1]] for t in nz])
        vals = np.concatenate(
            [post_vals[term_ptr[t] : term_ptr[t + 1]].astype(np.float32) * qv[t] for t in nz]
        )
        scores = np.bincount(ids, vals, n) / np.maximum(inv_norms, 1e-12)
        return np.argpartition(-scores, 50)[:50]

    for terms in (None, 64, 32, 16):
        times, overlap = [], []
        for qv in q_dense[:50]:
            t = time.perf_counter()
            top = inverted(qv, terms)
            times.append((time.perf_counter() - t) * 1000)
            if terms is not None:
                exact = inverted(qv, None)
                overlap.append(len(set(top.tolist()) & set(exact.tolist())) / 50)
        key = "all query terms" if terms is None else f"top {terms} query terms"
        result[f"inverted top-50, {key}"] = {
            "p50_ms": _pct(times, 0.5),
            "p95_ms": _pct(times, 0.95),
            "overlap@50_vs_all_terms": round(float(np.mean(overlap)), 4) if overlap else 1.0,
        }
    return result


# ---------------------------------------------------------------- BM25


def _numpy_bm25(
    doc_tokens: list[np.ndarray], n_vocab: int, k1: float = 1.5, b: float = 0.75
) -> dict[str, Any]:
    """bm25s's default (Lucene) score matrix built with numpy: CSC over (docs, vocabulary).

    Same formula as ``bm25s.BM25.index`` with every token once per text (qa's tokenizer
    deduplicates): idf = log(1 + (N - df + 0.5) / (df + 0.5)), tfc = 1 / (k1 (1 - b + b
    l_d / l_avg) + 1). bm25s builds it through Python lists (~3.6 GB at 1M passages here).
    """
    lengths = np.array([len(t) for t in doc_tokens], np.int64)
    docs = np.repeat(np.arange(len(doc_tokens), dtype=np.int32), lengths)
    tokens = np.concatenate(doc_tokens).astype(np.int32)
    n = len(doc_tokens)
    df = np.bincount(tokens, minlength=n_vocab)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    tfc = (1.0 / (k1 * ((1 - b) + b * lengths / lengths.mean()) + 1.0)).astype(np.float32)
    order = np.argsort(tokens, kind="stable")
    data = (idf[tokens[order]] * tfc[docs[order]]).astype(np.float32)
    indices = docs[order]
    indptr = np.zeros(n_vocab + 1, np.int64)
    indptr[1:] = np.cumsum(df)
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": n}


def bm25(corpus: sd.Corpus, *, mmap_check: bool = True) -> dict[str, Any]:
    import logging

    import bm25s

    from qa.index.lexical import tokenize

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    pool = sd.sentence_pool()
    vocab: dict[str, int] = {}
    sentence_tokens = []
    for text, lang in zip(pool.texts, pool.languages, strict=True):
        tokens = tokenize(text, [str(lang)])
        sentence_tokens.append(
            np.array([vocab.setdefault(t, len(vocab)) for t in tokens], np.int32)
        )
    started = time.perf_counter()
    doc_tokens = [
        np.unique(np.concatenate([sentence_tokens[j] for j in corpus.sentence_ids(i)]))
        for i in range(len(corpus))
    ]
    tokenize_s = time.perf_counter() - started
    n_vocab = len(vocab)
    result: dict[str, Any] = {
        "passages": len(corpus),
        "vocabulary": n_vocab,
        "token_ids_s": round(tokenize_s, 1),
        "tokens_per_passage": round(float(np.mean([len(t) for t in doc_tokens])), 1),
    }
    before = _rss()
    started = time.perf_counter()
    scores = _numpy_bm25(doc_tokens, n_vocab)
    result["numpy_matrix_s"] = round(time.perf_counter() - started, 1)
    result["numpy_matrix_peak_growth_mb"] = round(_rss()["VmHWM"] - before["VmRSS"], 1)
    model = bm25s.BM25()
    if len(corpus) <= 100_000:  # bm25s's own build (Python lists) only where memory allows
        ids = [t.tolist() for t in doc_tokens]
        gc.collect()
        before = _rss()
        started = time.perf_counter()
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=dict(vocab)), show_progress=False)
        result["bm25s_index_s"] = round(time.perf_counter() - started, 1)
        result["bm25s_index_peak_growth_mb"] = round(_rss()["VmHWM"] - before["VmRSS"], 1)
        same = all(
            model.scores[k].shape == scores[k].shape
            and np.allclose(model.scores[k], scores[k], atol=1e-5)
            for k in ("indices", "indptr", "data")
        )
        result["numpy_matrix_equals_bm25s"] = bool(same)
        del ids
    model.scores = scores
    model.vocab_dict = {**vocab, "": n_vocab}
    model.unique_token_ids_set = set(model.vocab_dict.values())
    model.nonoccurrence_array = None
    del doc_tokens
    gc.collect()
    result["nnz"] = len(scores["data"])
    result["matrix_mb"] = round(
        sum(scores[k].nbytes for k in ("data", "indices", "indptr")) / 2**20, 1
    )
    folder = sd.CACHE / f"bm25_{len(corpus)}"
    model.save(str(folder))
    result["files_mb"] = round(sum(f.stat().st_size for f in folder.iterdir()) / 2**20, 1)
    del model, scores
    gc.collect()
    qs = sd.questions()
    questions = [q["question_de"] for q in qs[:: max(1, len(qs) // (QUERIES // 2))]][: QUERIES // 2]
    questions += [q["question_en"] for q in qs[:: max(1, len(qs) // (QUERIES // 2))]][
        : QUERIES // 2
    ]
    for mmap in (False, True) if mmap_check else (False,):
        gc.collect()
        before = _rss()
        t = time.perf_counter()
        loaded = bm25s.BM25.load(str(folder), mmap=mmap)
        load_s = time.perf_counter() - t
        after_load = _rss()
        get, argsort, part, retrieve = [], [], [], []
        for question in questions:
            tokens = [t for t in tokenize(question, ("de", "en")) if t in loaded.vocab_dict]
            if not tokens:
                continue
            t = time.perf_counter()
            s = loaded.get_scores(tokens)
            get.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            np.argsort(-s, kind="stable")
            argsort.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            top = np.argpartition(-s, 50)[:50]
            top[np.argsort(-s[top], kind="stable")]
            part.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            loaded.retrieve([tokens], k=50, show_progress=False, n_threads=1)
            retrieve.append((time.perf_counter() - t) * 1000)
        end = _rss()
        result["mmap" if mmap else "in memory"] = {
            "load_s": round(load_s, 3),
            "rss_after_load_mb": round(after_load["VmRSS"] - before["VmRSS"], 1),
            "anon_after_load_mb": round(after_load["RssAnon"] - before["RssAnon"], 1),
            "rss_after_queries_mb": round(end["VmRSS"] - before["VmRSS"], 1),
            "get_scores_p50_ms": _pct(get, 0.5),
            "get_scores_p95_ms": _pct(get, 0.95),
            "argsort_all_p50_ms (qa today)": _pct(argsort, 0.5),
            "argpartition_top50_p50_ms": _pct(part, 0.5),
            "retrieve_k50_p50_ms": _pct(retrieve, 0.5),
            "retrieve_k50_p95_ms": _pct(retrieve, 0.95),
            "queries": len(get),
        }
        del loaded
    os.sync()
    return result
