"""Write ``evals/thresholds.toml`` from a measured CI-sized report: each gated metric minus a margin.

``python -m evals.set_thresholds evals/reports/<report>.json`` — thresholds never exceed what was measured.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from evals.gate import THRESHOLDS

# (task, config prefix) -> {metric: margin below the measured value}
GATED = {
    ("retrieval", ""): {"ndcg@10": 0.02, "recall@100": 0.02},
    ("answers", "pipeline"): {"f1": 0.05, "citation_accuracy": 0.08, "abstention_accuracy": 0.08,
                              "faithfulness": 0.08},
    ("ner", ""): {"f1": 0.02},
    ("summaries", "summarizer"): {"rouge1": 0.05},
}
# fixed rules, not measured: config must beat baseline by more than the value on every dataset of the task
GAINS = {"retrieval": {"hybrid_rerank-hybrid": {"ndcg@10": 0.0}}}


def build(report: dict) -> str:
    lines = ["# CI quality gates: measured on the CI machine kind (2 vCPU) minus a margin; written by",
             "# evals/set_thresholds.py from the report named in [meta]. A value below its minimum fails CI.", ""]
    lines += ["[meta]", f'report = "{report.get("run_id") or report.get("started", "")}"', ""]
    for task, pairs in GAINS.items():
        for pair, mins in pairs.items():
            lines += [f'[gain.{task}."{pair}"]', *(f'"{m}" = {v}' for m, v in mins.items()), ""]
    for s in report["sections"]:
        for (task, prefix), margins in GATED.items():
            if s["task"] != task:
                continue
            for config, values in sorted(s["configs"].items()):
                if (prefix and config != prefix) or "baseline" in config:
                    continue
                rows = [f"\"{m}\" = {math.floor((values[m] - d) * 1000) / 1000:.3f}  # measured {values[m]:.4f}"
                        for m, d in margins.items() if isinstance(values.get(m), (int, float)) and values[m] - d > 0]
                if rows:
                    lines += [f'[{task}.{s["dataset"]}."{config}"]', *rows, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    report = json.loads(Path(argv[0]).read_text())
    THRESHOLDS.write_text(build(report))
    print(THRESHOLDS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
