"""The one eval runner: ingest each corpus once through the real graph, run every task, build the report.

```python
from evals.runner import Options, run
report = run(["retrieval", "answers"], Options(full=False))   # CI sizes
```

CI sizes (``full=False``): SciFact test (all 300 queries, full corpus); the MS MARCO passage subset (43 TREC
DL 2019 judged queries, all 5,000 passages, test only); 200 SQuAD 2.0 questions (100
answerable, 100 not, seeded) over all 646 dev paragraphs; the first 1,000 CoNLL-2003 testb sentences;
5 XSum articles. ``full=True`` uses every case (the SQuAD answer eval then takes hours on a CPU).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from evals import datasets as dsets
from evals import metrics
from evals.report import Section, dataset_entry, machine
from rag.timings import percentile

logger = logging.getLogger(__name__)

TASKS = ("retrieval", "answers", "ner", "summaries")
CI_LIMITS: dict[str, int | None] = {"scifact": None, "msmarco": None, "squad": 200, "squad-test": 120,
                                    "squad-calib": 200, "conll2003": 1000, "xsum": 5}
FULL_LIMITS: dict[str, int | None] = {"scifact": None, "msmarco": None, "squad": None, "squad-test": None,
                                      "squad-calib": None, "conll2003": None, "xsum": None}
DEFAULT_DATASETS = {"retrieval": ("scifact", "msmarco"), "answers": ("squad-test",), "ner": ("conll2003",),
                    "summaries": ("xsum",)}


FULL_RERANK_DEPTH = 50


@dataclass
class Options:
    """Knobs of a run. ``settings`` are extra ``Settings`` overrides for every ``DocRAG`` the run creates."""

    data_dir: Path | None = None
    full: bool = False
    limit: int | None = None
    home: Path | None = None  # keep stores here between runs (default: a temporary folder, removed after)
    depth: int = 300  # chunks fetched by first-stage retrieval configs
    # hybrid chunks rescored by the cross-encoder: None = the product's own candidate count (Settings.retrieve_k)
    # in the CI-sized run, 50 in the full one
    rerank_depth: int | None = None
    answer_top_k: int = 5
    settings: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None

    def rerank_depth_for(self, retrieve_k: int) -> int:
        return self.rerank_depth or (FULL_RERANK_DEPTH if self.full else retrieve_k)

    def limit_for(self, dataset: str) -> int | None:
        if self.limit:
            return self.limit
        return (FULL_LIMITS if self.full else CI_LIMITS).get(dataset)


def _say(opts: Options, msg: str) -> None:
    logger.info(msg)
    if opts.progress:
        opts.progress(msg)


class Workspace:
    """Where the eval stores live: one embedded Qdrant folder per dataset (embedded Qdrant locks its folder)."""

    def __init__(self, home: Path | None = None) -> None:
        self._tmp = None if home else tempfile.mkdtemp(prefix="docrag-eval-")
        self.home = Path(home or self._tmp)
        self._services: dict[str, Any] = {}

    def service(self, dataset: str, **overrides: Any) -> Any:
        from rag import DocRAG

        if dataset not in self._services:
            base = {"extract_entities": False, "n_threads": os.cpu_count() or 1}
            self._services[dataset] = DocRAG(home=self.home / dataset, collection=dataset, **{**base, **overrides})
        return self._services[dataset]

    def close(self) -> None:
        for d in self._services.values():
            d.close()
        self._services.clear()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ensure_ingested(d: Any, evalset: dsets.EvalSet, opts: Options) -> dict[str, Any]:
    """Ingest ``evalset.corpus`` with ``DocRAG.ingest_records`` unless this exact corpus is already stored.

    A marker next to the store records a key over the corpus and every setting that changes chunks or
    vectors, and the chunk count; a mismatch re-ingests. Returns ingest stats (``reused`` when skipped).
    """
    corpus_key = hashlib.sha256(json.dumps(evalset.corpus, sort_keys=True).encode()).hexdigest()
    key = d.index_key(corpus_key)
    marker = Path(d.settings.home) / f"eval-{d.collection}.json"
    if marker.is_file():
        m = json.loads(marker.read_text())
        if m.get("key") == key and d.store.count_documents() == m.get("chunks"):
            _say(opts, f"{evalset.name}: reusing {m['chunks']} stored chunks in {d.settings.home}")
            return {**m, "reused": True}
    t0 = time.perf_counter()
    n = len(evalset.corpus)

    def progress(done: int, total: int, _src: str) -> None:
        el = time.perf_counter() - t0
        _say(opts, f"{evalset.name}: ingested {done}/{total} records ({el:.0f} s)")

    report = d.ingest_records(evalset.corpus, batch_size=256, entities=False, progress=progress)
    chunks = sum(i["chunks"] for i in report.ingested)
    stats = {"key": key, "records": n, "chunks": chunks, "seconds": round(time.perf_counter() - t0, 1),
             "chunks_per_s": round(chunks / max(time.perf_counter() - t0, 1e-9), 2)}
    stored = d.store.count_documents()
    if stored != chunks:
        logger.warning("%s: %d chunks ingested but %d stored", evalset.name, chunks, stored)
    marker.write_text(json.dumps({**stats, "chunks": stored}))
    return {**stats, "reused": False}


# --- tasks -------------------------------------------------------------------------------------------
def run_retrieval(ws: Workspace, dataset: str, opts: Options) -> tuple[Section, dict[str, Any]]:
    from evals.retrieval import build_searchers, reranker_id

    ds = dsets.load(dataset, opts.data_dir, limit=opts.limit_for(dataset))
    t0 = time.perf_counter()
    d = ws.service(dataset, **opts.settings)
    ingest = ensure_ingested(d, ds, opts)
    rerank_depth = opts.rerank_depth_for(d.settings.retrieve_k)
    searchers, skipped = build_searchers(d.settings, d.store, opts.depth, rerank_depth)
    runs: dict[str, dict[str, dict[str, float]]] = {name: {} for name in searchers}
    lat: dict[str, list[float]] = {name: [] for name in searchers}
    for i, case in enumerate(ds.cases):
        for name, search in searchers.items():
            q0 = time.perf_counter()
            hits = search(case.query)
            lat[name].append((time.perf_counter() - q0) * 1000)
            runs[name][case.qid] = metrics.doc_run(hits, k=100)
        if (i + 1) % 50 == 0:
            _say(opts, f"{dataset}: {i + 1}/{len(ds.cases)} queries")
    qrels = {c.qid: c.qrels for c in ds.cases}
    sec = Section(task="retrieval", dataset=dataset, n=len(ds.cases), skipped=skipped,
                  params={"first_stage_chunks": opts.depth, "rerank_depth": rerank_depth,
                          "doc_aggregation": "max over chunks (first occurrence in rank order)",
                          "reranker": reranker_id(d.settings), "chunks": ingest["chunks"],
                          "records": len(ds.corpus)})
    for name in searchers:
        sec.configs[name] = metrics.ranking_metrics(qrels, runs[name])
        sec.timings[f"{name}_ms_p50"] = round(percentile(lat[name], 0.5), 1)
        sec.timings[f"{name}_ms_p95"] = round(percentile(lat[name], 0.95), 1)
    if "hybrid_rerank" in searchers:
        sec.notes.append("hybrid_rerank latency includes its own hybrid retrieval of rerank_depth chunks")
    sec.timings["ingest_s"] = ingest.get("seconds", 0.0)
    sec.seconds = round(time.perf_counter() - t0, 1)
    sec.notes.append("bm25 is the baseline; configs share one ingested collection")
    if ingest.get("reused"):
        sec.notes.append("collection reused from an earlier run (same corpus and settings)")
    return sec, {dataset: dataset_entry(ds, len(ds.cases))}


ANSWER_CONFIGS = ("evidence", "extractive", "generator")
GENERATOR_CI_QUESTIONS = 24  # the generator-only config is slow on 2 cores: CI runs it on a seeded subset


def answer_rows(d: Any, cases: list, opts: Options, label: str) -> tuple[list[dict], dict[str, Any]]:
    """Ask every case through ``d``; rows for ``metrics.answer_metrics`` plus timing lists and samples."""
    rows, totals, firsts, samples, context_hits = [], [], [], [], 0
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        a = d.ask(case.question, with_entities=False)
        by_id = {h.chunk_id: h.text for h in a.documents}
        cited = [by_id.get(c.chunk_id, c.quote) for c in a.citations]
        verbatim = [c.start is not None and by_id.get(c.chunk_id, "")[c.start:c.end] == c.quote
                    for c in a.citations]
        rows.append({"answers": list(case.answers), "prediction": a.text, "declined": a.declined,
                     "cited_texts": cited, "verbatim": verbatim})
        context_hits += any(h.source == case.source for h in a.documents)
        totals.append(a.timings.get("total_s", 0.0))
        if "first_token_s" in a.timings:
            firsts.append(a.timings["first_token_s"])
        if len(samples) < 20:
            samples.append({"qid": case.qid, "question": case.question, "gold": list(case.answers),
                            "answer": a.text, "mode": a.mode, "confidence": round(a.confidence, 3),
                            "cited": [c.source for c in a.citations]})
        if (i + 1) % 20 == 0:
            _say(opts, f"{label}: {i + 1}/{len(cases)} questions ({time.perf_counter() - t0:.0f} s)")
    return rows, {"totals": totals, "firsts": firsts, "samples": samples,
                  "context_recall": context_hits / max(len(cases), 1)}


def config_metrics(rows: list[dict], extra: dict[str, Any]) -> dict[str, float]:
    """One config's row of the answer table: answer metrics, coverage, verbatim rate, context recall, latency."""
    m = metrics.answer_metrics(rows)
    quotes = [v for r in rows for v in r["verbatim"]]
    m["answerable_coverage"] = 1.0 - m["false_abstention"]
    m["verbatim_quote_rate"] = sum(quotes) / len(quotes) if quotes else 1.0
    m["context_recall"] = extra["context_recall"]
    m["ttft_s_p50"] = round(percentile(extra["firsts"], 0.5), 3)
    m["ask_s_p50"] = round(percentile(extra["totals"], 0.5), 3)
    return m


