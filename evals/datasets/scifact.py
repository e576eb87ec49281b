"""BEIR SciFact test: 300 claims, 339 judgments, 5,183 abstracts (``beir/scifact``)."""

from __future__ import annotations

from pathlib import Path

from evals.datasets import EvalSet, RetrievalCase
from evals.datasets.beir import load_beir


def load(root: Path, split: str = "test", limit: int | None = None) -> EvalSet[RetrievalCase]:
    return load_beir("scifact", root / "beir" / "scifact", split, limit)
