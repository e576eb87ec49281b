"""Benchmarks (``make bench``): JSON to stdout and ``evals/reports/bench-<name>.json``. Not timed tests.

- ``ingest``: pages/s and chunks/s end to end (parse, chunk, NER, BM25, embed, write) on the 7 text PDFs of
  ``shared/data/docs`` and on a ~1,000-page corpus of their copies (peak RSS of each side in a fresh process),
  against LangChain (PDFium page text, splitter, same MiniLM, QdrantVectorStore) at its best of
  ``LANGCHAIN_SETTINGS`` on the same files, in the same run; the ratios ours/LangChain.
- ``query``: retrieve (+ rerank) latency p50/p95 over a collection of ``--chunks`` chunks (default 10,000),
  time to first token with a 5-chunk context and decode tokens/s through our graph, against llama.cpp alone.
- ``generators``: ``evals.generators``: every installed generator (``docrag models list``) on short evidence
  prompts: load time, TTFT / whole answer p50, decode tokens/s, RSS.
- ``runtime``: the embedder, reranker and NER alone, torch against ONNX Runtime on the same passages
  (``inference_backend=torch`` vs ``auto``), with the ratios.
- ``store``: the embedded store (Qdrant Edge) alone, on synthetic 384-d vectors + BM25-like sparse vectors
  (no models): hybrid retrieve p50/p95 (plain and filtered) at ``--sizes`` chunks, reopen time, ``list`` on
  1,000 document records, and HNSW against exact search (recall@10, latency per ``hnsw_ef``) at ``--hnsw-sizes``.
- ``memory``: peak RSS of the app's work after one question (retrieval graph, query graph, summarizer,
  answer-side NER), each graph loading its own models (the old way) against the shared model pool, each in a
  fresh process; the ratio.
- ``answers``: ``evals.answer_bench``: TTFT and whole-answer p50 of the default evidence-first graph on held-out
  SQuAD 2.0 questions, against the generator-only graph in the same process.
- ``gpu``: ``evals.gpu_bench`` (run on a CUDA machine).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evals.datasets import data_dir
from evals.report import machine

REPO = Path(__file__).resolve().parent.parent
DATA = data_dir()
TEXT_PDFS = ["GSA2022.pdf", "multi-column.pdf", "reliance.pdf", "ntsb-20071229X02007.pdf",
             "layout-parser-paper-fast.pdf", "layout-parser-paper-with-table.pdf", "fake-memo.pdf"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _squad_pages(n_pages: int, words_per_page: int = 450) -> list[str]:
    import gzip

    with gzip.open(DATA / "squad" / "train-v1.1.json.gz") as f:
        data = json.loads(f.read())["data"]
    paras = [p["context"] for a in data for p in a["paragraphs"]]
    pages, cur = [], []
    for p in paras:
        cur.append(p)
        if sum(len(x.split()) for x in cur) >= words_per_page:
            pages.append("\n\n".join(cur))
            cur = []
        if len(pages) == n_pages:
            break
    return pages


def _ingest_case(d: Any, paths: list[Path], pdf_pages: int | None = None) -> dict[str, Any]:
    """One timed ingest; pages/s counts ``pdf_pages`` when given (every page of the files, as LangChain's
    loader counts them) rather than the pages that gave chunks."""
    t0 = time.perf_counter()
    rep = d.ingest(paths, force=True).to_dict()["summary"]
    dt = time.perf_counter() - t0
    pages = pdf_pages or rep["pages"]
    return {"files": rep["files"], "pages": pages, "pages_with_chunks": rep["pages"], "chunks": rep["chunks"],
            "failed": rep["failed"], "seconds": round(dt, 2), "pages_per_s": round(pages / dt, 2),
            "chunks_per_s": round(rep["chunks"] / dt, 2)}


def _warm_embedder(texts: list[str], dtype: str = "fp32") -> Any:
    """The default MiniLM as a plain SentenceTransformer, loaded and run once outside the timings (like ours)."""
    from sentence_transformers import SentenceTransformer

    from rag.models import resolve_embedder

    kwargs = {"dtype": "bfloat16"} if dtype == "bf16" else None
    model = SentenceTransformer(resolve_embedder().path, device="cpu", model_kwargs=kwargs)
    model.encode(texts[:2])
    return model


def _pdf_pages(paths: list[Path]) -> list[str]:
    """One text per PDF page from PDFium, as LangChain's ``PyPDFium2Loader`` loads them."""
    import pypdfium2 as pdfium

    pages = []
    for path in paths:
        pdf = pdfium.PdfDocument(str(path))
        try:
            pages.extend(page.get_textpage().get_text_bounded() for page in pdf)
        finally:
            pdf.close()
    return pages


