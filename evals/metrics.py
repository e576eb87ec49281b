"""Pure metric functions -> ``dict[str, float]``. Library code where a well-kept one exists.

- Ranking: ranx (``ranking_metrics``), doc-level runs built from chunk hits with :func:`doc_run`.
- Answers: the official SQuAD 2.0 normalisation, exact match and token F1 (``squad_*``), re-implemented
  from ``evaluate-v2.0.py`` because no maintained package ships them without a heavy dependency.
- NER: seqeval entity-level F1 (IOB2, strict); summaries: rouge-score ROUGE-1/2/L F-measures.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

from rag.text import CITATION_MARK, normalize_answer, strip_citations  # noqa: F401 - re-exported

# --- ranking ------------------------------------------------------------------------------------------
RANKING_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


def doc_run(hits: Iterable[tuple[str, float | None]], k: int | None = None) -> dict[str, float]:
    """Collapse ranked chunk hits ``(doc_id, score)`` to documents: first occurrence (= max) wins.

    Scores are rewritten as descending ranks (``n, n-1, ...``) so ties and mixed score scales (e.g. a reranked
    head followed by a retrieval tail) cannot reorder the list in ranx.
    """
    order: list[str] = []
    seen: set[str] = set()
    for doc, _score in hits:
        if doc not in seen:
            seen.add(doc)
            order.append(doc)
    if k is not None:
        order = order[:k]
    n = len(order)
    return {doc: float(n - i) for i, doc in enumerate(order)}


def ranking_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                    metrics: Sequence[str] = RANKING_METRICS) -> dict[str, float]:
    """Mean ranking metrics over the queries of ``qrels`` (a query missing from ``run`` scores 0), via ranx.

    :param qrels: ``{qid: {doc_id: grade}}`` with grades >= 1.
    :param run: ``{qid: {doc_id: score}}``, higher is better.
    """
    from ranx import Qrels, Run, evaluate

    run = {q: (run.get(q) or {}) for q in qrels}
    empty = [q for q, docs in run.items() if not docs]
    full = {q: docs for q, docs in run.items() if docs}
    if not full:
        return {m: 0.0 for m in metrics}
    scores = evaluate(Qrels({q: qrels[q] for q in full}), Run(full), list(metrics), make_comparable=True)
    if isinstance(scores, float):
        scores = {metrics[0]: scores}
    # queries with an empty run contribute zeros to every mean
    n_all = len(full) + len(empty)
    return {m: float(scores[m]) * len(full) / n_all for m in metrics}


# --- SQuAD answers -----------------------------------------------------------------------------------
def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1; two empty strings score 1 (a correct abstention), one empty scores 0."""
    p, g = _tokens(prediction), _tokens(gold)
    if not p or not g:
        return float(p == g)
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction: str, golds: Sequence[str]) -> dict[str, float]:
    """Max EM/F1 over the gold answers (``golds`` empty = unanswerable, expected prediction ``""``)."""
    golds = list(golds) or [""]
    return {"em": max(exact_match(prediction, g) for g in golds), "f1": max(token_f1(prediction, g) for g in golds)}


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """True when a normalised gold answer occurs in the normalised text (on token boundaries)."""
    t = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(g)} " in t for g in golds if normalize_answer(g))


def support_precision(answer: str, cited_texts: Sequence[str]) -> float:
    """Faithfulness proxy (lexical, no NLI): share of the answer's normalised tokens found in the cited text."""
    a = _tokens(strip_citations(answer))
    if not a:
        return 0.0
    support = set(_tokens(" ".join(cited_texts)))
    return sum(tok in support for tok in a) / len(a)


