"""Chunk size / overlap against sentence-window retrieval and the title prefix (issue 14, part 3).

``python -m evals.chunk_study [--scifact_queries=N --squad_questions=N --out=PATH]`` (heavy: run it under
``flock /tmp/docrag-heavy.lock``; the sizes below keep it to minutes on 2 cores).

Each configuration turns the same records into retrieval units and measures, in process:

- ``chunk-S/O``: the product chunker (``ingest.chunk.ElementChunker(S, O)``) over the record as one
  NarrativeText element; each chunk is embedded, BM25-indexed and reranked as ``embedded_text(context header,
  chunk)``, exactly as the indexing graph does; ``-noprefix`` leaves the header (the record title) out.
- ``sentwin-W``: every sentence (``rag.text.split_sentences``) is one unit, embedded and BM25-indexed with the
  header; what the reranker and the reader get is the window of ``W`` sentences either side (with the header).

First stage: BM25 (``rag.training.mining.BM25Index``, our tokenizer) and all-MiniLM-L6-v2 dense, top-100 each,
RRF k=2 (the product's fusion defaults); the shipped cross-encoder reorders the first ``RERANK_DEPTH`` units.
Chunk hits collapse to their record for the document metrics (``evals.metrics.doc_run``).

Sets (selection-safe): SciFact **dev** claims (the seeded fifth of train; never test) over a sample corpus
(their cited abstracts, the BM25 top-``DISTRACTORS`` of each claim, ``RANDOM_DOCS`` random abstracts), and
answerable questions of the SQuAD 2.0 dev course split over all its 646 paragraphs. For SQuAD the answer side
is measured as what a reader could use: ``ctx@k`` = share of questions whose gold answer text is inside the
top-``k`` reranked units handed on (windows merged when they overlap), and ``words@k`` = mean words of that
context.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

SCIFACT_QUERIES = 120
SQUAD_QUESTIONS = 300
DISTRACTORS = 15
RANDOM_DOCS = 400
SQUAD_RECORDS = 0  # smoke runs only: paragraphs kept besides the gold ones (0 = all 646)
RERANK_DEPTH = 20
DEPTH = 100
RRF_K = 2
SEED = 0
CONFIGS = ("chunk-180/30", "chunk-180/30-noprefix", "chunk-120/20", "chunk-256/40", "sentwin-1", "sentwin-2")
SETS = "scifact-dev,squad-dev"
OUT = "evals/reports/chunk_study.json"

logger = logging.getLogger("evals.chunk_study")


def _sets(root: Path, cfg: dict) -> dict[str, dict[str, Any]]:
    """``{name: {records, queries: {qid: text}, qrels, answers}}`` for SciFact dev and the SQuAD course split."""
    from evals.datasets import scifact, squad
    from rag.training.mining import BM25Index

    rng = random.Random(cfg["seed"])
    sf = scifact.load(root, "dev")
    cases = sf.cases if len(sf.cases) <= cfg["scifact_queries"] else rng.sample(sf.cases, cfg["scifact_queries"])
    by_id = {str(r["source"]): r for r in sf.corpus}
    ids = list(by_id)
    keep = {d for c in cases for d in c.qrels}
    bm = BM25Index([f"{by_id[i].get('title', '')}\n{by_id[i]['text']}" for i in ids])
    top, _ = bm.search([c.query for c in cases], cfg["distractors"])
    keep.update(ids[d] for row in top for d in row if d >= 0)
    keep.update(rng.sample(ids, min(cfg["random_docs"], len(ids))))
    out = {"scifact-dev": {"records": [by_id[i] for i in ids if i in keep],
                           "queries": {c.qid: c.query for c in cases},
                           "qrels": {c.qid: dict(c.qrels) for c in cases}, "answers": {}}}
    sq = squad.load(root)
    qa = [c for c in sq.cases if not c.is_impossible and c.answers]
    qa = sorted(rng.sample(qa, min(cfg["squad_questions"], len(qa))), key=qa.index)
    gold = {c.source for c in qa}
    recs = [r for i, r in enumerate(sq.corpus) if not cfg["squad_records"] or i < cfg["squad_records"]
            or r["source"] in gold]
    out["squad-dev"] = {"records": recs, "queries": {c.qid: c.question for c in qa},
                        "qrels": {c.qid: {c.source: 1} for c in qa}, "answers": {c.qid: list(c.answers) for c in qa}}
    return out


def units(records: list[dict[str, Any]], config: str) -> list[dict[str, Any]]:
    """Retrieval units of ``records`` under ``config``: ``source``, ``index`` (embedded and BM25 text),
    ``passage`` (what the reranker and reader see) and, for sentence windows, ``span`` (sentence range)."""
    from haystack import Document

    from ingest.chunk import ElementChunker
    from ingest.context import CONTEXT_FIELD, context_header, embedded_text, record_meta
    from rag.text import split_sentences

    out: list[dict[str, Any]] = []
    if config.startswith("sentwin-"):
        w = int(config.split("-")[1])
        for r in records:
            header = context_header(record_meta(r.get("title", "")))
            sents = [s for _, s in split_sentences(r["text"])] or [r["text"]]
            for i, s in enumerate(sents):
                lo, hi = max(0, i - w), min(len(sents), i + w + 1)
                out.append({"source": str(r["source"]), "index": embedded_text(header, s),
                            "passage": embedded_text(header, " ".join(sents[lo:hi])), "span": (lo, hi),
                            "sents": sents})
        return out
    size, overlap = (int(x) for x in config.split("-")[1].split("/"))
    prefix = not config.endswith("-noprefix")
    elements = [Document(content=r["text"], meta={"source": str(r["source"]), "file_name": str(r["source"]),
                                                  **record_meta(r.get("title", "")), "category": "NarrativeText",
                                                  "page_number": None}) for r in records]
    for c in ElementChunker(chunk_size=size, chunk_overlap=overlap).run(documents=elements)["documents"]:
        text = embedded_text(c.meta.get(CONTEXT_FIELD, "") if prefix else "", c.content)
        out.append({"source": c.meta["source"], "index": text, "passage": text})
    return out


def _handed_on(order: list[int], us: list[dict[str, Any]], k: int) -> list[str]:
    """The texts of the top-``k`` distinct passages (a sentence window inside one already taken is skipped,
    overlapping windows of one record are merged)."""
    taken: list[dict[str, Any]] = []
    for i in order:
        u = us[i]
        if "span" in u:
            same = next((t for t in taken if t["source"] == u["source"] and u["span"][0] < t["span"][1]
                         and t["span"][0] < u["span"][1]), None)
            if same is not None:
                same["span"] = (min(same["span"][0], u["span"][0]), max(same["span"][1], u["span"][1]))
                continue
            taken.append({"source": u["source"], "span": u["span"], "sents": u["sents"], "head": u["passage"]})
        else:
            taken.append({"source": u["source"], "text": u["passage"]})
        if len(taken) == k:
            break
    texts = []
    for t in taken:
        if "span" in t:
            head = t["head"].split("\n", 1)[0] if "\n" in t["head"] else ""
            body = " ".join(t["sents"][t["span"][0]:t["span"][1]])
            texts.append(f"{head}\n{body}" if head else body)
        else:
            texts.append(t["text"])
    return texts


_EMB: dict[str, Any] = {}  # text -> embedding, shared by the configurations (sentence windows share units)


def _embed(encoder: str, texts: list[str]):
    import numpy as np

    from rag.training.mining import encode

    new = list(dict.fromkeys(t for t in texts if t not in _EMB))
    if new:
        _EMB.update(zip(new, encode(encoder, new, batch_size=64, bf16=True)))
    return np.stack([_EMB[t] for t in texts])


def measure(name: str, s: dict[str, Any], config: str, encoder: str, ce: Any, cfg: dict) -> dict[str, Any]:
    import numpy as np

    from evals.metrics import contains_answer, doc_run, ranking_metrics
    from rag.training.mining import BM25Index, dense_topk, rrf

    t0 = time.time()
    us = units(s["records"], config)
    qids = list(s["queries"])
    queries = [s["queries"][q] for q in qids]
    texts = [u["index"] for u in us]
    b_idx, _ = BM25Index(texts).search(queries, cfg["depth"])
    d_idx, _ = dense_topk(_embed(encoder, queries), _embed(encoder, texts), cfg["depth"])
    hyb = rrf([b_idx, d_idx], cfg["depth"], cfg["rrf_k"])
    runs: dict[str, dict[str, dict[str, float]]] = {"hybrid": {}, "hybrid+rerank": {}}
    answer = {f"ctx@{k}": 0.0 for k in (1, 2, 3)} | {f"words@{k}": 0.0 for k in (1, 2, 3)}
    for qi, q in enumerate(qids):
        order = [int(d) for d in hyb[qi] if d >= 0]
        runs["hybrid"][q] = doc_run([(us[d]["source"], None) for d in order])
        head = order[: cfg["rerank_depth"]]
        sc = ce.predict([(queries[qi], us[d]["passage"]) for d in head], batch_size=32, show_progress_bar=False)
        reranked = [head[j] for j in np.argsort(-np.asarray(sc), kind="stable")] + order[len(head):]
        runs["hybrid+rerank"][q] = doc_run([(us[d]["source"], None) for d in reranked])
        if s["answers"]:
            for k in (1, 2, 3):
                ctx = _handed_on(reranked, us, k)
                answer[f"ctx@{k}"] += contains_answer("\n".join(ctx), s["answers"][q])
                answer[f"words@{k}"] += sum(len(t.split()) for t in ctx)
    res: dict[str, Any] = {"units": len(us), "mean_unit_words": round(float(np.mean([len(t.split()) for t in texts])), 1)}
    for run_name, run in runs.items():
        m = ranking_metrics(s["qrels"], run, ("ndcg@10", "recall@10", "recall@100"))
        res[run_name] = {k: round(v, 4) for k, v in m.items()}
    if s["answers"]:
        res["answers"] = {k: round(v / len(qids), 3 if k.startswith("ctx") else 1) for k, v in answer.items()}
    res["seconds"] = round(time.time() - t0, 1)
    logger.info("%s %s: %s", name, config, res)
    return res


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table the README shows."""
    rows = ["| set | config | units | words/unit | hybrid nDCG@10 | +rerank nDCG@10 | hybrid R@100 | ctx@1 | ctx@2 "
            "| words@2 |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, per in results.items():
        for config, r in per.items():
            a = r.get("answers") or {}
            rows.append(f"| {name} | {config} | {r['units']} | {r['mean_unit_words']} | {r['hybrid']['ndcg@10']:.4f} "
                        f"| {r['hybrid+rerank']['ndcg@10']:.4f} | {r['hybrid']['recall@100']:.4f} "
                        f"| {a.get('ctx@1', '')} | {a.get('ctx@2', '')} | {a.get('words@2', '')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from rag.training.common import base_model_dir, parse_overrides

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    defaults = {k.lower(): v for k, v in globals().items() if k.isupper() and isinstance(v, (int, str))}
    defaults["configs"] = ",".join(CONFIGS)
    try:
        cfg = parse_overrides(defaults, sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from sentence_transformers import CrossEncoder

    from evals.datasets import data_dir
    from rag.models import resolve_reranker

    sets = _sets(data_dir(), cfg)
    encoder = base_model_dir()
    ce = CrossEncoder(resolve_reranker().path, device="cpu", max_length=256)
    results: dict[str, dict[str, Any]] = {}
    sets = {n: s for n, s in sets.items() if n in cfg["sets"].split(",")}
    for name, s in sets.items():
        results[name] = {c: measure(name, s, c, encoder, ce, cfg) for c in cfg["configs"].split(",")}
    meta = {"sets": {n: {"queries": len(s["queries"]), "records": len(s["records"])} for n, s in sets.items()},
            "params": cfg}
    Path(cfg["out"]).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg["out"]).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
