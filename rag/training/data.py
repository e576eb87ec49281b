"""Dataset loaders for training and evaluation (SQuAD, BEIR SciFact, CoNLL-2003).

All paths are relative to the data root (:func:`evals.datasets.data_dir`, the one lookup: ``$DOCRAG_DATA``,
else ``../shared/data`` next to the repo, else ``/work/shared/data``). Loaders return plain Python structures
and never download anything.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from evals.datasets import data_dir as data_root

REPO_ROOT = Path(__file__).resolve().parents[2]


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8")


# ----------------------------------------------------------------------------------------------- retrieval
@dataclass
class RetrievalSet:
    """A retrieval data set: ``corpus`` id -> text, ``queries`` id -> text, ``qrels`` qid -> {docid: grade}.

    ``answers`` (SQuAD only) maps qid -> answer texts, used to drop false negatives when mining.
    """

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)


def load_squad(path: str | Path, *, answerable_only: bool = True, name: str = "squad",
               articles: int = 0, seed: int = 0) -> RetrievalSet:
    """SQuAD (v1.1 or v2.0 JSON, optionally gzipped) as paragraph retrieval: question -> its paragraph.

    Each paragraph's text is ``record_text(article title, context)``: what the graph embeds and reranks for
    the record ``evals.datasets.squad`` ingests (title = article title with spaces). Paragraph ids are
    ``<article index>-<paragraph index>``; a paragraph text seen twice keeps its first id. ``articles > 0``
    keeps a seeded sample of that many articles (a smaller corpus to encode for mining).
    """
    from ingest.context import record_text

    with _open(Path(path)) as f:
        data = json.load(f)["data"]
    keep = set(range(len(data)))
    if 0 < articles < len(data):
        import random

        keep = set(random.Random(seed).sample(range(len(data)), articles))
    corpus: dict[str, str] = {}
    seen: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, list[str]] = {}
    for ai, art in enumerate(data):
        if ai not in keep:
            continue
        title = art["title"].replace("_", " ")
        for pi, para in enumerate(art["paragraphs"]):
            ctx = para["context"]
            pid = seen.setdefault(ctx, f"{ai}-{pi}")
            corpus.setdefault(pid, record_text(title, ctx))
            for qa in para["qas"]:
                if answerable_only and (qa.get("is_impossible") or not qa.get("answers")):
                    continue
                qid = qa["id"]
                queries[qid] = qa["question"].strip()
                qrels[qid] = {pid: 1}
                answers[qid] = sorted({a["text"] for a in qa.get("answers", [])})
    return RetrievalSet(name, corpus, queries, qrels, answers)


def from_evalset(ds, name: str) -> RetrievalSet:
    """An ``evals.datasets`` retrieval set (the one loader per dataset) as a :class:`RetrievalSet`.

    Corpus texts are ``record_text(title, text)``, the text the graph embeds and reranks.
    """
    from ingest.context import record_text

    corpus = {str(r["source"]): record_text(r.get("title", ""), r["text"]) for r in ds.corpus}
    queries = {c.qid: c.query for c in ds.cases}
    qrels = {c.qid: dict(c.qrels) for c in ds.cases}
    return RetrievalSet(name, corpus, queries, qrels)


def squad_train(articles: int = 0, seed: int = 0) -> RetrievalSet:
    return load_squad(data_root() / "squad" / "train-v1.1.json.gz", name="squad-train", articles=articles, seed=seed)


def squad_dev() -> RetrievalSet:
    """SQuAD 2.0 dev course split (16 articles, none in SQuAD train): answerable questions -> paragraph."""
    return load_squad(data_root() / "squad" / "dev-v2.0.json", name="squad-dev")


def scifact(split: str) -> RetrievalSet:
    """BEIR SciFact through ``evals.datasets.scifact``: ``train`` (minus dev), ``dev``, ``train-all``, ``test``."""
    from evals.datasets import scifact as sf

    return from_evalset(sf.load(data_root(), split), f"scifact-{split}")


def msmarco() -> RetrievalSet:
    """The MS MARCO passage subset with TREC DL 2019 judgments (test only: never trained or tuned on)."""
    from evals.datasets import msmarco as ms

    return from_evalset(ms.load(data_root()), "msmarco-test")


# -------------------------------------------------------------------------------------------------- CoNLL
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def conll(split: str) -> list[tuple[list[str], list[str]]]:
    """``split`` is ``train``, ``testa`` (dev) or ``testb`` (test); sentences ``(tokens, BIO tags)``."""
    from evals.datasets.conll2003 import read_sentences

    return read_sentences(data_root() / "conll2003" / f"eng.{split}.gz")
