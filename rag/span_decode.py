"""Span decoding for extractive question answering (numpy only; shared by the reader component and training).

A BERT QA head gives a start and an end logit per token of a window ``[CLS] question [SEP] context [SEP]``.
A span ``(i, j)`` of context tokens scores ``start[i] + end[j]``; the "no answer" score of the window is
``start[0] + end[0]`` (the ``[CLS]`` token), as in the SQuAD 2.0 recipe of the BERT paper.

``margin = best_span_score - null_score`` is the reader's raw evidence for an answer; the calibrator
(:class:`Calibrator`) maps it (and optionally the reranker's logit) to a probability that the answer is right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Span:
    """A candidate answer: character offsets into the context, logit score, and the window's null score."""

    start: int
    end: int
    score: float
    null_score: float

    @property
    def margin(self) -> float:
        return self.score - self.null_score


def window_spans(start_logits: np.ndarray, end_logits: np.ndarray, offsets: Sequence[tuple[int, int]],
                 context_mask: np.ndarray, max_answer_tokens: int = 30, top_n: int = 5) -> list[Span]:
    """The ``top_n`` best spans of one window, best first.

    :param start_logits: ``[L]`` start logits.
    :param end_logits: ``[L]`` end logits.
    :param offsets: ``[L]`` character ``(start, end)`` of each token in the context.
    :param context_mask: ``[L]`` True for tokens of the context (not question, special or padding tokens).
    :param max_answer_tokens: longest span in tokens.
    :param top_n: how many spans to return.
    """
    s = np.asarray(start_logits, dtype=np.float32)
    e = np.asarray(end_logits, dtype=np.float32)
    null = float(s[0] + e[0])
    ctx = np.flatnonzero(np.asarray(context_mask, dtype=bool))
    if len(ctx) == 0:
        return []
    cs, ce = s[ctx], e[ctx]
    n = len(ctx)
    scores = cs[:, None] + ce[None, :]
    i_idx, j_idx = np.indices((n, n))
    valid = (j_idx >= i_idx) & (j_idx - i_idx < max_answer_tokens)
    scores = np.where(valid, scores, -np.inf)
    flat = scores.ravel()
    k = min(top_n, int(valid.sum()))
    if k <= 0:
        return []
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    out = []
    for t in top:
        i, j = divmod(int(t), n)
        a, b = offsets[ctx[i]][0], offsets[ctx[j]][1]
        if b > a:
            out.append(Span(start=int(a), end=int(b), score=float(flat[t]), null_score=null))
    return out


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -60 else 0.0


@dataclass
class Calibrator:
    """Platt scaling: ``p = sigmoid(a * margin + b * rerank + c)``; ``threshold`` is the answer/decline cut.

    Fitted on the SQuAD 2.0 course split (never on the test articles) by :func:`fit_platt`.
    """

    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    threshold: float = 0.5

    def probability(self, margin: float, rerank: float = 0.0) -> float:
        return sigmoid(self.a * margin + self.b * rerank + self.c)

    def to_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "c": self.c, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> Calibrator:
        return cls(**{k: float(d[k]) for k in ("a", "b", "c", "threshold") if k in d})


def fit_platt(x: np.ndarray, y: np.ndarray, iters: int = 500, l2: float = 1e-3) -> np.ndarray:
    """Logistic regression by Newton's method. ``x``: ``[n, d]`` features, ``y``: ``[n]`` 0/1 labels.

    Returns the weights ``[d + 1]`` (last = intercept).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    y = np.asarray(y, dtype=np.float64)
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -60, 60)))
        g = xb.T @ (p - y) + l2 * w
        h = (xb * (p * (1 - p))[:, None]).T @ xb + l2 * np.eye(len(w))
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def reliability(probs: Sequence[float], labels: Sequence[int], bins: int = 10) -> dict:
    """Reliability table and expected calibration error (equal-width bins)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    rows, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        m = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        if not m.any():
            continue
        conf, acc = float(p[m].mean()), float(y[m].mean())
        ece += m.sum() / len(p) * abs(conf - acc)
        rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()), "confidence": round(conf, 4),
                     "accuracy": round(acc, 4)})
    return {"ece": round(float(ece), 4), "bins": rows}
