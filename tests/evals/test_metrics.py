"""Fast, offline unit tests of evals.metrics (and the small pure helpers around it) on hand-checked inputs."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from evals import gate, metrics
from evals.datasets.conll2003 import iob1_to_iob2


class TestSquad:
    def test_normalize_answer(self):
        assert metrics.normalize_answer("The  Quick, brown fox!") == "quick brown fox"
        assert metrics.normalize_answer("An apple a day") == "apple day"

    def test_exact_match_ignores_case_punctuation_articles(self):
        assert metrics.exact_match("the Normans.", "Normans") == 1.0
        assert metrics.exact_match("Normans of France", "Normans") == 0.0

    def test_token_f1_known_value(self):
        # prediction tokens {cat, sat} vs gold {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8
        assert metrics.token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
        assert metrics.token_f1("dog", "cat") == 0.0

    def test_token_f1_empty_strings(self):
        assert metrics.token_f1("", "") == 1.0  # correct abstention
        assert metrics.token_f1("", "cat") == 0.0
        assert metrics.token_f1("cat", "") == 0.0

    def test_squad_scores_max_over_golds(self):
        s = metrics.squad_scores("in France", ["France", "Normandy, France"])
        assert s["em"] == 0.0
        assert s["f1"] == pytest.approx(max(2 * 0.5 * 1 / 1.5, 2 * 0.5 * 0.5 / 1.0))  # 0.667 vs 0.5
        assert metrics.squad_scores("", []) == {"em": 1.0, "f1": 1.0}

    def test_strip_citations(self):
        assert metrics.strip_citations("Paris [1], in France [2, 3].") == "Paris, in France."

    def test_contains_answer_on_token_boundaries(self):
        assert metrics.contains_answer("The Normans came from Normandy.", ["normandy"])
        assert not metrics.contains_answer("Normandy-born", ["Norman"])

    def test_support_precision(self):
        assert metrics.support_precision("Paris is big [1]", ["Paris is a city"]) == pytest.approx(2 / 3)
        assert metrics.support_precision("Paris", []) == 0.0

    def test_answer_metrics(self):
        rows = [
            {"answers": ["France"], "prediction": "France [1]", "declined": False, "cited_texts": ["in France"]},
            {"answers": ["10th century"], "prediction": "", "declined": True, "cited_texts": []},
            {"answers": [], "prediction": "", "declined": True, "cited_texts": []},
            {"answers": [], "prediction": "Rollo [1]", "declined": False, "cited_texts": ["Rollo led them"]},
        ]
        m = metrics.answer_metrics(rows)
        assert m["em"] == pytest.approx(2 / 4)  # q1 right, q3 correctly declined
        assert m["has_ans_em"] == pytest.approx(1 / 2)
        assert m["citation_accuracy"] == 1.0  # the one answered answerable question cites "France"
        assert m["abstention_accuracy"] == pytest.approx(1 / 2)
        assert m["false_abstention"] == pytest.approx(1 / 2)
        assert m["faithfulness"] == 1.0 and m["faithful_rate"] == 1.0


class TestRanking:
    def test_doc_run_keeps_first_occurrence(self):
        run = metrics.doc_run([("a", 0.9), ("b", 0.8), ("a", 0.7), ("c", None)])
        assert run == {"a": 3.0, "b": 2.0, "c": 1.0}
        assert metrics.doc_run([("a", 1), ("b", 1), ("c", 1)], k=2) == {"a": 2.0, "b": 1.0}

    def test_ranking_metrics_by_hand(self):
        qrels = {"q1": {"d1": 1, "d3": 1}, "q2": {"d5": 1}}
        run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d9": 2.0, "d5": 1.0}}
        m = metrics.ranking_metrics(qrels, run)
        # q1: DCG = 1/log2(2) + 1/log2(4) = 1.5, IDCG = 1 + 1/log2(3); q2: DCG = 1/log2(3), IDCG = 1
        ndcg_q1 = 1.5 / (1 + 1 / math.log2(3))
        ndcg_q2 = 1 / math.log2(3)
        assert m["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2, abs=1e-6)
        assert m["mrr@10"] == pytest.approx((1 + 0.5) / 2)
        assert m["recall@10"] == pytest.approx(1.0)
        assert m["recall@100"] == pytest.approx(1.0)

    def test_missing_query_scores_zero(self):
        qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
        m = metrics.ranking_metrics(qrels, {"q1": {"d1": 1.0}})
        assert m["ndcg@10"] == pytest.approx(0.5)
        assert m["recall@100"] == pytest.approx(0.5)
        assert metrics.ranking_metrics(qrels, {})["mrr@10"] == 0.0

    def test_graded_qrels(self):
        # gains are graded in ranx's nDCG: ideal order d2 (2) then d1 (1)
        qrels = {"q": {"d1": 1, "d2": 2}}
        m = metrics.ranking_metrics(qrels, {"q": {"d1": 2.0, "d2": 1.0}}, metrics=["ndcg@10"])
        dcg = 1 + 2 / math.log2(3)
        idcg = 2 + 1 / math.log2(3)
        assert m["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-6)


class TestNer:
    def test_iob1_to_iob2(self):
        assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == \
            ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
        assert iob1_to_iob2(["I-ORG", "O", "I-MISC", "I-MISC", "B-MISC", "I-PER"]) == \
            ["B-ORG", "O", "B-MISC", "I-MISC", "B-MISC", "B-PER"]

    def test_spans_to_iob2_maps_labels_and_drops_numeric(self):
        tokens = ["Angela", "Merkel", "visited", "Paris", "in", "2019", "."]
        text = " ".join(tokens)
        spans = [{"start": 0, "end": 13, "label": "PERSON"},
                 {"start": text.index("Paris"), "end": text.index("Paris") + 5, "label": "GPE"},
                 {"start": text.index("2019"), "end": text.index("2019") + 4, "label": "DATE"}]
        assert metrics.spans_to_iob2(tokens, spans) == ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]

    def test_ner_metrics(self):
        gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
        pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]]
        m = metrics.ner_metrics(gold, pred)
        # 2 of 3 gold entities found, no false positives: P = 1, R = 2/3, F1 = 0.8
        assert m["precision"] == pytest.approx(1.0)
        assert m["recall"] == pytest.approx(2 / 3)
        assert m["f1"] == pytest.approx(0.8)
        assert m["f1_LOC"] == 0.0 and m["f1_PER"] == 1.0


class TestRouge:
    def test_identical_and_disjoint(self):
        assert metrics.rouge_metrics(["the cat sat"], ["the cat sat"])["rougeL"] == pytest.approx(1.0)
        assert metrics.rouge_metrics(["dogs bark"], ["the cat sat"])["rouge1"] == 0.0


class TestGate:
    SECTIONS: ClassVar[list[dict]] = [{"task": "retrieval", "dataset": "scifact",
                                       "configs": {"bm25": {"ndcg@10": 0.60}},
                                       "skipped": {"hybrid_rerank": "no reranker"}}]

    def test_pass_fail_and_missing(self):
        th = {"retrieval": {"scifact": {"bm25": {"ndcg@10": 0.55}, "hybrid_rerank": {"ndcg@10": 0.7}}}}
        g = gate.check(self.SECTIONS, th)
        assert g["passed"] and g["checked"] == 1 and g["missing"] == ["retrieval.scifact.hybrid_rerank (no reranker)"]
        th["retrieval"]["scifact"]["bm25"]["ndcg@10"] = 0.65
        g = gate.check(self.SECTIONS, th)
        assert not g["passed"] and g["failures"][0]["key"] == "retrieval.scifact.bm25.ndcg@10"

    def test_gain_rule_needs_strictly_better_on_every_dataset(self):
        th = {"gain": {"retrieval": {"hybrid_rerank-hybrid": {"ndcg@10": 0.0}}}}
        secs = [{"task": "retrieval", "dataset": d, "configs": {"hybrid": {"ndcg@10": 0.70},
                                                               "hybrid_rerank": {"ndcg@10": v}}}
                for d, v in (("scifact", 0.74), ("msmarco", 0.70))]
        g = gate.check(secs, th)
        assert g["checked"] == 2 and [f["key"] for f in g["failures"]] == ["retrieval.msmarco.hybrid_rerank-hybrid.ndcg@10"]
        secs[1]["configs"]["hybrid_rerank"]["ndcg@10"] = 0.71
        assert gate.check(secs, th)["passed"]

    def test_thresholds_file_parses(self):
        th = gate.load_thresholds()
        assert set(th) <= {"retrieval", "answers", "ner", "summaries", "gain"}
        assert "hybrid_rerank-hybrid" in th["gain"]["retrieval"]
