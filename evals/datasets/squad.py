"""SQuAD 2.0 dev (course split, ``squad/dev-v2.0.json``): 16 articles, 646 paragraphs, 6,078 questions.

The corpus is every paragraph (one record each, ``source = "<title>#<paragraph index>"``) so answers are
open-book over the whole dev corpus. ``limit`` takes a seeded, balanced sample: half answerable, half not.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from evals.datasets import EvalSet, QACase

FILE = Path("squad") / "dev-v2.0.json"


def load(root: Path, limit: int | None = None, seed: int = 0, file: Path = FILE) -> EvalSet[QACase]:
    path = root / file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (set DOCRAG_EVAL_DATA to the shared data folder)")
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
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
