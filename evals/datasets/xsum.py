"""XSum test subset (``summarization/xsum_test_1000.jsonl``): BBC articles with one-sentence summaries."""

from __future__ import annotations

import json
from pathlib import Path

from evals.datasets import EvalSet, SummaryCase


def load(root: Path, limit: int | None = None) -> EvalSet[SummaryCase]:
    path = root / "summarization" / "xsum_test_1000.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (set DOCRAG_DATA to the shared data folder)")
    cases = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            cases.append(SummaryCase(sid=str(r["id"]), document=r["document"], summary=r["summary"]))
    if limit:
        cases = cases[:limit]
    corpus = [{"source": f"xsum-{c.sid}", "text": c.document, "title": ""} for c in cases]
    return EvalSet(name="xsum", split="test", cases=cases, corpus=corpus, files=[path])
