"""CoNLL-2003 English NER (``conll2003/eng.testb.gz`` = test); IOB1 in the file, IOB2 in the cases."""

from __future__ import annotations

import gzip
from pathlib import Path

from evals.datasets import EvalSet, NERCase

SPLITS = {"train": "eng.train.gz", "dev": "eng.testa.gz", "test": "eng.testb.gz"}


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """``I-X`` that starts an entity becomes ``B-X`` (IOB1 uses ``B-`` only between adjacent same-type ones)."""
    out = []
    prev = "O"
    for t in tags:
        if t.startswith("I-") and (prev == "O" or prev[2:] != t[2:]):
            t = "B-" + t[2:]
        out.append(t)
        prev = t
    return out


def read_sentences(path: Path) -> list[tuple[list[str], list[str]]]:
    """A CoNLL-2003 file (gzipped) as sentences ``(tokens, IOB2 tags)`` in file order, ``-DOCSTART-`` lines
    skipped: the one reader (this loader and the NER trainer, ``rag.training.data.conll``, both use it)."""
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("-DOCSTART-"):
                if tokens:
                    sentences.append((tokens, iob1_to_iob2(tags)))
                    tokens, tags = [], []
                continue
            parts = line.split(" ")
            tokens.append(parts[0])
            tags.append(parts[-1])
    if tokens:
        sentences.append((tokens, iob1_to_iob2(tags)))
    return sentences


def load(root: Path, split: str = "test", limit: int | None = None) -> EvalSet[NERCase]:
    """Sentences of ``split`` in file order (``-DOCSTART-`` lines skipped); the first ``limit`` when given."""
    path = root / "conll2003" / SPLITS[split]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (set DOCRAG_DATA to the shared data folder)")
    sentences = read_sentences(path)[: limit or None]
    cases = [NERCase(sid=f"{split}-{i}", tokens=tuple(toks), tags=tuple(tags))
             for i, (toks, tags) in enumerate(sentences)]
    return EvalSet(name="conll2003", split=split, cases=cases, files=[path])
