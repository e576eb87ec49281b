"""Quality gate of the CPU runtime: ONNX Runtime (int8 or fp32), or torch in bf16, against fp32 torch on the
same inputs.

``python -m evals.runtime_gate [--variant int8|fp32|bf16] [--queries 300] [--distractors 700] [--rerank-queries 100]``

- **embedder**: cosine of every SciFact document embedding to fp32 torch (min, p1, mean), and dense nDCG@10
  on SciFact test (queries and documents embedded by the same runtime; corpus = every judged document plus
  the first ``--distractors`` others, so both runtimes rank the same corpus);
- **reranker**: nDCG@10 of the cross-encoder re-ordering the same top-10 dense candidates (from torch) of the
  first ``--rerank-queries`` SciFact test queries;
- **ner**: entity F1 (seqeval) on the first ``--sentences`` CoNLL-2003 testb sentences;
- **reader**: SQuAD 2.0 F1 of the extractive reader on the gold paragraph of ``--reader-questions`` questions of the
  calibration articles (``squad-calib``; never the test articles), the shipped gold-paragraph threshold applied.

A model passes when cosine min >= 0.99 (embedder) and its metric is at most 0.005 below torch. JSON to stdout and
``evals/reports/runtime-gate-<variant>.json``. The chosen variants live in ``rag.models.ONNX_VARIANTS`` (ONNX)
and ``rag.models.BF16_CPU_KINDS`` (bf16 on CPUs with native bf16).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals import datasets as dsets
from evals import metrics

REPO = Path(__file__).resolve().parent.parent
MAX_DELTA = 0.005
MIN_COSINE = 0.99


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Row-wise cosine of two embedding matrices: min, 1st percentile and mean."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = (a * b).sum(1)
    return {"min": round(float(c.min()), 5), "p1": round(float(np.percentile(c, 1)), 5),
            "mean": round(float(c.mean()), 5), "n": len(c)}


def _candidate(variant: str) -> str:
    """The name of the runtime under test: ``onnx`` (int8/fp32 export) or ``bf16`` (torch in bf16)."""
    return "bf16" if variant == "bf16" else "onnx"


def _load(kind: str, backend: str, variant: str) -> Any:
    """The default embedder (``SentenceTransformer``) or reranker (``CrossEncoder``) on torch fp32, torch bf16
    (``backend`` bf16) or ONNX."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from rag import models

    cls = SentenceTransformer if kind == "embedder" else CrossEncoder
    resolved = models.resolve_default(kind)
    if backend == "torch":
        return cls(resolved.path, device="cpu")
    if backend == "bf16":
        return cls(resolved.path, device="cpu", model_kwargs={"dtype": "bfloat16"})
    from rag.onnx_runtime import export_onnx

    return cls(str(export_onnx(resolved.path, models.ONNX_TASKS[kind], variant)), device="cpu",
               trust_remote_code=True)


def _gate(ours: float, ref: float, name: str) -> dict[str, Any]:
    """One-sided: the candidate's (``name``) metric may be at most ``MAX_DELTA`` below fp32 torch (a gain is no
    quality cost)."""
    return {"torch": round(ref, 4), name: round(ours, 4), "delta": round(ours - ref, 4),
            "pass": ours >= ref - MAX_DELTA}


