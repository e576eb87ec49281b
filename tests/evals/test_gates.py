"""CI quality gates (``make eval-ci``): the real pipeline on public data, thresholds in evals/thresholds.toml.

One run ingests each corpus once into a fresh embedded Qdrant and evaluates: SciFact test and the MS MARCO
passage subset retrieval (all judged queries, full corpora; sparse, dense, hybrid, hybrid + reranker; the
reranker must beat hybrid on both), 200 SQuAD 2.0 dev questions answered (the 19 held-out articles) open-book
by the evidence-first graph, the reader alone and the generator alone, NER on 1,000 CoNLL-2003 testb sentences,
and a few XSum summaries.
"""

from __future__ import annotations

import pytest

from evals import gate, report
from evals.runner import TASKS, Options, run

pytestmark = pytest.mark.eval


@pytest.fixture(scope="module")
def ci_report(data_dir, tmp_path_factory):
    rep = run(list(TASKS), Options(data_dir=data_dir, full=False, home=tmp_path_factory.mktemp("evals"),
                                   progress=lambda m: print(m, flush=True)), argv=["pytest", "-m", "eval"])
    rep["gate"] = gate.check(rep["sections"])
    json_path, _ = report.write(rep)
    print("\n" + report.sections_markdown(rep["sections"]))
    print(report.gate_markdown(rep["gate"]))
    print(f"report: {json_path} ({rep['seconds']:.0f} s)")
    return rep


def test_every_threshold_was_checked(ci_report) -> None:
    thresholds = gate.load_thresholds()
    gains = thresholds.pop("gain", {})
    expected = sum(len(m) for task in thresholds.values() for ds in task.values() for m in ds.values())
    expected += sum(len(m) * sum(s["task"] == task for s in ci_report["sections"])
                    for task, pairs in gains.items() for m in pairs.values())
    assert ci_report["gate"]["checked"] == expected, ci_report["gate"]["missing"]


def test_all_configs_ran(ci_report) -> None:
    for dataset in ("scifact", "msmarco"):
        sec = next(s for s in ci_report["sections"] if s["task"] == "retrieval" and s["dataset"] == dataset)
        assert {"bm25", "dense", "hybrid", "hybrid_rerank"} <= set(sec["configs"]), sec.get("skipped")


def test_answer_configs_ran_with_verbatim_quotes(ci_report) -> None:
    sec = next(s for s in ci_report["sections"] if s["task"] == "answers" and s["dataset"] == "squad-test")
    assert {"evidence", "extractive", "generator", "reader_gold_paragraph"} <= set(sec["configs"])
    for name in ("evidence", "extractive"):
        assert sec["configs"][name]["verbatim_quote_rate"] == 1.0, name


def test_quality_gates(ci_report) -> None:
    failures = ci_report["gate"]["failures"]
    assert not failures, "quality below threshold:\n" + "\n".join(
        f"  {f['key']}: {f['value']:.4f} < {f['threshold']:.4f}" for f in failures)
