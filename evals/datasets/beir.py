"""BEIR layout (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) -> ``EvalSet[RetrievalCase]``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from evals.datasets import EvalSet, RetrievalCase


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (set DOCRAG_DATA to the shared data folder)")
    return path


def load_beir(name: str, folder: Path, split: str = "test", limit: int | None = None) -> EvalSet[RetrievalCase]:
    """Judged queries of ``split`` in file order (the first ``limit`` when given) and the whole corpus.

    This is the one BEIR loader: the evals ingest its ``corpus`` records (``source``, ``text``, ``title``)
    with ``DocRAG.ingest_records``, and training (``rag.training.data``) turns each record into the text
    the graph embeds and reranks with ``ingest.context.record_text(title, text)``.
    """
    corpus_f, queries_f, qrels_f = (_need(folder / "corpus.jsonl"), _need(folder / "queries.jsonl"),
                                    _need(folder / "qrels" / f"{split}.tsv"))
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_f, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)  # header: query-id corpus-id score
        for qid, did, score in rows:
            if int(score) > 0:
                qrels.setdefault(qid, {})[did] = int(score)
    cases = []
    with open(queries_f, encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in qrels:
                cases.append(RetrievalCase(qid=q["_id"], query=q["text"], qrels=qrels[q["_id"]]))
    if limit:
        cases = cases[:limit]
    corpus = []
    with open(corpus_f, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            corpus.append({"source": d["_id"], "text": d["text"], "title": d.get("title") or ""})
    return EvalSet(name=name, split=split, cases=cases, corpus=corpus, files=[corpus_f, queries_f, qrels_f])