def gate_retrieval(args: argparse.Namespace) -> dict[str, Any]:
    ds = dsets.load("scifact", args.data_dir, limit=args.queries)
    judged = {d for c in ds.cases for d in c.qrels}
    docs = [r for r in ds.corpus if r["source"] in judged]
    docs += [r for r in ds.corpus if r["source"] not in judged][: args.distractors]
    texts = [(r["title"] + "\n" + r["text"]).strip() for r in docs]
    ids = [r["source"] for r in docs]
    queries = [c.query for c in ds.cases]
    qrels = {c.qid: c.qrels for c in ds.cases}
    out: dict[str, Any] = {"corpus": len(texts), "queries": len(queries)}
    emb: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cand = _candidate(args.variant)
    for backend in ("torch", cand):
        model = _load("embedder", backend, args.variant)
        t0 = time.perf_counter()
        d = model.encode(texts, batch_size=64, normalize_embeddings=True)
        out[f"{backend}_docs_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
        emb[backend] = (d, model.encode(queries, batch_size=64, normalize_embeddings=True))
    runs: dict[str, dict[str, dict[str, float]]] = {}
    for backend, (d, q) in emb.items():
        top = np.argsort(-(q @ d.T), axis=1)[:, :100]
        runs[backend] = {c.qid: {ids[j]: float(100 - r) for r, j in enumerate(row)} for c, row in zip(ds.cases, top)}
    out["cosine"] = cosine_stats(emb[cand][0], emb["torch"][0])
    ndcg = {b: metrics.ranking_metrics(qrels, runs[b], ["ndcg@10"])["ndcg@10"] for b in runs}
    out["dense_ndcg@10"] = _gate(ndcg[cand], ndcg["torch"], cand)
    out["pass"] = out["dense_ndcg@10"]["pass"] and out["cosine"]["min"] >= MIN_COSINE
    # reranker: the same torch top-10 candidates for both runtimes
    by_id = dict(zip(ids, texts, strict=True))
    cases = ds.cases[: args.rerank_queries]
    pairs, owners = [], []
    for c in cases:
        for doc in list(runs["torch"][c.qid])[:10]:
            pairs.append((c.query, by_id[doc]))
            owners.append((c.qid, doc))
    rr: dict[str, Any] = {"queries": len(cases), "pairs": len(pairs)}
    rruns: dict[str, dict[str, dict[str, float]]] = {}
    for backend in ("torch", cand):
        model = _load("reranker", backend, args.variant)
        t0 = time.perf_counter()
        scores = model.predict(pairs, batch_size=32, activation_fn=None)
        rr[f"{backend}_pairs_per_s"] = round(len(pairs) / (time.perf_counter() - t0), 1)
        run: dict[str, dict[str, float]] = {}
        for (qid, doc), s in zip(owners, scores, strict=True):
            run.setdefault(qid, {})[doc] = float(s)
        rruns[backend] = run
    sub = {c.qid: c.qrels for c in cases}
    rndcg = {b: metrics.ranking_metrics(sub, rruns[b], ["ndcg@10"])["ndcg@10"] for b in rruns}
    rr["rerank_ndcg@10"] = _gate(rndcg[cand], rndcg["torch"], cand)
    rr["pass"] = rr["rerank_ndcg@10"]["pass"]
    return {"embedder": out, "reranker": rr}


def gate_ner(args: argparse.Namespace) -> dict[str, Any]:
    from rag import models
    from rag.components.entity_extractor import DocumentEntityExtractor
    from rag.onnx_runtime import export_onnx

    ds = dsets.load("conll2003", args.data_dir, limit=args.sentences)
    texts = [" ".join(c.tokens) for c in ds.cases]
    gold = [list(c.tags) for c in ds.cases]
    path = models.resolve_ner().path
    out: dict[str, Any] = {"sentences": len(texts)}
    f1 = {}
    cand = _candidate(args.variant)
    for backend in ("torch", cand):
        on_onnx = backend == "onnx"
        model = str(export_onnx(path, "token-classification", args.variant)) if on_onnx else path
        ext = DocumentEntityExtractor(backend="transformers", model=model, runtime="onnx" if on_onnx else "torch",
                                      dtype="bf16" if backend == "bf16" else "fp32", numeric_from_spacy=False)
        ext.warm_up()
        t0 = time.perf_counter()
        spans = [s for i in range(0, len(texts), 256) for s in ext.extract(texts[i:i + 256])]
        out[f"{backend}_sentences_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
        pred = [metrics.spans_to_iob2(c.tokens, s) for c, s in zip(ds.cases, spans, strict=True)]
        f1[backend] = metrics.ner_metrics(gold, pred)["f1"]
    out["f1"] = _gate(f1[cand], f1["torch"], cand)
    out["pass"] = out["f1"]["pass"]
    return {"ner": out}


def gate_reader(args: argparse.Namespace) -> dict[str, Any]:
    from haystack import Document

    from rag import models
    from rag.components.extractive_reader import ExtractiveReader
    from rag.onnx_runtime import export_onnx
    from rag.training.reader import squad2_metrics

    ev = dsets.load("squad-calib", args.data_dir, limit=args.reader_questions, seed=0)
    text = {r["source"]: r["text"] for r in ev.corpus}
    path = models.resolve_reader().path
    cal = models.reader_calibration(protocol="gold_paragraph")
    out: dict[str, Any] = {"questions": len(ev.cases), "set": "squad-calib (gold paragraph)"}
    f1 = {}
    cand = _candidate(args.variant)
    for backend in ("torch", cand):
        model = str(export_onnx(path, "question-answering", args.variant)) if backend == "onnx" else path
        reader = ExtractiveReader(model=model, top_k=1, calibration=cal, dtype="bf16" if backend == "bf16" else "fp32")
        reader.warm_up()
        preds, t0 = [], time.perf_counter()
        for c in ev.cases:
            best = reader.run(query=c.question, documents=[Document(content=text[c.source])])["answers"][0]
            preds.append({"impossible": c.is_impossible, "golds": list(c.answers), "text": best.data or "",
                          "score": best.score})
        out[f"{backend}_questions_per_s"] = round(len(preds) / (time.perf_counter() - t0), 1)
        f1[backend] = squad2_metrics(preds, [p["score"] >= cal["threshold"] and bool(p["text"]) for p in preds])["f1"]
    out["f1"] = _gate(f1[cand], f1["torch"], cand)
    out["pass"] = out["f1"]["pass"]
    return {"reader": out}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.runtime_gate", description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=["int8", "fp32", "bf16"], default="int8")
    p.add_argument("--only", choices=["retrieval", "ner", "reader"], default=None)
    p.add_argument("--reader-questions", type=int, default=400)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--distractors", type=int, default=700)
    p.add_argument("--rerank-queries", type=int, default=100)
    p.add_argument("--sentences", type=int, default=1000)
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    report: dict[str, Any] = {"variant": args.variant, "max_delta": MAX_DELTA, "min_cosine": MIN_COSINE}
    if args.only in (None, "retrieval"):
        report.update(gate_retrieval(args))
    if args.only in (None, "ner"):
        report.update(gate_ner(args))
    if args.only in (None, "reader"):
        report.update(gate_reader(args))
    report["seconds"] = round(time.perf_counter() - t0, 1)
    from evals.report import machine

    report["machine"] = machine()
    text = json.dumps(report, indent=2)
    suffix = f"-{args.only}" if args.only else ""
    path = REPO / "evals" / "reports" / f"runtime-gate-{args.variant}{suffix}.json"
    path.write_text(text + "\n")
    print(text)
    return 0 if all(v.get("pass", True) for v in report.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
