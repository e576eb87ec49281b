"""BEIR SciFact (``beir/scifact``): test 300 claims, 339 judgments; train 809 claims, 919 judgments; 5,183 abstracts.

Splits: ``test`` (CI eval only), ``train`` and ``dev``: ``dev`` is a seeded ``DEV_FRACTION`` of the train
claims, held out for model selection and fusion tuning; ``train`` is the rest; ``train-all`` is every train
claim.
"""

from __future__ import annotations

import random
from pathlib import Path

from evals.datasets import EvalSet, RetrievalCase
from evals.datasets.beir import load_beir

DEV_FRACTION = 0.2
DEV_SEED = 13


def dev_qids(qids: list[str]) -> set[str]:
    """The held-out dev claims among the train claims (seeded, stable)."""
    ids = sorted(qids)
    return set(random.Random(DEV_SEED).sample(ids, round(len(ids) * DEV_FRACTION)))


def load(root: Path, split: str = "test", limit: int | None = None) -> EvalSet[RetrievalCase]:
    if split not in ("train", "dev"):
        return load_beir("scifact", root / "beir" / "scifact", "train" if split == "train-all" else split, limit)
    ds = load_beir("scifact", root / "beir" / "scifact", "train")
    dev = dev_qids([c.qid for c in ds.cases])
    ds.cases = [c for c in ds.cases if (c.qid in dev) == (split == "dev")][:limit or None]
    ds.split = split
    return ds
