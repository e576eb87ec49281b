"""The Python API: ``DocRAG``. The CLI, the HTTP service and the Streamlit app all go through it.

```python
from rag import DocRAG

d = DocRAG(home="~/.docrag")
report = d.ingest(["docs/"])            # IngestReport; report.to_dict() is the CLI's --json
answer = d.ask("Who signed the memo?")  # Answer(text, citations, documents, entities, timings)
for hit in d.search("memo", top_k=5): print(hit.source, hit.page, hit.score)
print(d.summarize("docs/memo.pdf").text)
d.entities()                            # [EntityCount(label, text, count, sources)]
```
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from haystack import Document, Pipeline

from ingest import files as ingest_files
from ingest.context import record_meta
from ingest.pool import ParseResult
from ingest.store import DocumentRecord, Library, embedding_dim, open_library
from ingest.store.filters import and_, source_filter, to_haystack_filters
from ingest.store.library import entity_counts
from ingest.store.schema import VISIBLE
from rag import entities as entities_mod
from rag import graph, summary_check
from rag.config import Settings
from rag.engine import GENERATION_SETTINGS, POOL, Engine
from rag.errors import (
    AmbiguousSourceError,
    AnswerStopped,
    IngestError,
    NotFoundError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    UsageError,
)
from rag.timings import stage_timer
from rag.types import Answer, AnswerStream, Citation, EntityCount, Evidence, Hit, IngestReport, Summary

__all__ = ["Answer", "AnswerStream", "Citation", "DocRAG", "EntityCount", "Evidence", "Hit", "IngestReport",
           "Summary", "file_sha256", "to_haystack_filters"]

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]


# --- the service --------------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _store_cause(e: BaseException) -> StoreError | None:
    """The StoreError under a pipeline error (Haystack wraps component failures), if there is one."""
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, StoreError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _stop_kwargs(p: Pipeline, stop: threading.Event) -> dict[str, Any]:
    """Generation options that end an answer at its next token once ``stop`` is set: for the transformers
    generator its ``stop_event``; for llama.cpp a logits processor that leaves only end-of-sequence (llama.cpp ignores a caller's stopping criteria in chat mode,
    and Haystack's generator swallows exceptions raised by the streaming callback)."""
    gen = p.get_component("generator") if "generator" in dict(p.graph.nodes(data=False)) else None
    if type(gen).__name__ == "TransformersChatGenerator":  # a stopping criterion checks the event per token
        return {"stop_event": stop}
    if type(gen).__name__ != "LlamaCppChatGenerator":
        return {}
    from llama_cpp import LogitsProcessorList

    def only_eos(input_ids: Any, scores: Any) -> Any:
        if stop.is_set() and getattr(gen, "_model", None) is not None:
            eos = gen._model.token_eos()
            scores[:] = -float("inf")
            scores[eos] = 0.0
        return scores

    return {"logits_processor": LogitsProcessorList([only_eos])}


@dataclass
class _Pending:
    """A file of an ingest run between its new version and its commit."""

    source: str
    version: str
    meta: dict[str, Any]
    elements: list[Document] = field(default_factory=list)

    def estimated_chunks(self, chunk_size: int) -> int:
        return 1 + sum(len((e.content or "").split()) for e in self.elements) // chunk_size


class DocRAG:
    """docrag's service object: ingestion, search, grounded answers, summaries and entities."""

    def __init__(self, home: str | Path | None = None, settings: Settings | None = None,
                 collection: str | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = Settings.load(home=str(home) if home else None, **overrides)
        elif home or overrides:
            settings = settings.model_copy(update={**({"home": Path(home)} if home else {}), **overrides})
        self.settings = settings
        self.collection = collection or settings.collection
        self._store = None
        self._library: Library | None = None
        self._engine = Engine(settings, lambda: self.store, POOL)
        self._lock = threading.RLock()

    @property
    def engine(self) -> Engine:
        """The graphs of this DocRAG's store, their models shared through the process-wide pool."""
        return self._engine

    @property
    def _pipelines(self) -> dict[str, Any]:  # the engine's cache of built graphs (kept for callers and tests)
        return self._engine._graphs

    # --- store ------------------------------------------------------------------------------------
    @property
    def library(self) -> Library:
        """The collection's chunks and document records (opened, recovered and, once, migrated on first use)."""
        if self._library is None:
            cfg = self.settings.store_config(self.collection, embedding_dim(graph.embedder_path(self.settings)))
            try:
                self._library = open_library(cfg, progress=lambda line: logger.warning("%s", line))
            except StoreLockedError as e:
                raise StoreLockedError(f"cannot open {cfg.describe()}: {e}; another docrag process (CLI, app, "
                                       "`docrag serve`) holds it: stop it, or point DOCRAG_QDRANT_URL at a Qdrant "
                                       "server", owner=e.owner) from e
            except StoreError:
                raise
            except Exception as e:
                hint = "is the server running and the URL right?" if cfg.url else "check the folder"
                raise StoreError(f"cannot open {cfg.describe()}: {e} ({hint})") from e
        return self._library

    @property
    def store(self):
        if self._store is None:
            self._store = self.library.chunks
        return self._store

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
        self._library = None
        self._store = None
        self._engine.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update_settings(self, **changes: Any) -> None:
        """Change settings in place (e.g. temperature, generator, top_k); graphs are rebuilt on next use.

        The store stays open: storage settings (home, qdrant_*, collection) cannot change this way.
        """
        fixed = {"home", "qdrant_url", "qdrant_path", "qdrant_api_key", "collection"} & set(changes)
        if fixed:
            raise UsageError(f"cannot change {', '.join(sorted(fixed))} on an open DocRAG; create a new one")
        with self._lock:
            self.settings = Settings(**{**self.settings.model_dump(), **changes})
            self._engine.update(self.settings, generation_only=set(changes) <= GENERATION_SETTINGS)

    def _pipeline(self, name: str, **kwargs: Any) -> Pipeline:
        return self._engine.pipeline(name, **kwargs)

    def index_key(self, file_hash: str) -> str:
        """Content hash + everything that changes the chunks or vectors: a change re-ingests the file."""
        s = self.settings
        parts = [file_hash, str(s.chunk_size), str(s.chunk_overlap), s.embedder or "default", s.pdf_strategy,
                 str(s.ocr), str(s.extract_entities), s.ner_model or "default", "v1"]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    # --- ingestion --------------------------------------------------------------------------------
    @staticmethod
    def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[dict[str, str]]]:
        """Files to ingest (folders recurse, hidden files and links out of a folder skipped) and failures."""
        return ingest_files.expand_paths(paths)

    def parse(self, paths: list[str | Path], passwords: dict[str, str] | None = None) -> dict[str, ParseResult]:
        """Parse files within the parse budget (worker pool) without touching the store, by source.

        Needs no lock: the service parses uploads with it first and then passes ``parsed`` to :meth:`ingest`.
        """
        sources = [str(Path(p).resolve()) for p in paths]
        return {r.source: r for r in graph.build_parser(self.settings, passwords).parse_many(sources)}

    def ingest(self, paths: list[str | Path] | str | Path, passwords: dict[str, str] | None = None,
               progress: ProgressFn | None = None, force: bool = False,
               parsed: dict[str, ParseResult] | None = None) -> IngestReport:
        """Ingest files and folders. Unchanged files are skipped, changed files replaced, bad files reported.

        Pipelined: the parse pool (``parse_workers`` processes, each file within its parse budget) parses the
        next files while this process chunks, tags, embeds and writes the files parsed so far, in batches of
        about ``ingest_batch_chunks`` chunks across files; each file is committed on its own once its chunks
        are stored (see :class:`ingest.store.library.Library`), so a crash loses or duplicates nothing.

        :param paths: files or folders (recursive).
        :param passwords: passwords for encrypted PDFs by file name/path (``"*"`` for all).
        :param progress: called as ``progress(done, total, source)`` after each file.
        :param force: re-ingest even unchanged files.
        :param parsed: results of :meth:`parse` by source; those files are not parsed again.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        t0 = time.perf_counter()
        files, missing = self.expand_paths(list(paths))
        report = IngestReport(failed=list(missing))
        lib = self.library  # open (and recover) the store before parsing anything
        done = [0]

        def finished(src: str) -> None:
            done[0] += 1
            if progress:
                progress(done[0], len(files), src)

        todo: list[_Pending] = []
        for path in files:
            src = str(path)
            try:
                fh = file_sha256(path)
            except OSError as e:
                report.failed.append({"source": src, "error": f"cannot read the file: {e.strerror or e}"})
                finished(src)
                continue
            key = self.index_key(fh)
            if not force and lib.unchanged(src, key):
                report.unchanged.append(src)
                finished(src)
                continue
            version = lib.new_version(key)
            todo.append(_Pending(src, version, {"file_hash": fh, "index_key": key, **lib.pending_meta(version)}))
        pre = parsed or {}
        to_parse = [p for p in todo if p.source not in pre]
        parser = graph.build_parser(self.settings, passwords)
        results = parser.iter_parse([p.source for p in to_parse], [p.meta for p in to_parse],
                                    ahead=max(4, 4 * self.settings.parse_workers))
        batch: list[_Pending] = []
        pending_chunks = 0
        try:
            for p in todo:
                r = pre[p.source] if p.source in pre else next(results)
                if not r.ok:
                    logger.warning("Skipping %s: %s", p.source, r.error)
                    report.failed.append(r.failure())
                    finished(p.source)
                    continue
                report.warnings.extend({"source": p.source, "warning": w} for w in r.warnings)
                p.elements = [Document(content=d.content, meta={**d.meta, **p.meta}) for d in r.documents]
                batch.append(p)
                pending_chunks += p.estimated_chunks(self.settings.chunk_size)
                if pending_chunks >= self.settings.ingest_batch_chunks:
                    self._index_batch(batch, report, finished)
                    batch, pending_chunks = [], 0
            if batch:
                self._index_batch(batch, report, finished)
        finally:
            results.close()  # cancels what is still queued (a StoreFullError stops the whole run)
        report.seconds = time.perf_counter() - t0
        return report

    def _index_batch(self, batch: list[_Pending], report: IngestReport, finished: Callable[[str], None]) -> None:
        """Chunk, tag, embed and write the files of ``batch`` in one graph run, then commit each file.

        When the run fails, the batch's pending chunks are dropped and its files indexed one by one, so the
        error lands on the file that caused it (a full disk stops the ingest with its one line).
        """
        lib = self.library
        try:
            out = self._pipeline("indexing", parse=False).run(
                {"chunker": {"documents": [e for p in batch for e in p.elements]}},
                include_outputs_from={"chunker", "entities"})
        except Exception as e:
            for p in batch:
                lib.abort(p.source, p.version)
            cause = _store_cause(e)
            if isinstance(cause, StoreFullError):
                raise cause from e
            if len(batch) > 1:
                for p in batch:
                    self._index_batch([p], report, finished)
                return
            logger.exception("Unexpected error ingesting %s", batch[0].source)
            report.failed.append({"source": batch[0].source, "error": str(cause) if cause is not None
                                  else f"{type(e).__name__}: {e}"[:300]})
            finished(batch[0].source)
            return
        by_source: dict[str, list[Document]] = {}
        for c in (out.get("entities") or out.get("chunker") or {}).get("documents", []):
            by_source.setdefault(c.meta["source"], []).append(c)
        for p in batch:
            chunks = by_source.get(p.source, [])
            try:
                if not chunks:
                    raise IngestError(p.source, "no chunks were made from the extracted text")
                rec = lib.commit(p.source, p.version, chunks, chunks[0].meta)
                report.ingested.append({"source": p.source, "chunks": rec.chunks, "pages": rec.pages})
            except StoreFullError:
                raise  # one clear line; nothing half-written is visible
            except IngestError as e:
                report.failed.append({"source": p.source, "error": e.reason})
            except Exception as e:
                logger.exception("Unexpected error committing %s", p.source)
                report.failed.append({"source": p.source, "error": f"{type(e).__name__}: {e}"[:300]})
            finished(p.source)

    def ingest_records(self, records: list[dict[str, Any]], batch_size: int = 256, entities: bool = False,
                       progress: ProgressFn | None = None) -> IngestReport:
        """Ingest already-extracted texts (datasets, e.g. BEIR corpora) through the same graph, minus parsing.

        Each record is ``{"source": id, "text": str, "title": optional str, "meta": optional dict}``; one record
        is one document (chunked like any other). Re-ingesting an unchanged record writes the same ids.
        """
        t0 = time.perf_counter()
        report = IngestReport()
        pipe = self._pipeline("indexing", entities=entities, parse=False)
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            elements = []
            for r in batch:
                fh = hashlib.sha256((r.get("title", "") + "\x00" + r["text"]).encode()).hexdigest()
                base = {"source": str(r["source"]), "file_name": str(r["source"]), **record_meta(r.get("title", "")),
                        "file_hash": fh, "index_key": self.index_key(fh), **(r.get("meta") or {})}
                elements.append(Document(content=r["text"], meta={**base, "category": "NarrativeText",
                                                                  "page_number": None}))
            out = pipe.run({"chunker": {"documents": elements}}, include_outputs_from={"chunker", "entities"})
            per_source: dict[str, list[Document]] = {}
            for c in (out.get("entities") or out["chunker"])["documents"]:
                per_source.setdefault(c.meta["source"], []).append(c)
            self.library.write_live([DocumentRecord(
                source=s, file_name=s, file_type="record", file_hash=cs[0].meta.get("file_hash"),
                index_key=cs[0].meta.get("index_key"), chunks=len(cs), ingested_at=round(time.time(), 3),
                entities=entity_counts(cs)) for s, cs in per_source.items()])
            report.ingested.extend({"source": s, "chunks": len(cs), "pages": 1} for s, cs in per_source.items())
            if progress:
                progress(min(start + batch_size, len(records)), len(records), str(batch[-1]["source"]))
        report.seconds = time.perf_counter() - t0
        return report

    # --- library ----------------------------------------------------------------------------------
    def sources(self) -> list[str]:
        return [r.source for r in self.library.records()]

    def list_documents(self) -> list[dict[str, Any]]:
        """Stored documents (one record each): source, file name, type, chunk and page counts, hash, time."""
        return [r.listing() for r in self.library.records()]

    def resolve_source(self, source: str | Path) -> str:
        """A stored source from an exact source, a path (made absolute) or a unique file name."""
        s = str(source)
        known = self.sources()
        if s in known:
            return s
        absolute = str(Path(os.path.expanduser(s)).resolve())
        if absolute in known:
            return absolute
        by_name = [k for k in known if Path(k).name == Path(s).name]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise AmbiguousSourceError(f"{s!r} matches several documents: {', '.join(by_name)}; give the full path",
                                       by_name)
        raise NotFoundError(f"no stored document {s!r} (see `docrag list`)")

    def show(self, source: str | Path) -> list[Hit]:
        src = self.resolve_source(source)
        docs = self.store.filter_documents(and_(source_filter(src), VISIBLE))
        return [Hit.from_document(d) for d in sorted(docs, key=lambda d: d.meta.get("chunk_index", 0))]

    def delete(self, source: str | Path) -> int:
        """Delete a document's chunks; returns how many were removed."""
        src = self.resolve_source(source)
        return self.library.delete(src)

    # --- querying ---------------------------------------------------------------------------------
    def search(self, query: str, top_k: int | None = None, rerank: bool | None = None,
               filters: dict[str, Any] | None = None) -> list[Hit]:
        """Hybrid retrieval (dense + BM25, RRF) with optional cross-encoder reranking."""
        if not query.strip():
            raise UsageError("empty query")
        top_k = top_k or self.settings.top_k
        rerank = self.settings.rerank if rerank is None else rerank
        p = self._pipeline("retrieval", rerank=rerank)
        retrieve_k = max(self.settings.retrieve_k, top_k)
        out = p.run(graph.query_inputs(p, query, top_k, retrieve_k,
                                       self._period_filters(query, to_haystack_filters(filters))))
        docs = (out.get("reranker") or out.get("retriever"))["documents"]
        return [Hit.from_document(d) for d in docs[:top_k]]

    def _period_filters(self, question: str, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        """``filters`` restricted to the filings a question's period names ("Q3 2022", "the latest quarterly
        report"), chosen from one first-stage pass over the stored document dates (:mod:`rag.periods`)."""
        from rag import periods

        ask = periods.period_ask(question)
        if ask is None:
            return filters
        p = self._pipeline("retrieval", rerank=False)
        k = max(self.settings.retrieve_k, 50)
        cands = p.run(graph.query_inputs(p, question, k, k, filters))["retriever"]["documents"]
        sources = periods.choose_sources(ask, cands)
        if sources:
            logger.info("period %s %r -> %d document(s): %s", ask.kind, ask.label, len(sources), sources[:5])
        return periods.restrict(filters, sources)

    def ask(self, question: str, top_k: int | None = None, filters: dict[str, Any] | None = None,
            stream: bool = False, rerank: bool | None = None, on_token: Callable[[str], None] | None = None,
            with_entities: bool = True, temperature: float | None = None, generator: str | None = None,
            stop: threading.Event | None = None) -> Answer | AnswerStream:
        """Answer from the documents with citations; declines when they hold no answer.

        ``stream=True`` returns an :class:`AnswerStream` (iterate for tokens, then read ``.answer``);
        ``on_token`` receives tokens as they arrive in the non-streaming form. ``temperature`` and
        ``generator`` override the settings for this call only (the app's per-session choices); nothing
        shared changes. A set ``stop`` event abandons the answer (:class:`AnswerStopped`).

        :raises UsageError: an empty question, or one longer than ``max_question_chars``.
        """
        if not question.strip():
            raise UsageError("empty question")
        if len(question) > self.settings.max_question_chars:
            raise UsageError(f"the question is {len(question):,} characters long; the limit is "
                             f"{self.settings.max_question_chars:,} (DOCRAG_MAX_QUESTION_CHARS)")
        per_call = {"temperature": temperature, "generator": generator}
        if stream:
            return AnswerStream(lambda cb, ev: self._ask(question, top_k, filters, rerank, cb, with_entities,
                                                         per_call, ev))
        cb = (lambda chunk: on_token(chunk.content)) if on_token else None
        return self._ask(question, top_k, filters, rerank, cb, with_entities, per_call, stop)

    def condense(self, question: str, history: list[str] | None = None) -> str:
        """A follow-up made standalone for retrieval, from the earlier questions of a conversation (rules only;
        see :class:`~rag.components.question_condenser.QuestionCondenser`)."""
        from rag.components.question_condenser import QuestionCondenser

        return QuestionCondenser().run(query=question, history=history)["query"]

    def _ask(self, question: str, top_k: int | None, filters: dict[str, Any] | None, rerank: bool | None,
             callback: Callable[[Any], None] | None, with_entities: bool,
             per_call: dict[str, Any] | None = None, stop: threading.Event | None = None) -> Answer:
        top_k = top_k or self.settings.top_k
        rerank = self.settings.rerank if rerank is None else rerank
        per_call = per_call or {}
        generator = per_call.get("generator")
        if generator is not None and generator != self.settings.generator:
            p = self._pipeline("query", rerank=rerank, generator=generator)
        else:
            p = self._pipeline("query", rerank=rerank)
        depth = self.settings.answer_rerank_k or self.settings.retrieve_k  # candidates reranked for an answer
        data = graph.query_inputs(p, question, top_k, max(depth, top_k, self.settings.reader_top_k),
                                  self._period_filters(question, to_haystack_filters(filters)),
                                  reader_top_k=self.settings.reader_top_k)
        names = set(dict(p.graph.nodes(data=False)))
        with stage_timer() as timer:
            def on_chunk(chunk: Any) -> None:
                if stop is None or not stop.is_set():  # a stopped answer sends nothing more
                    timer.mark("first_token")
                    if callback:
                        callback(chunk)

            if "generator" in names:  # the extractive answer mode has no generator
                data["generator"] = {"streaming_callback": on_chunk}
                gen_kwargs: dict[str, Any] = {}
                if per_call.get("temperature") is not None:
                    gen_kwargs["temperature"] = float(per_call["temperature"])
                if stop is not None:
                    gen_kwargs.update(_stop_kwargs(p, stop))
                if gen_kwargs:
                    data["generator"]["generation_kwargs"] = gen_kwargs
            lock = self._engine.pool.generate_lock
            while not lock.acquire(timeout=0.1):  # one answer at a time; a stopped one stops waiting
                if stop is not None and stop.is_set():
                    raise AnswerStopped("the answer was stopped while waiting for another answer")
            timer.mark("wait")
            try:
                out = p.run(data, include_outputs_from={"gate", "retriever", "reranker"})
            except Exception as e:
                if stop is not None and stop.is_set():
                    raise AnswerStopped("the answer was stopped") from e
                raise
            finally:
                lock.release()
        if stop is not None and stop.is_set():
            raise AnswerStopped("the answer was stopped")
        a = out["answer_builder"]["answer"]
        shown = max(top_k, self.settings.reader_top_k) if "reader" in names else top_k
        docs = (out.get("gate") or {}).get("documents") or \
            (out.get("reranker") or out.get("retriever") or {}).get("documents", [])[:shown]
        # embed/retrieve/rerank/read/gate/prompt/generate_s, wait_s (time waiting for another answer),
        # first_token_s, total_s
        timings = timer.stages()
        answer = Answer(question=question, text=a["text"],
                        citations=[Citation(**{k: c[k] for k in Citation.__dataclass_fields__ if k in c})
                                   for c in a["citations"]],
                        documents=[Hit.from_document(d) for d in docs], timings=timings,
                        declined=a["declined"], grounded=a["grounded"],
                        evidence=[Evidence(**{k: e[k] for k in Evidence.__dataclass_fields__ if k in e})
                                  for e in a.get("evidence", [])],
                        confidence=float(a.get("confidence", 0.0 if a["declined"] else 1.0)),
                        mode=a.get("mode", "declined" if a["declined"] else "generated"))
        if with_entities and not answer.declined and self.settings.extract_entities:
            try:
                answer.entities = self._entity_extractor().extract([answer.text])[0]
            except Exception as e:  # noqa: BLE001 - entities are a bonus on an answer
                logger.warning("entity extraction on the answer failed: %s", e)
        return answer

    # --- analysis ---------------------------------------------------------------------------------
    def _entity_extractor(self) -> Any:
        return self._engine.entity_extractor()

    def entities(self, source: str | Path | None = None, label: str | None = None) -> list[EntityCount]:
        """Entities of the stored documents (all or one), with mention counts, most frequent first.

        Read from the document records (counted at ingest), not from the chunks."""
        recs = [self.library.record(self.resolve_source(source))] if source else self.library.records()
        counts: dict[tuple[str, str], list[Any]] = {}
        want = entities_mod.canonical_label(label) if label else None
        for rec in filter(None, recs):
            for key, n in rec.entities.items():
                raw_label, _, text = key.partition("\t")
                lab = entities_mod.canonical_label(raw_label)
                if (want and lab != want) or entities_mod.is_nonsense(lab, text):
                    continue  # stores ingested before the clean-up still hold noise: drop it on read
                entry = counts.setdefault(entities_mod.entity_key(lab, text), [0, set(), Counter()])
                entry[0] += n
                entry[1].add(rec.source)
                entry[2][entities_mod.display_text(text)] += n
        rows = [EntityCount(label=k.split(":", 1)[0], text=v[2].most_common(1)[0][0], count=v[0],
                            sources=sorted(v[1])) for k, v in counts.items()]
        return sorted(rows, key=lambda r: (-r.count, r.label, r.text))

    def summarize(self, source: str | Path) -> Summary:
        """Summary of a stored document: extractive by default (central sentences with their pages); T5 or the
        GGUF generator when configured, their numbers and names checked against the document (``unsupported``)."""
        src = self.resolve_source(source)
        t0 = time.perf_counter()
        docs = sorted(self.store.filter_documents(and_(source_filter(src), VISIBLE)), key=lambda d: d.meta.get("chunk_index", 0))
        if not docs:
            raise NotFoundError(f"{src} has no stored chunks")
        with self._engine.pool.generate_lock:
            out = self._engine.summarizer().run(documents=docs)
        text = out["summary"].strip()
        unsupported = [] if out["backend"] == "extractive" else \
            summary_check.unsupported_facts(text, "\n".join(d.content or "" for d in docs))
        return Summary(source=src, text=text, backend=out["backend"], model=out["model"],
                       parts=out.get("parts", 1), seconds=round(time.perf_counter() - t0, 3),
                       sentences=list(out.get("sentences") or []), unsupported=unsupported)

    # --- graphs -----------------------------------------------------------------------------------
    def graph_yaml(self, name: str = "query", rerank: bool | None = None) -> str:
        """The named graph serialised as YAML (``indexing``, ``retrieval`` or ``query``)."""
        kwargs = {} if name == "indexing" else {"rerank": self.settings.rerank if rerank is None else rerank}
        return self._pipeline(name, **kwargs).dumps()