def _langchain_store(texts: list[str] | list[Path], home: Path, chunk_chars: int = 1000, dtype: str = "fp32",
                     batch: int = 64, name: str = "lc") -> tuple[Any, dict[str, Any]]:
    """Baseline: a plain LangChain pipeline ([PDFium page text ->] RecursiveCharacterTextSplitter -> same MiniLM
    embedder -> QdrantVectorStore, embedded Qdrant). ``texts`` are page texts, or PDF files (loaded inside the
    timing). Needs the ``bench`` extra."""
    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    model = _warm_embedder(["warm-up text", "second warm-up text"], dtype)

    class STEmbeddings(Embeddings):  # what langchain-huggingface's HuggingFaceEmbeddings does
        def embed_documents(self, docs: list[str]) -> list[list[float]]:
            return model.encode(docs, batch_size=batch, normalize_embeddings=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return model.encode([text], normalize_embeddings=True)[0].tolist()

    t0 = time.perf_counter()
    pages = _pdf_pages(texts) if texts and isinstance(texts[0], Path) else texts
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_chars, chunk_overlap=150)
    chunks = [c for t in pages for c in splitter.split_text(t)]
    store = QdrantVectorStore.from_texts(chunks, STEmbeddings(), path=str(home / name), collection_name="lc",
                                         batch_size=max(64, batch))
    dt = time.perf_counter() - t0
    return store, {"pages": len(pages), "chunks": len(chunks), "seconds": round(dt, 2), "embed_dtype": dtype,
                   "embed_batch": batch, "pages_per_s": round(len(pages) / dt, 2),
                   "chunks_per_s": round(len(chunks) / dt, 2)}


def _langchain_or_error(fn: Any) -> Any:
    try:
        return fn()
    except ImportError as e:
        return None, {"error": f"LangChain baseline needs the bench extra (pip install -e .[bench]): {e}"}


LANGCHAIN_SETTINGS = (("fp32", 64), ("bf16", 64))


def _pdf_corpus(folder: Path, n_pages: int) -> dict[str, Any]:
    """``folder`` filled with copies of the text PDFs (``NNN-name.pdf``) until they hold ``n_pages`` pages."""
    import pypdfium2 as pdfium

    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in TEXT_PDFS:
        pdf = pdfium.PdfDocument(str(DATA / "docs" / name))
        counts[name] = len(pdf)
        pdf.close()
    pages, copies = 0, 0
    while pages < n_pages:
        name = TEXT_PDFS[copies % len(TEXT_PDFS)]
        shutil.copy(DATA / "docs" / name, folder / f"{copies:03d}-{name}")
        pages += counts[name]
        copies += 1
    return {"files": copies, "pages": pages, "made_from": "copies of the text PDFs of shared/data/docs, in turn"}


def _report_path(name: str) -> Path:
    return REPO / "evals" / "reports" / f"bench-{name}.json"


def _saver(name: str, out: dict[str, Any]) -> Any:
    def save() -> None:
        path = _report_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))

    return save


def corpus_child(args: argparse.Namespace) -> dict[str, Any]:
    """One 1,000-page ingest in this fresh process (``bench _corpus``), for its peak RSS: ours or LangChain's."""
    corpus, home = Path(args.corpus), Path(args.home)
    files = sorted(corpus.iterdir())
    if args.which == "docrag":
        from rag import DocRAG

        with DocRAG(home=home / "docrag") as d:
            d.ingest([DATA / "docs" / "fake-memo.pdf"])  # load models (their memory counts, their time not)
            row = _ingest_case(d, files, len(_pdf_pages(files)))
    else:
        store, row = _langchain_store(files, home, dtype=args.lc_dtype, batch=args.lc_batch, name="lc-corpus")
        store.client.close()
    row["peak_rss_mb"] = round(_rss_mb(), 1)  # this process (the parse workers are apart, within their budget)
    return row


