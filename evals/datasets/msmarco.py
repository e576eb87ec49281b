"""MS MARCO passage subset with TREC DL 2019 judgments: 43 judged queries, 5,000 passages, graded qrels."""

from __future__ import annotations

from pathlib import Path

from evals.datasets import EvalSet, RetrievalCase
from evals.datasets.beir import load_beir


def load(root: Path, split: str = "test", limit: int | None = None) -> EvalSet[RetrievalCase]:
    return load_beir("msmarco", root / "beir" / "msmarco-subset", split, limit)