def _reader_gold(ds: dsets.EvalSet, settings: Any) -> dict[str, float]:
    """The reader alone on each question's gold paragraph (the published SQuAD 2.0 protocol)."""
    from haystack import Document

    from rag import graph

    reader = graph.reader_component(settings)
    if reader is None:
        return {}
    reader.warm_up()
    text = {r["source"]: r["text"] for r in ds.corpus}
    rows = []
    for case in ds.cases:
        answers = reader.run(query=case.question, documents=[Document(content=text[case.source])])["answers"]
        best = answers[0] if answers and answers[0].data is not None else None
        declined = best is None or best.score < reader.threshold
        rows.append({"answers": list(case.answers), "prediction": "" if declined else best.data,
                     "declined": declined, "cited_texts": [text[case.source]]})
    m = metrics.answer_metrics(rows)
    return {k: m[k] for k in ("em", "f1", "has_ans_f1", "abstention_accuracy")} | {
        "answerable_coverage": 1.0 - m["false_abstention"]}


def run_answers(ws: Workspace, dataset: str, opts: Options) -> tuple[Section, dict[str, Any]]:
    """Answer quality per config (evidence-first, reader only, generator only) open-book, and the reader on the
    gold paragraph. CI sizes: ``CI_LIMITS`` questions (half unanswerable); the generator-only config runs on
    ``GENERATOR_CI_QUESTIONS`` of them unless ``--full``."""
    from rag import models

    if not dataset.startswith("squad"):
        raise ValueError(f"answer evals need a QA dataset (squad, squad-test, squad-calib), not {dataset!r}")
    ds = dsets.load(dataset, opts.data_dir, limit=opts.limit_for(dataset))
    t0 = time.perf_counter()
    configs = ANSWER_CONFIGS
    base = ws.service(dataset, top_k=opts.answer_top_k, **opts.settings)
    ingest = ensure_ingested(base, ds, opts)
    sec = Section(task="answers", dataset=dataset, n=len(ds.cases), params={
        "top_k": opts.answer_top_k, "answerable": sum(not c.is_impossible for c in ds.cases),
        "unanswerable": sum(c.is_impossible for c in ds.cases),
        "generator": models.resolve_generator(base.settings.generator).path,
        "reader": getattr(models.resolve_reader(base.settings.reader), "path", None),
        "rerank": base.settings.rerank and models.resolve_reranker(base.settings.reranker) is not None,
        "chunks": ingest["chunks"]})
    for name in configs:
        cases = ds.cases
        if name == "generator" and not opts.full and not opts.limit:
            rng = random.Random(0)
            cases = sorted(rng.sample(ds.cases, min(GENERATOR_CI_QUESTIONS, len(ds.cases))), key=ds.cases.index)
        base.update_settings(answer_mode=name)
        rows, extra = answer_rows(base, cases, opts, f"{dataset}/{name}")
        sec.configs[name] = config_metrics(rows, extra) | {"n": len(cases)}
        sec.params[f"samples_{name}"] = extra["samples"]
    base.update_settings(answer_mode="evidence")
    gold = _reader_gold(ds, base.settings)
    if gold:
        sec.configs["reader_gold_paragraph"] = gold
    sec.timings = {"ingest_s": ingest.get("seconds", 0.0)}
    sec.notes += [
        "open-book: retrieval over every paragraph of the set's articles, not the gold one; em/f1 are SQuAD 2.0 "
        "style (a declined answer predicts '')",
        "evidence = reader -> calibrated decline -> generator on evidence sentences, checked (falls back to the "
        "span); extractive = the reader's span; generator = the generator over whole chunks (no reader)",
        "citation_accuracy: answered answerable questions whose cited chunks contain a gold answer (normalised); "
        "verbatim_quote_rate: citations whose quote is chunk_text[start:end]",
        "reader_gold_paragraph: the reader alone on the gold paragraph, calibrated threshold (published protocol)",
    ]
    sec.seconds = round(time.perf_counter() - t0, 1)
    return sec, {dataset: dataset_entry(ds, len(ds.cases))}