def bench_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Ours (default settings: NER on, dense + sparse, parse pool, pipelined batches) against LangChain at the
    best of ``LANGCHAIN_SETTINGS`` on the same PDF files: the 7 text PDFs in this process, then a ~1,000-page
    corpus of their copies, each side in a fresh process for its peak RSS."""
    from rag import DocRAG

    out: dict[str, Any] = {"machine": machine()}
    save = _saver("ingest", out)  # after each case: a cut-short run keeps what it measured
    pdfs = [DATA / n for n in ("docs/" + x for x in TEXT_PDFS)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with DocRAG(home=home / "docrag") as d:
            d.ingest([DATA / "docs" / "fake-memo.pdf"])  # load models outside the timings
            out["text_pdfs"] = _ingest_case(d, pdfs, len(_pdf_pages(pdfs)))
            out["text_pdfs"]["settings"] = {k: getattr(d.settings, k) for k in (
                "extract_entities", "inference_backend", "parse_workers", "ingest_batch_chunks")}
        runs = []
        for i, (dtype, batch) in enumerate(LANGCHAIN_SETTINGS):
            lc_store, lc = _langchain_or_error(lambda dt=dtype, b=batch, n=i: _langchain_store(
                pdfs, home, dtype=dt, batch=b, name=f"lc{n}"))
            if lc_store is None:
                runs = [lc]
                break
            lc_store.client.close()
            runs.append(lc)
        best = max(runs, key=lambda r: r.get("pages_per_s", 0))
        out["text_pdfs_langchain"] = {"best": best, "tried": runs,
                                      "note": "PDFium page text, RecursiveCharacterTextSplitter(1000, 150), same "
                                              "MiniLM, QdrantVectorStore; no NER, sparse vectors or metadata"}
        if "pages_per_s" in best:
            out["ratio_ours_over_langchain_text_pdfs"] = round(out["text_pdfs"]["pages_per_s"] / best["pages_per_s"], 3)
        save()
        corpus = home / "corpus"
        out["corpus"] = _pdf_corpus(corpus, args.pages)
        for which in ("docrag", "langchain"):
            if which == "langchain" and "pages_per_s" not in best:
                break
            cmd = [sys.executable, "-m", "evals.bench", "_corpus", "--corpus", str(corpus), "--home",
                   str(home / f"child-{which}"), "--which", which, "--lc-dtype", best.get("embed_dtype", "fp32"),
                   "--lc-batch", str(best.get("embed_batch", 64))]
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
            if done.returncode:
                out[f"corpus_{which}"] = {"error": done.stderr.strip().splitlines()[-1:] or done.returncode}
                continue
            out[f"corpus_{which}"] = json.loads(done.stdout.strip().splitlines()[-1])
            save()
        ours, lc = out.get("corpus_docrag", {}), out.get("corpus_langchain", {})
        if "pages_per_s" in ours and "pages_per_s" in lc:
            out["ratio_ours_over_langchain_corpus"] = round(ours["pages_per_s"] / lc["pages_per_s"], 3)
    out["targets"] = {"ratio_text_pdfs_ge_1_5": out.get("ratio_ours_over_langchain_text_pdfs", 0) >= 1.5,
                      "ratio_corpus_ge_1_5": out.get("ratio_ours_over_langchain_corpus", 0) >= 1.5,
                      "corpus_peak_rss_le_2_gib": 0 < out.get("corpus_docrag", {}).get("peak_rss_mb", 0) <= 2048}
    return out


def bench_query(args: argparse.Namespace) -> dict[str, Any]:
    from llama_cpp import Llama

    from rag import DocRAG
    from rag.graph import SYSTEM_PROMPT, llama_model_kwargs
    from rag.models import resolve_generator
    from rag.timings import percentile, stage_timer

    out: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        d = DocRAG(home=Path(tmp), extract_entities=False)
        pages = _squad_pages(args.chunks // 2, words_per_page=300)
        t0 = time.perf_counter()
        d.ingest_records([{"source": f"p{i}", "text": t} for i, t in enumerate(pages)])
        out["collection"] = {"chunks": d.store.count_documents(), "ingest_seconds": round(time.perf_counter() - t0, 1)}
        questions = [p.split(".")[0][:120] for p in pages[:: max(1, len(pages) // args.queries)]][: args.queries]
        for rerank in (False, True):
            d.search(questions[0], top_k=5, rerank=rerank)
            lat = []
            stages: dict[str, list[float]] = {}
            for q in questions:
                t = time.perf_counter()
                with stage_timer() as timer:
                    d.search(q, top_k=5, rerank=rerank)
                lat.append(time.perf_counter() - t)
                for k, v in timer.stages().items():
                    stages.setdefault(k, []).append(v)
            out["retrieve" + ("_rerank" if rerank else "")] = {
                "p50_ms": round(1000 * statistics.median(lat), 1), "p95_ms": round(1000 * percentile(lat, 0.95), 1),
                "queries": len(lat), "inference_backend": d.settings.inference_backend,
                "stages_p50_ms": {k: round(1000 * statistics.median(v), 1) for k, v in stages.items()},
                "stages_p95_ms": {k: round(1000 * percentile(v, 0.95), 1) for k, v in stages.items()}}
        lc_store, lc = _langchain_or_error(lambda: _langchain_store(pages, Path(tmp)))
        if lc_store is not None:
            lc_store.similarity_search(questions[0], k=5)
            lat = []
            for q in questions:
                t = time.perf_counter()
                lc_store.similarity_search(q, k=5)
                lat.append(time.perf_counter() - t)
            lc.update(p50_ms=round(1000 * statistics.median(lat), 1), p95_ms=round(1000 * percentile(lat, 0.95), 1),
                      queries=len(lat), note="dense-only similarity_search, no sparse, no reranker")
            lc_store.client.close()
            lc["ratio_ours_hybrid_over_langchain_p95"] = round(out["retrieve"]["p95_ms"] / lc["p95_ms"], 3)
            lc["ratio_ours_hybrid_rerank_over_langchain_p95"] = round(out["retrieve_rerank"]["p95_ms"] /
                                                                      lc["p95_ms"], 3)
        out["baseline_langchain_retrieve"] = lc
        d.ask(questions[0])  # load the generator
        ttft, tps, contexts = [], [], []
        answer_stages: list[dict[str, float]] = []
        for q in questions[:10]:
            times: list[float] = []
            a = d.ask(q, top_k=5, rerank=True, on_token=lambda _tok, t=times: t.append(time.perf_counter()))
            contexts.append((q, [h.text for h in a.documents[:5]]))
            answer_stages.append(a.timings)
            if a.timings.get("first_token_s") is not None and len(times) > 1:
                ttft.append(a.timings["first_token_s"])
                tps.append((len(times) - 1) / max(times[-1] - times[0], 1e-6))
        out["graph_generation"] = {"ttft_p50_s": round(statistics.median(ttft), 3) if ttft else None,
                                   "decode_tokens_per_s_p50": round(statistics.median(tps), 1) if tps else None,
                                   "answers": len(tps),
                                   "stages_p50_s": {k: round(statistics.median([t[k] for t in answer_stages
                                                                               if k in t]), 4)
                                                    for k in sorted({k for t in answer_stages for k in t})},
                                   "note": "DocRAG.ask at the defaults (evidence-first): ttft includes retrieval, reranking, "
                                           "reading and the evidence prompt (the reader's spans in their sentences)"}
        d.close()
    # baseline: llama.cpp alone (no retrieval, no Haystack), the same 5 chunks and question as a chat prompt
    llm = Llama(model_path=resolve_generator().path, n_ctx=4096, n_batch=512, **llama_model_kwargs(d.settings))
    b_ttft, b_tps, b_prompt = [], [], []
    for q, chunks in contexts:
        ctx = "\n\n".join(f"[{i + 1}] {c}" for i, c in enumerate(chunks))
        msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Sources:\n{ctx}\n\nQuestion: {q}\nAnswer:"}]
        b_prompt.append(len(llm.tokenize(ctx.encode())))
        t = time.perf_counter()
        stamps = [time.perf_counter() for c in llm.create_chat_completion(
            msgs, max_tokens=256, temperature=0.0, repeat_penalty=d.settings.repeat_penalty, stream=True)
            if c["choices"][0]["delta"].get("content")]
        if len(stamps) > 1:
            b_ttft.append(stamps[0] - t)
            b_tps.append((len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-6))
    out["llama_cpp_alone"] = {"ttft_p50_s": round(statistics.median(b_ttft), 3) if b_ttft else None,
                              "decode_tokens_per_s_p50": round(statistics.median(b_tps), 1) if b_tps else None,
                              "context_tokens_p50": statistics.median(b_prompt) if b_prompt else None,
                              "answers": len(b_tps)}
    ours, base = out["graph_generation"], out["llama_cpp_alone"]
    if ours["decode_tokens_per_s_p50"] and base["decode_tokens_per_s_p50"]:
        out["ratio_graph_over_llama_cpp_decode"] = round(ours["decode_tokens_per_s_p50"] /
                                                         base["decode_tokens_per_s_p50"], 3)
        out["ratio_graph_over_llama_cpp_ttft"] = round(ours["ttft_p50_s"] / base["ttft_p50_s"], 3)
    out["peak_rss_mb"] = round(_rss_mb(), 1)
    return out


def _latency(fn: Any, items: list[Any]) -> dict[str, float]:
    """p50/p95 in ms of ``fn(item)`` over ``items`` (after one untimed warm-up call)."""
    from rag.timings import percentile

    fn(items[0])
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(percentile(times, 0.5), 2), "p95_ms": round(percentile(times, 0.95), 2), "runs": len(items)}


def bench_runtime(args: argparse.Namespace) -> dict[str, Any]:
    """The four CPU models alone, torch (as the graph loads it: ``model_dtype=auto``, bf16 on CPUs with native
    bf16) against ONNX Runtime (the gated variants), on the same real SQuAD passages: embedder chunks/s, reranker
    latency for one question and its ``retrieve_k`` candidates in one batch, NER chunks/s, reader latency for one
    question over 3 passages. Ratios = ONNX over torch; ``auto`` is what ``inference_backend=auto`` picks here."""
    from haystack import Document

    from rag import graph, models
    from rag.config import Settings

    data = json.loads((DATA / "squad" / "dev-v2.0.json").read_text())["data"]
    paras = [p["context"] for a in data for p in a["paragraphs"]]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]][:: 97][: args.queries]
    texts = paras[: args.runtime_chunks]
    out: dict[str, Any] = {"machine": machine(), "chunks": len(texts), "questions": len(questions),
                           "auto": models.inference_backend("auto", "cpu")}  # the bf16 unit: machine.cpu_bf16
    per: dict[str, dict[str, Any]] = {}
    for backend in ("torch", "onnx"):
        settings = Settings(home=Path(tempfile.gettempdir()) / "docrag-bench", inference_backend=backend)
        row: dict[str, Any] = {}
        embedder = graph.doc_embedder(settings)
        embedder.warm_up()
        embedder.run([Document(content=t) for t in texts[:8]])
        t0 = time.perf_counter()
        embedder.run([Document(content=t) for t in texts])
        row["embed_chunks_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
        reranker = graph.reranker_component(settings, models.resolve_reranker())
        reranker.warm_up()
        cands = [Document(content=t) for t in paras[: settings.retrieve_k]]
        row["rerank_20"] = _latency(lambda q, r=reranker, c=cands: r.run(query=q, documents=c), questions)
        ner = graph.entity_extractor(settings)
        ner.warm_up()
        t0 = time.perf_counter()
        ner.extract(texts)
        row["ner_chunks_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
        reader = graph.reader_component(settings)
        row["models"] = {"embedder": embedder.model, "reranker": reranker.model, "ner": ner.model}
        if reader is not None:
            reader.warm_up()
            passages = [Document(content=t, score=1.0) for t in paras[:3]]
            row["read_3"] = _latency(lambda q, r=reader, c=passages: r.run(query=q, documents=c), questions)
            row["models"]["reader"] = reader.model
        if backend == "torch":  # the precision each model ran in
            row["dtype"] = {k: models.torch_dtype(settings.model_dtype, "cpu", k)
                            for k in ("embedder", "reranker", "ner", "reader")}
        per[backend] = row
    out.update(per)
    t, o = per["torch"], per["onnx"]
    out["ratio_onnx_over_torch"] = {
        "embed_chunks_per_s": round(o["embed_chunks_per_s"] / t["embed_chunks_per_s"], 2),
        "rerank_p95_ms": round(o["rerank_20"]["p95_ms"] / t["rerank_20"]["p95_ms"], 3),
        "ner_chunks_per_s": round(o["ner_chunks_per_s"] / t["ner_chunks_per_s"], 2)}
    if "read_3" in t and "read_3" in o:
        out["ratio_onnx_over_torch"]["read_p95_ms"] = round(o["read_3"]["p95_ms"] / t["read_3"]["p95_ms"], 3)
    return out


def _synthetic_batches(n: int, dim: int, seed: int = 0, batch: int = 2048) -> tuple[Any, Iterator[list[Any]]]:
    """``n`` chunks in 200 topics, made one write batch at a time (100k chunks as lists would take ~1 GB):
    unit dense vectors near their topic centre, sparse terms from a Zipf vocabulary biased to the topic; 50
    chunks per document source. Returns the topic centres (for queries) and the batches."""
    import numpy as np
    from haystack import Document
    from haystack.dataclasses import SparseEmbedding

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, dim))

    def batches() -> Iterator[list[Any]]:
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            topic = rng.integers(0, 200, size=hi - lo)
            dense = centres[topic] + rng.normal(scale=1.5, size=(hi - lo, dim))
            dense /= np.linalg.norm(dense, axis=1, keepdims=True)
            docs = []
            for j, i in enumerate(range(lo, hi)):
                terms = np.unique(np.concatenate([rng.zipf(1.3, 30) % 30_000,
                                                  topic[j] * 100 + rng.integers(0, 100, 8)]))
                docs.append(Document(id=f"c{i}", content=f"chunk {i} of topic {topic[j]}",
                                     embedding=dense[j].tolist(),
                                     sparse_embedding=SparseEmbedding(indices=terms.tolist(),
                                                                      values=[1.0] * len(terms)),
                                     meta={"source": f"/docs/doc{i // 50}.txt", "chunk_index": i % 50,
                                           "page_numbers": [1 + (i % 50) // 5], "state": "live"}))
            yield docs

    return centres, batches()


ONE_DOC = {"field": "meta.source", "operator": "==", "value": "/docs/doc7.txt"}  # 50 of the store bench's chunks


def _hnsw_row(chunks: Any, queries: list[Any], efs: list[int]) -> dict[str, Any]:
    """Exact search, then HNSW (built once, blocking) at each ``hnsw_ef``: recall@10 of the dense top 10 against
    exact search, dense and hybrid p50/p95. ``pays`` = the first ef whose recall@10 >= 0.98 and whose hybrid p95
    is below the exact hybrid p95 (None: exact search is as fast, stay exact)."""
    dense = lambda q: chunks._query_by_embedding(q[0], top_k=10)
    hybrid = lambda q: chunks._query_hybrid(*q, top_k=20)
    exact_ids = [[d.id for d in dense(q)] for q in queries]
    row: dict[str, Any] = {"exact": {"dense": _latency(dense, queries), "hybrid": _latency(hybrid, queries)}}
    t = time.perf_counter()
    chunks.optimize()
    row["build_s"] = round(time.perf_counter() - t, 1)
    row["by_ef"], row["pays_at_ef"] = {}, None
    for ef in efs:
        chunks.hnsw_ef = ef
        hits = sum(len({d.id for d in dense(q)} & set(ex)) for q, ex in zip(queries, exact_ids, strict=True))
        r = {"recall_at_10": round(hits / (10 * len(queries)), 4), "dense": _latency(dense, queries),
             "hybrid": _latency(hybrid, queries)}
        row["by_ef"][str(ef)] = r
        if (row["pays_at_ef"] is None and r["recall_at_10"] >= 0.98
                and r["hybrid"]["p95_ms"] < row["exact"]["hybrid"]["p95_ms"]):
            row["pays_at_ef"] = ef
    return row


def _bench_list(dim: int, runs: int = 20) -> dict[str, Any]:
    """``docrag list`` on 1,000 document records: ``DocRAG.list_documents()`` (what the command runs) on a
    fresh DocRAG (opening the store included) and warm, and the whole ``docrag list --json`` process once."""
    import subprocess

    from ingest.store.library import DocumentRecord
    from rag.api import DocRAG
    from rag.timings import percentile

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with DocRAG(home=tmp) as d:
            recs = [DocumentRecord(source=f"/docs/doc{i}.pdf", file_name=f"doc{i}.pdf", file_type="pdf", chunks=40,
                                   pages=12, entities={"ORG\tacme": 3, "PERSON\tada": 1}) for i in range(1000)]
            for lo in range(0, 1000, 256):
                d.library.put(*recs[lo:lo + 256])
        cold = []
        for i in range(5):
            t = time.perf_counter()
            with DocRAG(home=tmp) as d:
                assert len(d.list_documents()) == 1000
                cold.append((time.perf_counter() - t) * 1000)
                if i == 0:
                    out["warm"] = _latency(lambda _: d.list_documents(), list(range(runs)))
        out["cold_open_and_list_p50_ms"] = round(percentile(cold, 0.5), 1)
        t = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "rag.cli", "--home", tmp, "list", "--json"], check=False,
                             capture_output=True,
                             text=True, cwd=REPO, timeout=300)
        out["cli_process_s"] = round(time.perf_counter() - t, 2)
        assert run.returncode == 0 and len(json.loads(run.stdout)) == 1000, run.stderr
    return out


def bench_store(args: argparse.Namespace) -> dict[str, Any]:
    """The embedded store alone (no models) at ``--sizes`` chunks: write rate, hybrid retrieve p50/p95 plain and
    filtered to one document, reopen time; HNSW against exact search at ``--hnsw-sizes``; ``list`` on 1,000
    documents."""
    import numpy as np
    from haystack.dataclasses import SparseEmbedding
    from haystack.document_stores.types import DuplicatePolicy

    from ingest.store import StoreConfig, open_library
    from ingest.store.library import DocumentRecord

    dim = 384
    out: dict[str, Any] = {"machine": machine(), "queries": args.queries, "sizes": {},
                           "vectors": "synthetic: 384-d unit vectors near 200 topic centres (clustered, not real "
                                      "MiniLM embeddings) + Zipf sparse term vectors, 50 chunks per document; no "
                                      "models, so only the store is timed"}
    rng = np.random.default_rng(1)
    t_all = time.perf_counter()
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = StoreConfig(collection="bench", embedding_dim=dim, path=Path(tmp), hnsw_threshold=0)
            lib = open_library(cfg)
            centres, batches = _synthetic_batches(n, dim)
            write_s = 0.0
            for docs in batches:
                t0 = time.perf_counter()
                lib.chunks.write_documents(docs, policy=DuplicatePolicy.OVERWRITE)
                write_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            lib.chunks.flush()
            write_s += time.perf_counter() - t0
            lib.put(*[DocumentRecord(source=f"/docs/doc{i}.txt", chunks=50) for i in range((n + 49) // 50)])
            queries = []
            for _ in range(args.queries):
                q = centres[rng.integers(0, 200)] + rng.normal(scale=1.5, size=dim)
                queries.append(((q / np.linalg.norm(q)).tolist(),
                                SparseEmbedding(indices=rng.integers(0, 20_000, 6).tolist(), values=[1.0] * 6)))
            row: dict[str, Any] = {"write_s": round(write_s, 2), "write_chunks_per_s": round(n / write_s)}
            chunks = lib.chunks
            row["hybrid"] = _latency(lambda q, c=chunks: c._query_hybrid(*q, top_k=20), queries)
            row["hybrid_filtered"] = _latency(lambda q, c=chunks: c._query_hybrid(*q, filters=ONE_DOC, top_k=20),
                                               queries)
            lib.close()
            t = time.perf_counter()
            lib = open_library(cfg)
            lib.chunks.count_documents()
            row["reopen_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            lib.chunks._query_hybrid(*queries[0], top_k=20)
            row["first_query_after_reopen_ms"] = round(1000 * (time.perf_counter() - t), 1)
            if n in args.hnsw_sizes:
                row["hnsw"] = _hnsw_row(lib.chunks, queries, args.hnsw_ef)
            lib.close()
            out["sizes"][str(n)] = row
            print(f"bench store: {n} chunks ({time.perf_counter() - t_all:.0f} s): {json.dumps(row)}", file=sys.stderr)
    out["list_1000_documents"] = _bench_list(dim)
    out["total_s"] = round(time.perf_counter() - t_all, 1)
    return out


MEMORY_QUESTION = "How many bottles of water were delivered?"


class _OneLoadPerGraph:
    """The old way, for the memory bench: every component loads its own models (a fresh pool each time), as each
    cached graph, the summarizer and the answer-side NER did before :class:`rag.engine.ModelPool`."""

    def __init__(self) -> None:
        import threading

        self.generate_lock = threading.RLock()
        self.loads = 0

    def warm(self, component: Any) -> Any:
        from rag.engine import ModelPool

        fresh = ModelPool()
        fresh.warm(component)
        self.loads += fresh.loads
        return component

    def warm_pipeline(self, pipeline: Any) -> Any:
        for _, comp in pipeline.walk():
            self.warm(comp)
        return pipeline


def _memory_child(mode: str, home: str) -> dict[str, Any]:
    """One ``make run`` session after one question, in this (fresh) process: the retrieval graph (search), the
    query graph (ask), the summarizer and the answer-side NER; peak RSS. ``mode`` ``pool`` = the shared model
    pool (today), ``per-graph`` = every graph loading its own models."""
    from rag.api import DocRAG
    from rag.engine import Engine

    d = DocRAG(home=home, max_tokens=48)  # memory is what is loaded; a short answer keeps the run short
    if mode == "per-graph":
        d._engine = Engine(d.settings, lambda: d.store, _OneLoadPerGraph())
    source = d.list_documents()[0]["source"]
    t = time.perf_counter()
    d.search(MEMORY_QUESTION)
    d.summarize(source)
    answer = d.ask(MEMORY_QUESTION)
    d.engine.entity_extractor().extract([answer.text])  # the answer-side NER even when the answer is declined
    d.close()
    return {"mode": mode, "peak_rss_mb": round(_rss_mb(), 1), "loads": d.engine.pool.loads,
            "seconds": round(time.perf_counter() - t, 1), "answer": answer.text[:120], "mode_of_answer": answer.mode}


def bench_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of the app's work after one question, the old way (each graph its own models) against the model
    pool: one store ingested here, then each way in its own fresh process, run alternately ``--memory-runs``
    times; the ratio compares the medians."""
    import subprocess

    from rag.api import DocRAG

    out: dict[str, Any] = {"machine": machine(), "question": MEMORY_QUESTION, "runs": {"per-graph": [], "pool": []}}
    with tempfile.TemporaryDirectory() as home:
        with DocRAG(home=home, extract_entities=False) as d:  # what is ingested does not matter here
            report = d.ingest([DATA / "docs" / "fake-memo.pdf"])
            assert not report.failed, report.failed
        for _ in range(args.memory_runs):
            for mode in ("per-graph", "pool"):
                run = subprocess.run([sys.executable, "-m", "evals.bench", "memory", "--memory-child", mode,
                                      "--memory-home", home], check=False, capture_output=True, text=True, cwd=REPO,
                                     timeout=1200)
                if run.returncode != 0:
                    raise RuntimeError(f"memory bench ({mode}) failed: {run.stderr[-2000:]}")
                out["runs"][mode].append(json.loads(run.stdout.strip().splitlines()[-1]))
    med = {m: statistics.median(r["peak_rss_mb"] for r in rows) for m, rows in out["runs"].items()}
    out["peak_rss_mb"] = med
    out["ratio_pool_over_per_graph"] = round(med["pool"] / med["per-graph"], 3)
    out["target_ratio"] = 0.6
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench")
    p.add_argument("what", choices=["ingest", "query", "store", "memory", "generators", "runtime", "answers", "gpu",
                                    "all", "_corpus"])
    p.add_argument("--runtime-chunks", type=int, default=128, help="passages embedded/tagged (runtime)")
    p.add_argument("--pages", type=int, default=1000, help="pages of the text corpus (ingest)")
    p.add_argument("--chunks", type=int, default=10000, help="collection size (query)")
    p.add_argument("--queries", type=int, default=50)
    ints = lambda v: [int(x) for x in v.split(",") if x]
    p.add_argument("--sizes", type=ints, default=[1000, 10_000, 13_000, 100_000],
                   help="collection sizes of the store bench, comma-separated")
    p.add_argument("--answer-questions", type=int, default=30, help="held-out questions (answers)")
    p.add_argument("--hnsw-sizes", type=ints, default=[10_000, 100_000],
                   help="sizes at which the store bench also builds HNSW and compares it with exact search")
    p.add_argument("--hnsw-ef", type=ints, default=[32, 64, 128, 256], help="HNSW search beams tried (store)")
    p.add_argument("--memory-runs", type=int, default=1, help="fresh processes per way (memory)")
    p.add_argument("--memory-child", choices=["per-graph", "pool"], help=argparse.SUPPRESS)
    p.add_argument("--memory-home", help=argparse.SUPPRESS)
    p.add_argument("--prompts", type=int, default=20, help="evidence prompts per generator (generators)")
    p.add_argument("--corpus", help=argparse.SUPPRESS)  # _corpus: the child process of `bench ingest`
    p.add_argument("--home", help=argparse.SUPPRESS)
    p.add_argument("--which", choices=["docrag", "langchain"], help=argparse.SUPPRESS)
    p.add_argument("--lc-dtype", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--lc-batch", type=int, default=64, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        print(json.dumps(_memory_child(args.memory_child, args.memory_home)))
        return 0
    if args.what == "_corpus":
        print(json.dumps(corpus_child(args)))
        return 0
    if args.what == "gpu":  # on the GPU machine: its inputs come from evals.gpu_bench_data, not DATA
        from evals import gpu_bench

        return gpu_bench.main(["--out", str(REPO / "evals" / "reports" / "gpu_bench.json")])
    if not DATA.is_dir():
        print(f"bench: data folder {DATA} not found (set DOCRAG_DATA)", file=sys.stderr)
        return 2
    results = {}
    for name, fn in (("runtime", bench_runtime), ("ingest", bench_ingest), ("query", bench_query),
                     ("store", bench_store), ("memory", bench_memory)):
        if args.what in (name, "all"):
            results[name] = fn(args)
            _saver(name, results[name])()
    if args.what in ("answers", "all"):
        from evals.answer_bench import bench_answers

        results["answers"] = bench_answers(n_questions=args.answer_questions)
        _saver("answers", results["answers"])()
    if args.what in ("generators", "all"):
        from evals import generators

        results["generators"] = generators.run(n_prompts=args.prompts)  # writes bench-generators.json
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
