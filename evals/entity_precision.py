"""Entities that mean something, measured on our sample documents: precision at the top-20 entities of each
document and the share of nonsense entities, against ``evals/datasets/docs_entities.json`` (labelled by hand).

```
python -m evals.entity_precision [--home /tmp/ent-home] [--json]
```

Scoring (numbers are not scored; labels compare in groups PERSON, ORG, PLACE, NAME, DATE):
- correct: the entity's normalised text (``rag.entities.normalize_text``) and label group match a labelled one;
- partial: a piece of a labelled entity ("Piper PA" of "Piper PA-22-150"), or one with a wrong label; neither
  correct nor nonsense;
- nonsense: no labelled entity of the document is it or holds it (a fragment of nothing, a code, junk).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from rag.entities import NUMERIC_LABELS, canonical_label, normalize_text, vote_labels

GOLD = Path(__file__).parent / "datasets" / "docs_entities.json"
GROUPS = {"PERSON": "PERSON", "ORG": "ORG", "LOC": "PLACE", "GPE": "PLACE", "FAC": "PLACE", "DATE": "DATE"}
TOP = 20


def group(label: str) -> str:
    return GROUPS.get(canonical_label(label), "NAME")


def mentions(text: str, gold: list[list[str]]) -> int:
    """Occurrences of the labelled entities in the text (longest first, no overlaps)."""
    spans: list[tuple[int, int]] = []
    for _, name in sorted(gold, key=lambda g: -len(g[1])):
        for m in re.finditer(re.escape(name), text):
            if not any(m.start() < e and s < m.end() for s, e in spans):
                spans.append((m.start(), m.end()))
    return len(spans)


def score(predicted: list[tuple[str, str]], gold: list[list[str]]) -> dict[str, Any]:
    """``predicted``: (label, text) of the top entities, most frequent first."""
    g = [(grp if grp in {"PERSON", "ORG", "PLACE", "NAME", "DATE"} else group(grp), normalize_text(t))
         for grp, t in gold]
    rows = []
    for label, text in predicted:
        p = (group(label), normalize_text(text))
        if p in g:
            verdict = "correct"
        elif any(p[1] == t or (p[1] and p[1] in t) or
                 (t in p[1] and len(p[1].split()) - len(t.split()) <= 1) for _, t in g):
            verdict = "partial"
        else:
            verdict = "nonsense"
        rows.append({"label": label, "text": text, "verdict": verdict})
    n = max(len(rows), 1)
    return {"n": len(rows), "precision": sum(r["verdict"] == "correct" for r in rows) / n,
            "nonsense": sum(r["verdict"] == "nonsense" for r in rows) / n, "rows": rows}


def run(home: str | None = None, data: str | None = None) -> dict[str, Any]:
    from evals.datasets import data_dir
    from rag import DocRAG

    docs_dir = data_dir(data) / "docs"
    gold = json.loads(GOLD.read_text(encoding="utf-8"))["documents"]
    d = DocRAG(home=home or tempfile.mkdtemp(prefix="docrag-ents-"))
    paths = [docs_dir / name for name in gold]
    d.ingest(paths)
    extractor = d._entity_extractor()  # re-extract from the stored chunks: the current rules, not the stored meta
    per_doc: dict[str, Any] = {}
    total_rows: list[dict[str, Any]] = []
    total_mentions = 0
    for name, labelled in gold.items():
        hits = d.show(str(docs_dir / name))
        text = "\n".join(h.text for h in hits)
        counts: dict[tuple[str, str], int] = {}
        shown: dict[tuple[str, str], str] = {}
        for ents in vote_labels(extractor.extract([h.text for h in hits])):  # as ingest does, per document
            for e in ents:
                if canonical_label(e["label"]) in NUMERIC_LABELS:
                    continue
                k = (canonical_label(e["label"]), normalize_text(e["text"]))
                counts[k] = counts.get(k, 0) + 1
                shown.setdefault(k, " ".join(e["text"].split()))
        top = sorted(counts, key=lambda k: (-counts[k], k))[:TOP]
        s = score([(k[0], shown[k]) for k in top], labelled)
        s["gold_mentions"] = mentions(text, labelled)
        total_mentions += s["gold_mentions"]
        per_doc[name] = s
        total_rows += s["rows"]
    n = max(len(total_rows), 1)
    d.close()
    return {"documents": per_doc, "gold_mentions": total_mentions, "predicted": len(total_rows),
            "precision_at_20": sum(r["verdict"] == "correct" for r in total_rows) / n,
            "nonsense_share": sum(r["verdict"] == "nonsense" for r in total_rows) / n,
            "ner_model": d.settings.ner_model or "default"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.entity_precision")
    p.add_argument("--home", help="a docrag home to ingest the documents into (default: a new temp folder)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(args.home)
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
        return 0
    for name, s in out["documents"].items():
        print(f"{name}: {s['n']} entities, precision {s['precision']:.2f}, nonsense {s['nonsense']:.2f}, "
              f"{s['gold_mentions']} labelled mentions")
        for r in s["rows"]:
            if r["verdict"] != "correct":
                print(f"    {r['verdict']:8s} {r['label']:8s} {r['text']}")
    print(f"ALL: precision@{TOP} {out['precision_at_20']:.3f}, nonsense {out['nonsense_share']:.3f} "
          f"over {out['predicted']} entities; {out['gold_mentions']} labelled mentions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
