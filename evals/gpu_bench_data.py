"""The inputs of ``evals.gpu_bench``, made here on the CPU with docrag's own parser and chunker.

The GPU machine has no Haystack, Qdrant or unstructured, so the real chunks travel as one JSON file::

    python -m evals.gpu_bench_data --out .carry/gpu_bench    # chunks.json + minilm/

- ``chunks``: the texts the dense embedder reads (contextual header + newline + content, as the indexing graph
  embeds them): every sample document of ``shared/data/docs`` (parsed and chunked by the graph's parser and
  chunker), the SciFact corpus and the SQuAD 2.0 official dev paragraphs (chunked as ``ingest_records``
  chunks them);
- ``queries`` and ``pairs`` (query index, chunk index): cross-encoder inputs of mixed lengths, each query
  with ``--candidates`` chunks (its own paragraph's or abstract's first chunk and others drawn at random),
  SciFact test queries and SQuAD questions;
- ``minilm/``: the packaged embedder (``rag.models.resolve_embedder``) in docrag's compact int8 form
  (``rag.training.compact``; the bench rebuilds fp32 weights from it, and every path it times uses the same
  weights). The cross-encoder is the shipped ``models/reranker`` (compact already, in the working tree).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from evals.bench import DATA

MAX_MB = 20.0


def _chunk_records(records: list[dict[str, Any]], chunker: Any) -> list[Any]:
    """Records -> chunk Documents, as ``DocRAG.ingest_records`` makes them."""
    from haystack import Document

    from ingest.context import record_meta

    elements = [Document(content=r["text"], meta={"source": r["source"], "file_name": r["source"],
                                                   **record_meta(r.get("title", "")), "category": "NarrativeText",
                                                   "page_number": None}) for r in records]
    return chunker.run(elements)["documents"]


def build(out: Path, candidates: int = 20, seed: int = 0) -> dict[str, Any]:
    from evals.datasets import beir, squad
    from ingest.chunk import ElementChunker
    from ingest.context import CONTEXT_FIELD, embedded_text
    from rag import graph, models
    from rag.api import DocRAG
    from rag.config import Settings
    from rag.training.compact import save_compact

    settings = Settings()
    chunker = ElementChunker(settings.chunk_size, settings.chunk_overlap)
    files, _ = DocRAG.expand_paths([DATA / "docs"])
    parsed = graph.build_parser(settings).parse_many([str(f) for f in files])
    doc_chunks = chunker.run([e for r in parsed if r.ok for e in r.documents])["documents"]
    scifact = beir.load_beir("scifact", DATA / "beir" / "scifact", split="test")
    squad_dev = squad.load(DATA, file=squad.OFFICIAL)
    parts = {"sample_docs": doc_chunks, "scifact": _chunk_records(scifact.corpus, chunker),
             "squad": _chunk_records(squad_dev.corpus, chunker)}
    texts: list[str] = []
    first_chunk: dict[str, int] = {}
    counts = {}
    for name, chunks in parts.items():
        counts[name] = len(chunks)
        for c in chunks:
            first_chunk.setdefault(c.meta["source"], len(texts))
            texts.append(embedded_text(c.meta.get(CONTEXT_FIELD, ""), c.content))
    rng = random.Random(seed)
    queries: list[str] = []
    pairs: list[list[int]] = []
    asked = [(c.query, next(iter(c.qrels))) for c in scifact.cases]
    asked += [(c.question, c.source) for c in squad_dev.cases if not c.is_impossible][:: 10]
    for q, source in asked:
        if source not in first_chunk:
            continue
        queries.append(q)
        own = first_chunk[source]
        pairs.extend([len(queries) - 1, i] for i in [own, *rng.sample(range(len(texts)), candidates - 1)])
    out.mkdir(parents=True, exist_ok=True)
    data = {"about": "real chunks (docrag parser + chunker) for evals.gpu_bench; see evals/gpu_bench_data.py",
            "chunk_size_words": settings.chunk_size, "counts": counts, "chunks": texts, "queries": queries,
            "pairs": pairs}
    path = out / "chunks.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    mb = path.stat().st_size / 2**20
    if mb > MAX_MB:
        raise SystemExit(f"{path} is {mb:.1f} MB, over {MAX_MB} MB: the device run carries it")
    save_compact(models.resolve_embedder().path, out / "minilm", int8=True, name="gpu-bench-minilm")
    words = sorted(len(t.split()) for t in texts)
    return {"out": str(out), "chunks": len(texts), "counts": counts, "queries": len(queries), "pairs": len(pairs),
            "chunk_words_min_median_max": [words[0], words[len(words) // 2], words[-1]],
            "chunks_json_mb": round(mb, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.gpu_bench_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=".carry/gpu_bench")
    p.add_argument("--candidates", type=int, default=20, help="chunks per cross-encoder query")
    args = p.parse_args(argv)
    print(json.dumps(build(Path(args.out), args.candidates), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
