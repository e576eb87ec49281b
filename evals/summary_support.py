"""How faithful are the summaries of our sample documents? The share of the numbers and names a summary states
that its document does not contain (``rag.summary_check``), per summarizer.

```
python -m evals.summary_support [--summarizer generator|<T5 id or path>|""] [--docs a.pdf b.eml] [--json]
```

Every summary is checked here against its stored chunks, whatever the backend: the extractive default should
give 0 (its sentences are the document's own); an abstractive summarizer (the GGUF generator, a T5 model) is
measured, and the app and API flag what it invents (``Summary.unsupported``, kept as ``flagged_by_api``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rag.summary_check import facts, unsupported_facts

DOCS = ("fake-memo.pdf", "fake-email-attachment.eml", "handbook-1p.docx", "ntsb-20071229X02007.pdf")


def run(summarizer: str = "", docs: tuple[str, ...] = DOCS, home: str | None = None,
        data: str | None = None) -> dict[str, Any]:
    from rag import DocRAG

    folder = Path(data or os.environ.get("DOCRAG_DATA", "/work/shared/data")) / "docs"
    d = DocRAG(home=home or tempfile.mkdtemp(prefix="docrag-sums-"), summarizer=summarizer)
    d.ingest([folder / name for name in docs])
    rows = []
    for name in docs:
        s = d.summarize(str(folder / name))
        source_text = "\n".join(h.text for h in d.show(str(folder / name)))  # checked here for every backend
        rows.append({"document": name, "backend": s.backend, "model": s.model, "seconds": s.seconds,
                     "facts": len(facts(s.text)), "unsupported": unsupported_facts(s.text, source_text),
                     "flagged_by_api": s.unsupported, "summary": s.text})
    d.close()
    n_facts = sum(r["facts"] for r in rows)
    n_bad = sum(len(r["unsupported"]) for r in rows)
    return {"summarizer": summarizer or "extractive", "documents": rows, "facts": n_facts, "unsupported": n_bad,
            "unsupported_share": round(n_bad / n_facts, 3) if n_facts else 0.0,
            "summaries_with_unsupported": sum(bool(r["unsupported"]) for r in rows)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.summary_support")
    p.add_argument("--summarizer", default="", help="'' = extractive, 'generator' = the GGUF model, or a T5 id/path")
    p.add_argument("--docs", nargs="*", default=list(DOCS), help="sample documents (names in $DOCRAG_DATA/docs)")
    p.add_argument("--home", help="a docrag home (default: a new temp folder)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(args.summarizer, tuple(args.docs), args.home)
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
        return 0
    for r in out["documents"]:
        print(f"{r['document']}: {r['backend']} {r['seconds']:.1f} s, {r['facts']} numbers/names, "
              f"unsupported: {', '.join(r['unsupported']) or 'none'}")
    print(f"ALL ({out['summarizer']}): {out['unsupported']}/{out['facts']} numbers/names not in the document "
          f"= {out['unsupported_share']:.3f}; {out['summaries_with_unsupported']}/{len(out['documents'])} summaries "
          "flagged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
