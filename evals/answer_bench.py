"""``python -m evals.bench answers``: latency of a whole answer with the default (evidence-first) graph.

Held-out SQuAD 2.0 questions (``squad-test``: the 19 test articles, answerable and unanswerable) asked through
``DocRAG`` over those articles' paragraphs, models warm, one question at a time:

- ``evidence`` (the default: retrieve -> rerank -> reader -> calibrated decline -> generator on the evidence
  sentences -> checked answer) and, as the baseline in the same process, ``generator`` (the generator over
  whole retrieved chunks, no reader: the graph the evidence-first one replaced);
- per config: time to first token p50/p95 (answers that generated), whole answer p50/p95 (every question,
  declines included), per-stage p50 from ``Answer.timings``, the share of each answer mode;
- ratios evidence / generator of the TTFT and answer p50.

Speed only: the quality of the same configs is ``docrag eval answers`` (``make eval``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _config(d: Any, questions: list[str]) -> dict[str, Any]:
    from rag.timings import percentile

    d.ask(questions[0], with_entities=False)  # warm: models loaded, caches filled
    ttft, total, modes = [], [], Counter()
    stages: dict[str, list[float]] = {}
    for q in questions:
        t = time.perf_counter()
        a = d.ask(q, with_entities=False)
        total.append(time.perf_counter() - t)
        modes[a.mode] += 1
        if a.timings.get("first_token_s") is not None:
            ttft.append(a.timings["first_token_s"])
        for k, v in a.timings.items():
            if isinstance(v, (int, float)):
                stages.setdefault(k, []).append(float(v))
    r = lambda x: None if x is None else round(x, 3)
    return {"questions": len(questions), "answers_with_generation": len(ttft),
            "ttft_p50_s": r(statistics.median(ttft)) if ttft else None,
            "ttft_p95_s": r(percentile(ttft, 0.95)) if ttft else None,
            "answer_p50_s": r(statistics.median(total)), "answer_p95_s": r(percentile(total, 0.95)),
            "modes": dict(modes), "stages_p50_s": {k: r(statistics.median(v)) for k, v in sorted(stages.items())}}


def bench_answers(n_questions: int = 30, seed: int = 7) -> dict[str, Any]:
    from evals import datasets
    from rag import DocRAG

    ev = datasets.load("squad-test", limit=n_questions, seed=seed)
    questions = [c.question for c in ev.cases]
    out: dict[str, Any] = {"set": "squad-test (19 held-out articles)", "questions": len(questions),
                           "paragraphs": len(ev.corpus)}
    with (tempfile.TemporaryDirectory(prefix="docrag-bench-answers-") as home,
          DocRAG(home=Path(home), collection="bench", extract_entities=False) as d):
        t0 = time.perf_counter()
        d.ingest_records(ev.corpus, entities=False)
        out["ingest_s"] = round(time.perf_counter() - t0, 1)
        out["generator"] = d.settings.generator or "default"
        for mode in ("evidence", "generator"):
            d.update_settings(answer_mode=mode)
            out[mode] = _config(d, questions)
    ev_, base = out["evidence"], out["generator"]
    if ev_["ttft_p50_s"] and base["ttft_p50_s"]:
        out["ratio_evidence_over_generator_ttft_p50"] = round(ev_["ttft_p50_s"] / base["ttft_p50_s"], 3)
    out["ratio_evidence_over_generator_answer_p50"] = round(ev_["answer_p50_s"] / base["answer_p50_s"], 3)
    out["targets"] = {"ttft_p50_s": 1.5, "answer_p50_s": 3.0,
                      "met": bool(ev_["ttft_p50_s"] is not None and ev_["ttft_p50_s"] <= 1.5
                                  and ev_["answer_p50_s"] <= 3.0)}
    return out
