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
    ("answers", ""): {"f1": 0.04, "has_ans_f1": 0.05, "abstention_accuracy": 0.06, "answerable_coverage": 0.06,
                      "citation_accuracy": 0.05, "verbatim_quote_rate": 0.0},
    ("ner", ""): {"f1": 0.02},
    ("summaries", "summarizer"): {"rouge1": 0.05},
}
# fixed rules, not measured: config must beat baseline by more than the value on every dataset of the task
GAINS = {"retrieval": {"hybrid_rerank-hybrid": {"ndcg@10": 0.0}}}


def _kept(report: dict, current: dict) -> list[str]:
    """Threshold tables of ``current`` for (task, dataset) pairs the report did not measure."""
    measured = {(s["task"], s["dataset"]) for s in report["sections"]}
    lines = []
    for task, datasets in current.items():
        if task == "gain":  # fixed rules, written from GAINS
            continue
        for dataset, configs in datasets.items():
            if (task, dataset) in measured:
                continue
            for config, mins in configs.items():
                lines += [f'[{task}.{dataset}."{config}"]', *[f'"{m}" = {v:.3f}' for m, v in mins.items()], ""]
    return lines


def build(report: dict, current: dict | None = None) -> str:
    """The thresholds file: the report's sections re-measured, the other tables of ``current`` kept."""
    lines = ["# CI quality gates: measured on the CI machine kind (2 vCPU) minus a margin; written by",
             "# evals/set_thresholds.py from the reports named in [meta]. A value below its minimum fails CI.", ""]
    lines += ["[meta]", f'report = "{report.get("run_id") or report.get("started", "")}"', ""]
    for task, pairs in GAINS.items():
        for pair, mins in pairs.items():
            lines += [f'[gain.{task}."{pair}"]', *(f'"{m}" = {v}' for m, v in mins.items()), ""]
    lines += _kept(report, current or {})
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
    from evals.gate import load_thresholds

    report = json.loads(Path(argv[0]).read_text())
    THRESHOLDS.write_text(build(report, load_thresholds() if THRESHOLDS.is_file() else None))
    print(THRESHOLDS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