def _ner_predict(extractor: Any, texts: list[str], batch: int = 256) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for i in range(0, len(texts), batch):
        out += extractor.extract(texts[i:i + batch])
    return out


def run_ner(ws: Workspace, dataset: str, opts: Options) -> tuple[Section, dict[str, Any]]:
    from rag import graph, models
    from rag.components.entity_extractor import DocumentEntityExtractor
    from rag.config import Settings

    ds = dsets.load(dataset, opts.data_dir, limit=opts.limit_for(dataset))
    t0 = time.perf_counter()
    settings = Settings.load(home=str(ws.home), **{"extract_entities": False, **opts.settings})
    texts = [" ".join(c.tokens) for c in ds.cases]
    gold = [list(c.tags) for c in ds.cases]
    resolved = models.resolve_ner(settings.ner_model)
    candidates: dict[str, Any] = {"default": graph.entity_extractor(settings)}
    if resolved.path != "en_core_web_sm":
        candidates["spacy_baseline"] = DocumentEntityExtractor(backend="spacy", model="en_core_web_sm")
    sec = Section(task="ner", dataset=dataset, n=len(ds.cases),
                  params={"model": f"{resolved.path} ({resolved.origin})", "split": ds.split,
                          "label_map": "spaCy OntoNotes -> CoNLL: PERSON->PER, GPE/LOC/FAC->LOC, "
                                       "NORP/EVENT/WORK_OF_ART/LANGUAGE/PRODUCT/LAW->MISC, numeric dropped"})
    for name, ext in candidates.items():
        c0 = time.perf_counter()
        ext.warm_up()
        spans = _ner_predict(ext, texts)
        pred = [metrics.spans_to_iob2(c.tokens, s) for c, s in zip(ds.cases, spans, strict=True)]
        sec.configs[name] = metrics.ner_metrics(gold, pred)
        sec.timings[f"{name}_sentences_per_s"] = round(len(texts) / max(time.perf_counter() - c0, 1e-9), 1)
    sec.notes.append("seqeval entity-level micro F1, strict IOB2 (gold IOB1 converted); "
                     "sentences are tokens joined by spaces")
    sec.seconds = round(time.perf_counter() - t0, 1)
    return sec, {dataset: dataset_entry(ds, len(ds.cases))}


