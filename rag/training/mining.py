"""The in-process first stage used for mining hard negatives and for evaluation.

Same idea as the production graph (Qdrant dense + sparse, fused by reciprocal rank fusion):

- BM25 over ``ingest.sparse.bm25_tokenize`` terms (``BM25Index``; scipy sparse matrix, IDF
  ``ln(1 + (N - df + 0.5) / (df + 0.5))`` as Qdrant's ``IDF`` modifier, k1=1.2, b=0.75),
- MiniLM dense: normalized all-MiniLM-L6-v2 embeddings, dot product (``dense_topk``),
- hybrid: ``rrf`` with k=60 over the two top-``depth`` lists.

Only numpy and torch are imported at module level; ``BM25Index`` imports the tokenizer (nltk) lazily, and
``encode`` imports sentence-transformers lazily, so the dense/RRF part runs on a bare GPU machine.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

RRF_K = 60


class BM25Index:
    """Okapi BM25 over a fixed corpus (list of texts), searched with a sparse matrix product."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        if k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"invalid BM25 parameters k1={k1}, b={b}")
        from scipy import sparse

        from ingest.sparse import bm25_tokenize

        self._tok = bm25_tokenize
        self.vocab: dict[str, int] = {}
        rows, cols, vals, lens = [], [], [], []
        for i, text in enumerate(texts):
            counts: dict[int, int] = {}
            toks = bm25_tokenize(text)
            lens.append(len(toks))
            for t in toks:
                j = self.vocab.setdefault(t, len(self.vocab))
                counts[j] = counts.get(j, 0) + 1
            rows.extend([i] * len(counts))
            cols.extend(counts.keys())
            vals.extend(counts.values())
        n = len(texts)
        tf = sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, len(self.vocab)))
        lens_a = np.asarray(lens, np.float32)
        avg = float(lens_a.mean()) if n else 1.0
        df = np.bincount(tf.indices, minlength=len(self.vocab)).astype(np.float32)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * lens_a / max(avg, 1e-6))
        tf = tf.tocoo()
        w = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * self.idf[tf.col]
        # (terms x docs) so that query_matrix @ self.mat gives (queries x docs)
        self.mat = sparse.csr_matrix((w.astype(np.float32), (tf.col, tf.row)), shape=(len(self.vocab), n))
        self.n_docs = n

    def _queries(self, queries: Sequence[str]):
        from scipy import sparse

        rows, cols = [], []
        for i, q in enumerate(queries):
            ids = {self.vocab[t] for t in self._tok(q) if t in self.vocab}
            rows.extend([i] * len(ids))
            cols.extend(ids)
        return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                 shape=(len(queries), len(self.vocab)))

    def search(self, queries: Sequence[str], k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` doc indices and scores per query (``-1`` pads queries with fewer matches)."""
        k = min(k, self.n_docs)
        idx = np.full((len(queries), k), -1, np.int32)
        sc = np.zeros((len(queries), k), np.float32)
        for s in range(0, len(queries), chunk):
            scores = (self._queries(queries[s:s + chunk]) @ self.mat).toarray()
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            part = np.take_along_axis(scores, top, 1)
            order = np.argsort(-part, axis=1, kind="stable")
            top, part = np.take_along_axis(top, order, 1), np.take_along_axis(part, order, 1)
            top[part <= 0] = -1
            idx[s:s + chunk], sc[s:s + chunk] = top, part
        return idx, sc


@functools.lru_cache(maxsize=2)
def _st_model(model_dir: str, device: str, bf16: bool):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir, device=device,
                               model_kwargs={"dtype": torch.bfloat16} if bf16 else None)


def encode(model_dir: str, texts: Sequence[str], device: str = "cpu", batch_size: int = 128,
           bf16: bool = False) -> np.ndarray:
    """Normalized sentence-transformers embeddings (float32, [n, dim]); ``bf16`` runs the model in bf16."""
    model = _st_model(model_dir, device, bf16)
    emb = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=False)
    return emb.astype(np.float32)


@torch.no_grad()
def dense_topk(q_emb: np.ndarray, d_emb: np.ndarray, k: int, device: str = "cpu",
               chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` by dot product of normalized embeddings: ``(indices int32, scores float32)``."""
    k = min(k, len(d_emb))
    docs = torch.from_numpy(d_emb).to(device)
    idx, sc = [], []
    for s in range(0, len(q_emb), chunk):
        q = torch.from_numpy(q_emb[s:s + chunk]).to(device)
        v, i = torch.topk(q @ docs.T, k, dim=1)
        idx.append(i.int().cpu().numpy())
        sc.append(v.float().cpu().numpy())
    return np.concatenate(idx), np.concatenate(sc)


def rrf(rankings: Sequence[np.ndarray], depth: int, k: int = RRF_K) -> np.ndarray:
    """Reciprocal rank fusion of several ``[n_queries, d]`` index arrays (``-1`` = empty slot).

    Score of a document: ``sum 1 / (k + rank)`` (rank from 1) over the lists that hold it. Returns the
    fused top-``depth`` indices per query, ``-1`` padded; ties keep the order of first appearance.
    """
    n = len(rankings[0])
    out = np.full((n, depth), -1, np.int32)
    for qi in range(n):
        scores: dict[int, float] = {}
        for r in rankings:
            for rank, d in enumerate(r[qi]):
                if d >= 0:
                    scores[int(d)] = scores.get(int(d), 0.0) + 1.0 / (k + rank + 1)
        best = sorted(scores.items(), key=lambda kv: -kv[1])[:depth]
        out[qi, :len(best)] = [d for d, _ in best]
    return out


def to_run(idx: np.ndarray, qids: Sequence[str], doc_ids: Sequence[str],
           scores: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Index arrays -> ranx-style run ``{qid: {docid: score}}`` (rank-derived scores when none given)."""
    run: dict[str, dict[str, float]] = {}
    for qi, q in enumerate(qids):
        row = {}
        for r, d in enumerate(idx[qi]):
            if d >= 0:
                row[doc_ids[d]] = float(scores[qi, r]) if scores is not None else 1.0 / (r + 1 + math.e)
        run[q] = row
    return run
