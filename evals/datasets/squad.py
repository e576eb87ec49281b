"""SQuAD 2.0 dev sets for the answer evals.

- ``squad``: the course split (``squad/dev-v2.0.json``): 16 articles, 646 paragraphs, 6,078 questions.
- ``squad-test``: the **test set**: the 19 articles of ``squad/dev-v2.0-official.json`` that are not in the course
  split (never trained or tuned on).
- ``squad-calib``: the course-split articles the reader was not trained on (its calibration and selection set;
  ``rag.training.reader.split_articles``).

The corpus is every paragraph of the chosen articles (one record each, ``source = "<title>#<paragraph index>"``),
so answers are open-book over all of them. ``limit`` takes a seeded, balanced sample: half answerable, half not.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from evals.datasets import EvalSet, QACase

FILE = Path("squad") / "dev-v2.0.json"


OFFICIAL = Path("squad") / "dev-v2.0-official.json"


def _titles(path: Path) -> set[str]:
    return {a["title"] for a in json.loads(path.read_text(encoding="utf-8"))["data"]}


def load_test(root: Path, limit: int | None = None, seed: int = 0) -> EvalSet[QACase]:
    """The 19 test articles of the official dev set (those outside the course split)."""
    course = _titles(root / FILE)
    ev = load(root, limit, seed, file=OFFICIAL, keep=lambda t: t not in course)
    ev.name, ev.split = "squad-test", "dev-v2.0-official minus course split"
    return ev


def load_calibration(root: Path, limit: int | None = None, seed: int = 0) -> EvalSet[QACase]:
    """The course-split articles held out from reader training (calibration / selection only)."""
    from rag.training.reader import COURSE_TRAIN_ARTICLES, SEED, split_articles

    calib = set(split_articles(SEED, COURSE_TRAIN_ARTICLES)["calibration"])
    ev = load(root, limit, seed, keep=lambda t: t in calib)
    ev.name, ev.split = "squad-calib", "course split, reader calibration articles"
    return ev


def load(root: Path, limit: int | None = None, seed: int = 0, file: Path = FILE,
         keep: Callable[[str], bool] | None = None) -> EvalSet[QACase]:
    path = root / file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (set DOCRAG_DATA to the shared data folder)")
    data = [a for a in json.loads(path.read_text(encoding="utf-8"))["data"] if keep is None or keep(a["title"])]
    corpus, cases = [], []
    for article in data:
        title = article["title"].replace("_", " ")
        for pi, para in enumerate(article["paragraphs"]):
            source = f"{article['title']}#{pi}"
            corpus.append({"source": source, "text": para["context"], "title": title})
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                cases.append(QACase(qid=qa["id"], question=qa["question"], answers=answers,
                                    is_impossible=bool(qa.get("is_impossible")), source=source))
    if limit and limit < len(cases):
        rng = random.Random(seed)
        pos = [c for c in cases if not c.is_impossible]
        neg = [c for c in cases if c.is_impossible]
        rng.shuffle(pos)
        rng.shuffle(neg)
        n_pos = min(len(pos), (limit + 1) // 2)
        picked = {c.qid for c in pos[:n_pos] + neg[:limit - n_pos]}
        cases = [c for c in cases if c.qid in picked]  # keep file order
    return EvalSet(name="squad", split="dev-v2.0", cases=cases, corpus=corpus, files=[path])
