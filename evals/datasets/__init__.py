"""One loader per dataset; each returns a typed :class:`EvalSet` (cases + corpus + the files it read).

```python
from evals.datasets import load
ds = load("scifact", data_dir)          # EvalSet[RetrievalCase]
ds.cases[0].query, ds.corpus[0]["source"], ds.files
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

REPO = Path(__file__).resolve().parent.parent.parent


def data_dir(explicit: str | Path | None = None) -> Path:
    """The data folder (``squad/``, ``beir/``, ``conll2003/``, ``docs/``, ...): ``explicit``, else
    ``DOCRAG_DATA``, else ``<repo>/../shared/data`` or ``/work/shared/data`` (the first that exists). The one
    lookup: evals, benchmarks, training (``rag.training.data.data_root``) and the tests all use it."""
    if explicit or os.environ.get("DOCRAG_DATA"):
        return Path(os.path.expanduser(str(explicit or os.environ["DOCRAG_DATA"])))
    candidates = (REPO.parent / "shared" / "data", Path("/work/shared/data"))
    return next((c for c in candidates if c.is_dir()), candidates[0])


@dataclass(frozen=True)
class RetrievalCase:
    """A query and its judged documents (``{doc_id: grade}``, grade >= 1 is relevant)."""

    qid: str
    query: str
    qrels: dict[str, int]


@dataclass(frozen=True)
class QACase:
    """A reading-comprehension question; ``answers`` is empty when ``is_impossible``."""

    qid: str
    question: str
    answers: tuple[str, ...]
    is_impossible: bool
    source: str  # record id of the gold paragraph in the corpus


@dataclass(frozen=True)
class NERCase:
    """One sentence: tokens and IOB2 tags (CoNLL types PER/ORG/LOC/MISC)."""

    sid: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class SummaryCase:
    sid: str
    document: str
    summary: str


C = TypeVar("C")


@dataclass
class EvalSet(Generic[C]):
    """What a loader returns. ``corpus`` holds ``ingest_records`` records (``source``, ``text``, ``title``)."""

    name: str
    split: str
    cases: list[C]
    corpus: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


LOADERS = {
    "scifact": "evals.datasets.scifact",
    "msmarco": "evals.datasets.msmarco",
    "squad": "evals.datasets.squad",
    "squad-test": "evals.datasets.squad:load_test",
    "squad-calib": "evals.datasets.squad:load_calibration",
    "conll2003": "evals.datasets.conll2003",
    "xsum": "evals.datasets.xsum",
}
TASK_DATASETS = {
    "retrieval": ("scifact", "msmarco"),
    "answers": ("squad-test", "squad", "squad-calib"),
    "ner": ("conll2003",),
    "summaries": ("xsum",),
}


def load(name: str, root: str | Path | None = None, **kwargs: Any) -> EvalSet:
    """Load dataset ``name`` from the data folder (see :func:`data_dir`).

    :raises ValueError: unknown dataset name.
    :raises FileNotFoundError: the dataset's files are absent.
    """
    import importlib

    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(LOADERS)}")
    module, _, func = LOADERS[name].partition(":")
    return getattr(importlib.import_module(module), func or "load")(data_dir(root), **kwargs)