def answer_metrics(rows: Sequence[dict[str, Any]], faithful_at: float = 0.8) -> dict[str, float]:
    """Aggregate per-question rows into the answer metrics.

    Each row: ``answers`` (gold texts, empty = unanswerable), ``prediction`` (answer text), ``declined``,
    ``cited_texts`` (texts of the cited chunks).

    - ``em``/``f1``: SQuAD 2.0 style over all questions, a declined answer predicts ``""``.
    - ``has_ans_em``/``has_ans_f1``: answerable questions only. ``has_ans_f1`` also reports partial credit
      for the generator's sentence-long answers.
    - ``citation_accuracy``: answerable questions answered (not declined) whose cited chunks contain a gold
      answer, over all answered answerable questions (no citation counts as wrong).
    - ``abstention_accuracy``: unanswerable questions that were declined; ``false_abstention``: answerable ones
      that were declined.
    - ``faithfulness``: mean :func:`support_precision` of answered questions; ``faithful_rate`` the share with
      support >= ``faithful_at``.
    """
    n = len(rows)
    if not n:
        return {}
    em = f1 = 0.0
    pos = [r for r in rows if r["answers"]]
    neg = [r for r in rows if not r["answers"]]
    pos_em = pos_f1 = 0.0
    for r in rows:
        pred = "" if r["declined"] else strip_citations(r["prediction"])
        s = squad_scores(pred, r["answers"])
        em += s["em"]
        f1 += s["f1"]
        if r["answers"]:
            pos_em += s["em"]
            pos_f1 += s["f1"]
    answered_pos = [r for r in pos if not r["declined"]]
    answered = [r for r in rows if not r["declined"]]
    cit = sum(any(contains_answer(t, r["answers"]) for t in r["cited_texts"]) for r in answered_pos)
    supports = [support_precision(r["prediction"], r["cited_texts"]) for r in answered]
    out = {
        "em": em / n, "f1": f1 / n,
        "has_ans_em": pos_em / len(pos) if pos else 0.0, "has_ans_f1": pos_f1 / len(pos) if pos else 0.0,
        "citation_accuracy": cit / len(answered_pos) if answered_pos else 0.0,
        "abstention_accuracy": sum(r["declined"] for r in neg) / len(neg) if neg else 0.0,
        "false_abstention": sum(r["declined"] for r in pos) / len(pos) if pos else 0.0,
        "faithfulness": sum(supports) / len(supports) if supports else 0.0,
        "faithful_rate": sum(s >= faithful_at for s in supports) / len(supports) if supports else 0.0,
    }
    return out


# --- NER ---------------------------------------------------------------------------------------------
# spaCy OntoNotes labels -> CoNLL-2003 types; numeric labels (DATE, MONEY, ...) are not CoNLL entities.
ONTO_TO_CONLL = {"PERSON": "PER", "PER": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
                 "NORP": "MISC", "EVENT": "MISC", "WORK_OF_ART": "MISC", "LANGUAGE": "MISC", "PRODUCT": "MISC",
                 "LAW": "MISC", "MISC": "MISC"}


def spans_to_iob2(tokens: Sequence[str], spans: Sequence[dict[str, Any]],
                  label_map: dict[str, str] = ONTO_TO_CONLL) -> list[str]:
    """IOB2 tags for ``tokens`` joined by single spaces, from character spans ``{"start","end","label"}``.

    A token belongs to the first mapped span it overlaps; unmapped labels are dropped.
    """
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t) + 1
    tags = ["O"] * len(tokens)
    for span in sorted(spans, key=lambda s: s["start"]):
        label = label_map.get(span["label"])
        if label is None:
            continue
        inside = [i for i, s in enumerate(starts) if s < span["end"] and s + len(tokens[i]) > span["start"]]
        if not inside or any(tags[i] != "O" for i in inside):
            continue
        for j, i in enumerate(inside):
            tags[i] = ("B-" if j == 0 else "I-") + label
    return tags


def ner_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """seqeval entity-level micro P/R/F1 (strict IOB2) plus per-type F1."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    g, p = [list(x) for x in gold], [list(x) for x in pred]
    kw = {"mode": "strict", "scheme": IOB2}
    out = {"f1": f1_score(g, p, **kw), "precision": precision_score(g, p, **kw), "recall": recall_score(g, p, **kw)}
    report = classification_report(g, p, output_dict=True, zero_division=0, **kw)
    for label in ("PER", "ORG", "LOC", "MISC"):
        if label in report:
            out[f"f1_{label}"] = report[label]["f1-score"]
    return {k: float(v) for k, v in out.items()}


# --- summaries ---------------------------------------------------------------------------------------
def rouge_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (rouge-score, Porter stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for p, r in zip(predictions, references, strict=True):
        s = scorer.score(r, p)
        for k in totals:
            totals[k] += s[k].fmeasure
    n = max(len(predictions), 1)
    return {k: v / n for k, v in totals.items()}
