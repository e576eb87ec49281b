"""Which hybrid fusion keeps recall: per-side candidate depth, RRF constant, RRF vs DBSF, on dev data only.

``python -m rag.training.fusion --work_dir=W`` reads the first-stage lists the reranker's prepare stage wrote
(``W/retrieval.json.gz``: BM25 and MiniLM dense top-100 with scores over ``record_text`` passages, the
text the graph embeds) and evaluates, on SciFact train, SciFact dev and SQuAD dev (never a test split):

- ``rrf k=K side=N``: reciprocal rank fusion of each side's top-N (Qdrant's prefetch limit; N=10 is what
  qdrant-haystack's hybrid query fetched, as its prefetches set no limit and Qdrant's default is 10);
- ``dbsf side=N``: distribution-based score fusion (each side's scores scaled by mean +- 3 sd, summed),
  as Qdrant's ``Fusion.DBSF``.

It prints a table and writes ``evals/reports/fusion-dev.json``. Document level (one record = one passage).
``--build=squad-dev,scifact-dev`` computes the lists itself (dense encoding on CPU) instead of reading them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SETS = ("scifact-train", "scifact-dev", "squad-dev")
SIDES = (10, 20, 50, 100)
RRF_KS = (2, 60)
OUT = Path(__file__).resolve().parents[2] / "evals" / "reports" / "fusion-dev.json"


def rrf_scores(lists: list[list[int]], k: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for lst in lists:
        for r, d in enumerate(lst):
            if d >= 0:
                out[d] = out.get(d, 0.0) + 1.0 / (k + r + 1)
    return out


def dbsf_scores(lists: list[tuple[list[int], list[float]]]) -> dict[int, float]:
    out: dict[int, float] = {}
    for ids, sc in lists:
        pairs = [(d, s) for d, s in zip(ids, sc) if d >= 0]
        if not pairs:
            continue
        v = np.asarray([s for _, s in pairs], dtype=np.float64)
        lo, hi = v.mean() - 3 * v.std(), v.mean() + 3 * v.std()
        for d, s in pairs:
            out[d] = out.get(d, 0.0) + (float(np.clip((s - lo) / max(hi - lo, 1e-9), 0, 1)))
    return out


def _run(s: dict, ids: list[str], method: str, side: int, k: int = 60) -> dict[str, dict[str, float]]:
    run = {}
    for qi, q in enumerate(s["qids"]):
        b, d = s["bm25"][qi][:side], s["dense"][qi][:side]
        if method == "rrf":
            sc = rrf_scores([b, d], k)
        elif method == "dbsf":
            sc = dbsf_scores([(b, s["bm25_scores"][qi][:side]), (d, s["dense_scores"][qi][:side])])
        elif method == "bm25":
            sc = {x: 1000.0 - r for r, x in enumerate(b) if x >= 0}
        else:
            sc = {x: 1000.0 - r for r, x in enumerate(d) if x >= 0}
        top = sorted(sc.items(), key=lambda kv: -kv[1])[:100]
        run[q] = {ids[x]: float(v) for x, v in top}
    return run


def study(prep: dict) -> dict[str, dict[str, dict[str, float]]]:
    from ranx import Qrels, Run, evaluate

    res: dict[str, dict[str, dict[str, float]]] = {}
    for name in SETS:
        if name not in prep["sets"]:
            continue
        s = prep["sets"][name]
        ids = prep["corpora"][s["corpus"]]["ids"]
        qrels = Qrels(s["qrels"])
        configs = {"bm25": ("bm25", 100, 0), "dense": ("dense", 100, 0)}
        for side in SIDES:
            for k in RRF_KS:
                configs[f"rrf k={k} side={side}"] = ("rrf", side, k)
            configs[f"dbsf side={side}"] = ("dbsf", side, 0)
        res[name] = {}
        for label, (method, side, k) in configs.items():
            m = evaluate(qrels, Run(_run(s, ids, method, side, k)), ["ndcg@10", "recall@100"])
            res[name][label] = {kk: round(float(v), 4) for kk, v in m.items()}
    return res


def build(names: list[str], work: Path) -> dict:
    """First-stage lists (BM25 and dense top-100 with scores) for dev sets, without the reranker's prepare
    stage; corpus embeddings are cached in ``work`` as ``emb-<corpus>-<n>.npy`` (the prepare stage's names)."""
    from rag.training import data
    from rag.training.common import base_model_dir
    from rag.training.mining import BM25Index, dense_topk, encode

    loaders = {"squad-dev": ("squad-dev", data.squad_dev), "scifact-dev": ("scifact", lambda: data.scifact("dev")),
               "scifact-train": ("scifact", lambda: data.scifact("train"))}
    prep: dict = {"corpora": {}, "sets": {}}
    for name in names:
        corpus, load = loaders[name]
        rs = load()
        ids, texts = list(rs.corpus), list(rs.corpus.values())
        prep["corpora"][corpus] = {"ids": ids}
        cache = work / f"emb-{corpus}-{len(texts)}.npy"
        emb = np.load(cache) if cache.is_file() else encode(base_model_dir(), texts, bf16=True)
        work.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb)
        qids = list(rs.queries)
        queries = [rs.queries[q] for q in qids]
        b_idx, b_sc = BM25Index(texts).search(queries, 100)
        d_idx, d_sc = dense_topk(encode(base_model_dir(), queries, bf16=True), emb, 100)
        prep["sets"][name] = {"corpus": corpus, "qids": qids, "qrels": {q: rs.qrels[q] for q in qids},
                              "bm25": b_idx.tolist(), "bm25_scores": b_sc.tolist(),
                              "dense": d_idx.tolist(), "dense_scores": d_sc.tolist()}
    return prep


def main(argv: list[str] | None = None) -> int:
    from rag.training.common import read_json

    args = dict(a[2:].split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if a.startswith("--"))
    work = Path(args.get("work_dir", ".carry/reranker"))
    if args.get("build"):
        prep = build(args["build"].split(","), work)
    else:
        prep = read_json(work / "retrieval.json.gz")
    res = study(prep)
    for name, rows in res.items():
        print(f"\n{name}\n| config | nDCG@10 | R@100 |\n| --- | --- | --- |")
        for label, m in rows.items():
            print(f"| {label} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} |")
    out = Path(args.get("out", OUT))
    out.write_text(json.dumps({"about": __doc__.split("\n")[0], "results": res}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