def run_summaries(ws: Workspace, dataset: str, opts: Options) -> tuple[Section, dict[str, Any]]:
    import re

    from rag import models

    ds = dsets.load(dataset, opts.data_dir, limit=opts.limit_for(dataset))
    t0 = time.perf_counter()
    d = ws.service(dataset, **opts.settings)
    ensure_ingested(d, ds, opts)
    preds, leads, refs, backend, flagged = [], [], [], "", []
    for i, (rec, case) in enumerate(zip(ds.corpus, ds.cases, strict=True)):
        s = d.summarize(rec["source"])
        backend = f"{s.backend}: {s.model}"
        preds.append(s.text)
        flagged.append(len(s.unsupported))
        leads.append(re.split(r"(?<=[.!?])\s+", case.document.strip(), maxsplit=1)[0])
        refs.append(case.summary)
        _say(opts, f"{dataset}: {i + 1}/{len(ds.cases)} summaries ({time.perf_counter() - t0:.0f} s)")
    summarizer = models.resolve_summarizer(d.settings.summarizer)
    sec = Section(task="summaries", dataset=dataset, n=len(ds.cases),
                  params={"summarizer": backend or (summarizer.path if summarizer else
                                                    "extractive" if models.summarizer_is_extractive(
                                                        d.settings.summarizer) else "gguf generator"),
                          "samples": [{"id": c.sid, "summary": p, "reference": c.summary}
                                      for c, p in list(zip(ds.cases, preds, strict=True))[:5]]})
    sec.configs["summarizer"] = metrics.rouge_metrics(preds, refs)
    sec.configs["summarizer"]["unsupported_per_summary"] = round(sum(flagged) / max(len(flagged), 1), 3)
    sec.configs["baseline_lead1"] = metrics.rouge_metrics(leads, refs)
    sec.timings["s_per_summary"] = round((time.perf_counter() - t0) / max(len(ds.cases), 1), 2)
    sec.notes.append("ROUGE F-measure (rouge-score, stemmed); baseline_lead1 = the article's first sentence")
    sec.seconds = round(time.perf_counter() - t0, 1)
    return sec, {dataset: dataset_entry(ds, len(ds.cases))}


