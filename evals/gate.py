"""Quality gates: compare a report's metrics with ``evals/thresholds.toml``.

The file holds ``[<task>.<dataset>.<config>]`` tables of ``metric = minimum``. A metric below its minimum
fails; a threshold whose config was skipped (e.g. no reranker shipped yet) is listed as ``missing`` and does
not fail, so the gate tightens automatically once the model exists.

``[gain.<task>."<config>-<baseline>"]`` tables of ``metric = minimum gain`` apply to every dataset of the
task: ``config`` must beat ``baseline`` by more than the minimum (``0.0``: strictly better), e.g.
``hybrid_rerank`` over ``hybrid`` on SciFact and on MS MARCO.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"


def load_thresholds(path: str | Path | None = None) -> dict[str, Any]:
    with open(path or THRESHOLDS, "rb") as f:
        data = tomllib.load(f)
    data.pop("meta", None)
    return data


def check(sections: list[dict[str, Any]], thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    """Gate result: ``{"passed", "checked", "failures": [{"key","value","threshold"}], "missing": [...]}``.

    Only the tasks and datasets present in ``sections`` are checked.
    """
    thresholds = load_thresholds() if thresholds is None else thresholds
    gains = thresholds.get("gain", {})
    failures, missing, checked = [], [], 0
    for s in sections:
        for pair, mins in gains.get(s["task"], {}).items():
            config, baseline = pair.split("-", 1)
            got, base = s["configs"].get(config), s["configs"].get(baseline)
            if got is None or base is None:
                missing.append(f"gain {s['task']}.{s['dataset']}.{pair} ({config if got is None else baseline} not run)")
                continue
            for metric, minimum in mins.items():
                checked += 1
                value = got.get(metric, float("nan")) - base.get(metric, float("nan"))
                if not value > minimum:
                    failures.append({"key": f"{s['task']}.{s['dataset']}.{pair}.{metric}", "value": float(value),
                                     "threshold": float(minimum)})
        per_config = thresholds.get(s["task"], {}).get(s["dataset"], {})
        for config, mins in per_config.items():
            got = s["configs"].get(config)
            if got is None:
                why = s.get("skipped", {}).get(config, "not run")
                missing.append(f"{s['task']}.{s['dataset']}.{config} ({why})")
                continue
            for metric, minimum in mins.items():
                checked += 1
                key = f"{s['task']}.{s['dataset']}.{config}.{metric}"
                value = got.get(metric)
                if value is None:
                    failures.append({"key": key, "value": float("nan"), "threshold": float(minimum)})
                elif value < minimum:
                    failures.append({"key": key, "value": float(value), "threshold": float(minimum)})
    return {"passed": not failures, "checked": checked, "failures": failures, "missing": missing}
