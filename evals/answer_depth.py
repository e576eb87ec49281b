"""``python -m evals.answer_depth``: how many fused candidates the cross-encoder should rescore for an answer.

Asks the calibration articles' questions (``squad-calib``; never the test articles) through the default
evidence-first graph once per ``answer_rerank_k`` and prints F1, abstention, coverage, citation accuracy,
context recall and the time to first token / whole answer p50 of each, as JSON. The shipped default
(``Settings.answer_rerank_k``) was chosen with it; the figures are in the README (*Evals*).

    python -m evals.answer_depth --questions 120 --depths 20,12,10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

METRICS = ("f1", "abstention_accuracy", "answerable_coverage", "citation_accuracy", "context_recall", "ttft_s_p50",
           "ask_s_p50")


def study(questions: int, depths: list[int], home: Path, mode: str = "evidence") -> dict[str, Any]:
    from evals import datasets as dsets
    from evals.runner import Options, Workspace, answer_rows, config_metrics, ensure_ingested

    opts = Options(home=home, progress=lambda m: print(m, file=sys.stderr, flush=True))
    ds = dsets.load("squad-calib", None, limit=questions)
    out: dict[str, Any] = {"set": "squad-calib", "questions": len(ds.cases), "answer_mode": mode, "by_depth": {}}
    with Workspace(home) as ws:
        d = ws.service("squad-calib", top_k=5)
        ensure_ingested(d, ds, opts)
        d.ask(ds.cases[0].question, with_entities=False)  # models warm before anything is timed
        for k in depths:
            d.update_settings(answer_rerank_k=k, answer_mode=mode)
            rows, extra = answer_rows(d, ds.cases, opts, f"answer_rerank_k={k}")
            m = config_metrics(rows, extra)
            out["by_depth"][str(k)] = {x: round(m[x], 4) for x in METRICS if x in m}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.answer_depth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=120)
    p.add_argument("--depths", default="20,12,10")
    p.add_argument("--mode", default="evidence", choices=("evidence", "extractive"))
    p.add_argument("--home", type=Path, default=None, help="keep the store here between runs")
    a = p.parse_args(argv)
    depths = [int(x) for x in a.depths.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="docrag-depth-") as tmp:
        print(json.dumps(study(a.questions, depths, a.home or Path(tmp), a.mode), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