RUNNERS = {"retrieval": run_retrieval, "answers": run_answers, "ner": run_ner, "summaries": run_summaries}


# --- the run -----------------------------------------------------------------------------------------
def model_ids(settings_overrides: dict[str, Any] | None = None) -> dict[str, str]:
    from rag import models
    from rag.config import Settings

    s = Settings.load(**(settings_overrides or {}))
    out: dict[str, str] = {}
    resolved: dict[str, Any] = {}
    for kind, fn in (("embedder", lambda: models.resolve_embedder(s.embedder)),
                     ("reranker", lambda: models.resolve_reranker(s.reranker)),
                     ("reader", lambda: models.resolve_reader(s.reader)),
                     ("generator", lambda: models.resolve_generator(s.generator)),
                     ("ner", lambda: models.resolve_ner(s.ner_model)),
                     ("summarizer", lambda: models.resolve_summarizer(s.summarizer))):
        try:
            r = resolved[kind] = fn()
            out[kind] = "none" if r is None else f"{r.path} ({r.origin})"
        except Exception as e:  # noqa: BLE001 - a missing model is reported, the task using it fails later
            out[kind] = f"unavailable: {e}"
    if out.get("summarizer") == "none":
        out["summarizer"] = "extractive (embedder, MMR)" if models.summarizer_is_extractive(s.summarizer) \
            else "gguf generator"
    # the runtime and precision each encoder runs on, resolved by the graphs' own rule (rag.models.runtime_model)
    runtimes = []
    for kind in ("embedder", "reranker", "ner", "reader"):
        r = resolved.get(kind)
        if r is None:
            continue
        if r.path == "en_core_web_sm":
            runtimes.append(f"{kind} spacy")
            continue
        rt = models.runtime_model(kind, r, s.inference_backend, s.device, s.model_dtype)
        runtimes.append(f"{kind} {rt.backend} {rt.variant or rt.dtype}")
    out["runtime"] = ", ".join(runtimes)
    return out


def new_report(opts: Options, argv: list[str] | None = None, profile: str | None = None) -> dict[str, Any]:
    from rag.config import Settings

    started = datetime.now(UTC)
    return {"run_id": started.strftime("%Y%m%dT%H%M%SZ"), "started": started.isoformat(timespec="seconds"),
            "argv": argv if argv is not None else sys.argv[1:], "profile": profile or ("full" if opts.full else "ci"),
            "machine": machine(), "models": model_ids(opts.settings),
            "settings": Settings.load(**{"extract_entities": False, **opts.settings}).public_dict(),
            "datasets": {}, "sections": [], "durations": {}, "seconds": 0.0}


def add_section(report: dict[str, Any], section: Section, datasets: dict[str, Any]) -> None:
    report["sections"].append(section.to_dict())
    report["datasets"].update(datasets)
    report["durations"][f"{section.task}/{section.dataset}"] = section.seconds


def run(tasks: list[str], opts: Options, datasets: list[str] | None = None, argv: list[str] | None = None,
        workspace: Workspace | None = None) -> dict[str, Any]:
    """Run ``tasks`` (on their default datasets, or on ``datasets``) and return the report dict."""
    t0 = time.perf_counter()
    report = new_report(opts, argv)
    own = workspace is None
    ws = workspace or Workspace(opts.home)
    try:
        for task in tasks:
            names = datasets or list(DEFAULT_DATASETS[task])
            for name in names:
                if name not in dsets.TASK_DATASETS[task]:
                    raise ValueError(f"dataset {name!r} does not fit task {task!r} "
                                     f"(use {', '.join(dsets.TASK_DATASETS[task])})")
                _say(opts, f"== {task} / {name}")
                section, ds_info = RUNNERS[task](ws, name, opts)
                add_section(report, section, ds_info)
    finally:
        if own:
            ws.close()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report
