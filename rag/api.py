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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline

from ingest.store import build_document_store, describe, embedding_dim
from rag import graph, models
from rag.config import Settings
from rag.errors import DocragError, IngestError, StoreError
from rag.timings import stage_timer

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
# settings that only the generator/answer stage uses: changing them keeps the retrieval graphs
_GENERATION_SETTINGS = frozenset({"temperature", "top_p", "max_tokens", "repeat_penalty", "generator", "n_ctx",
                                  "n_threads", "n_gpu_layers", "min_rerank_score", "top_k", "summarizer",
                                  "generator_backend", "generator_quantization"})


# --- typed results ------------------------------------------------------------------------------------
@dataclass
class IngestReport:
    """What an ingest did. ``to_dict()`` is the documented JSON contract of ``docrag ingest --json``."""

    ingested: list[dict[str, Any]] = field(default_factory=list)  # {"source","chunks","pages"}
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # {"source","error"}
    warnings: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"ingested": self.ingested, "unchanged": self.unchanged, "failed": self.failed,
                "warnings": self.warnings,
                "summary": {"files": len(self.ingested) + len(self.unchanged) + len(self.failed),
                            "ingested": len(self.ingested), "unchanged": len(self.unchanged),
                            "failed": len(self.failed), "pages": sum(i["pages"] for i in self.ingested),
                            "chunks": sum(i["chunks"] for i in self.ingested), "seconds": round(self.seconds, 3)}}


@dataclass
class Hit:
    """One retrieved chunk."""

    chunk_id: str
    source: str
    file_name: str
    page: int | None
    pages: list[int]
    score: float | None
    text: str
    title_path: str = ""
    chunk_index: int | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_document(cls, d: Document) -> Hit:
        m = d.meta
        return cls(chunk_id=d.id, source=m.get("source", ""), file_name=m.get("file_name", ""),
                   page=m.get("page_number"), pages=list(m.get("page_numbers") or []), score=d.score,
                   text=d.content or "", title_path=m.get("title_path", ""), chunk_index=m.get("chunk_index"),
                   entities=list(m.get("entities") or []))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Citation:
    ref: int
    source: str
    file_name: str
    page: int | None
    pages: list[int]
    chunk_id: str
    quote: str
    score: float | None = None
    start: int | None = None  # character offsets of ``quote`` in the chunk text (quote == text[start:end])
    end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """A verbatim answer span found by the extractive reader: ``chunk_text[start:end] == text``.

    ``sentence`` is the sentence holding the span, ``sentence_start`` its offset in the chunk text.
    ``score`` is the calibrated probability (0-1) that this span answers the question.
    """

    text: str
    chunk_id: str
    start: int
    end: int
    score: float
    source: str = ""
    file_name: str = ""
    page: int | None = None
    sentence: str = ""
    sentence_start: int = 0
    margin: float | None = None  # the reader's span logit minus its no-answer logit (before calibration)
    rerank_score: float | None = None  # the cross-encoder logit of the chunk

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """A grounded answer. ``declined`` is True when the documents hold no answer.

    ``mode`` is ``generated`` (the generator's text, checked against the evidence), ``extractive`` (the
    reader's span in its sentence, used when the generated text does not agree with the evidence) or
    ``declined``. ``confidence`` is the calibrated probability (0-1) that the answer is right.
    """

    question: str
    text: str
    citations: list[Citation]
    documents: list[Hit]
    entities: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    declined: bool = False
    grounded: bool = True
    evidence: list[Evidence] = field(default_factory=list)
    confidence: float = 0.0
    mode: str = "generated"

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.text,
                "citations": [c.to_dict() for c in self.citations],
                "documents": [h.to_dict() for h in self.documents], "entities": self.entities,
                "timings": self.timings, "declined": self.declined, "grounded": self.grounded,
                "evidence": [e.to_dict() for e in self.evidence], "confidence": self.confidence,
                "mode": self.mode}


@dataclass
class Summary:
    source: str
    text: str
    backend: str
    model: str
    parts: int = 1
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EntityCount:
    label: str
    text: str
    count: int
    sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnswerStream:
    """Iterate to receive answer tokens as they are generated; ``.answer`` holds the final Answer after."""

    def __init__(self, start: Callable[[Callable[[Any], None]], Answer]) -> None:
        self._q: queue.Queue = queue.Queue()
        self.answer: Answer | None = None
        self._error: BaseException | None = None

        def work() -> None:
            try:
                self.answer = start(lambda chunk: self._q.put(chunk.content))
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                self._error = e
            finally:
                self._q.put(None)

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[str]:
        while True:
            tok = self._q.get()
            if tok is None:
                break
            if tok:
                yield tok
        self._thread.join()
        if self._error:
            raise self._error


# --- the service --------------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_filter(source: str, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    conds = [{"field": "meta.source", "operator": "==", "value": source}, *(extra or [])]
    return {"operator": "AND", "conditions": conds}


def to_haystack_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Accepts Haystack filters as they are, or the short form ``{"source", "file_name", "page", "entity"}``."""
    if not filters:
        return None
    if "operator" in filters:
        return filters
    conds = []
    for key, value in filters.items():
        field_name = {"source": "meta.source", "file_name": "meta.file_name", "page": "meta.page_numbers",
                      "entity": "meta.entity_keys", "file_type": "meta.file_type"}.get(key)
        if field_name is None:
            raise DocragError(f"unknown filter {key!r}: use source, file_name, page, entity or file_type")
        values = value if isinstance(value, list) else [value]
        if key == "entity":
            values = [" ".join(str(v).lower().split()) if ":" not in str(v) else
                      str(v).split(":", 1)[0].upper() + ":" + " ".join(str(v).split(":", 1)[1].lower().split())
                      for v in values]
            if any(":" not in v for v in values):
                raise DocragError("entity filters are LABEL:text, e.g. ORG:acme corp")
        conds.append({"field": field_name, "operator": "in", "value": values})
    return conds[0] if len(conds) == 1 else {"operator": "AND", "conditions": conds}


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
        self._pipelines: dict[str, Pipeline] = {}
        self._lock = threading.RLock()
        self._extractor = None

    # --- store ------------------------------------------------------------------------------------
    @property
    def store(self):  # noqa: ANN201 - QdrantDocumentStore
        if self._store is None:
            dim = embedding_dim(graph.embedder_path(self.settings))
            try:
                self._store = build_document_store(self.settings, dim, self.collection)
                self._store.count_documents()  # connect now so errors surface here, not mid-ingest
            except Exception as e:  # noqa: BLE001
                self._store = None
                hint = ("is the server running and the URL right?" if self.settings.qdrant_url else
                        "is another docrag process (CLI, app) using this embedded store? stop it or set "
                        "DOCRAG_QDRANT_URL to a Qdrant server")
                raise StoreError(f"cannot open {describe(self.settings, self.collection)}: {e} ({hint})") from e
        return self._store

    def close(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                pass
            self._store = None
            self._pipelines.clear()

    def __enter__(self) -> DocRAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update_settings(self, **changes: Any) -> None:
        """Change settings in place (e.g. temperature, generator, top_k); graphs are rebuilt on next use.

        The store stays open: storage settings (home, qdrant_*, collection) cannot change this way.
        """
        fixed = {"home", "qdrant_url", "qdrant_path", "qdrant_api_key", "collection"} & set(changes)
        if fixed:
            raise DocragError(f"cannot change {', '.join(sorted(fixed))} on an open DocRAG; create a new one")
        generation_only = set(changes) <= _GENERATION_SETTINGS
        with self._lock:
            self.settings = Settings(**{**self.settings.model_dump(), **changes})
            for key in list(self._pipelines):
                if not generation_only or key.startswith("query:") or key == "summarizer":
                    del self._pipelines[key]
            if not generation_only:
                self._extractor = None

    def _pipeline(self, name: str, **kwargs: Any) -> Pipeline:
        key = f"{name}:{sorted(kwargs.items())}"
        with self._lock:
            if key not in self._pipelines:
                builder = {"indexing": graph.build_indexing, "retrieval": graph.build_retrieval,
                           "query": graph.build_query}[name]
                self._pipelines[key] = builder(self.settings, self.store, **kwargs)
            return self._pipelines[key]

    def index_key(self, file_hash: str) -> str:
        """Content hash + everything that changes the chunks or vectors: a change re-ingests the file."""
        s = self.settings
        parts = [file_hash, str(s.chunk_size), str(s.chunk_overlap), s.embedder or "default", s.pdf_strategy,
                 str(s.ocr), str(s.extract_entities), s.ner_model or "default", "v1"]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    # --- ingestion --------------------------------------------------------------------------------
    @staticmethod
    def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[dict[str, str]]]:
        """Files to ingest (folders recurse, hidden files skipped) and failures for paths that do not exist."""
        files: list[Path] = []
        missing: list[dict[str, str]] = []
        for p in map(lambda x: Path(os.path.expanduser(str(x))), paths):
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    rel = f.relative_to(p).parts
                    if f.is_file() and not any(part.startswith(".") for part in rel):
                        files.append(f)
            elif p.is_file():
                files.append(p)
            else:
                missing.append({"source": str(p), "error": "no such file or folder (check the path)"})
        seen: set[Path] = set()
        out = []
        for f in files:
            r = f.resolve()
            if r not in seen:
                seen.add(r)
                out.append(r)
        return out, missing

    def ingest(self, paths: list[str | Path] | str | Path, passwords: dict[str, str] | None = None,
               progress: ProgressFn | None = None, force: bool = False) -> IngestReport:
        """Ingest files and folders. Unchanged files are skipped, changed files replaced, bad files reported.

        :param paths: files or folders (recursive).
        :param passwords: passwords for encrypted PDFs by file name/path (``"*"`` for all).
        :param progress: called as ``progress(done, total, source)`` after each file.
        :param force: re-ingest even unchanged files.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        t0 = time.perf_counter()
        files, missing = self.expand_paths(list(paths))
        report = IngestReport(failed=list(missing))
        store = self.store
        pipe = self._pipeline("indexing", passwords=passwords) if passwords else self._pipeline("indexing")
        for i, path in enumerate(files):
            src = str(path)
            try:
                self._ingest_one(path, pipe, store, report, force)
            except IngestError as e:
                report.failed.append({"source": src, "error": e.reason})
            except Exception as e:  # noqa: BLE001 - one file must never stop the batch
                logger.exception("Unexpected error ingesting %s", src)
                report.failed.append({"source": src, "error": f"{type(e).__name__}: {e}"[:300]})
            if progress:
                progress(i + 1, len(files), src)
        report.seconds = time.perf_counter() - t0
        return report

    def _ingest_one(self, path: Path, pipe: Pipeline, store: Any, report: IngestReport, force: bool) -> None:
        src = str(path)
        fh = file_sha256(path)
        key = self.index_key(fh)
        same = [{"field": "meta.index_key", "operator": "==", "value": key}]
        if not force:
            n_same = store.count_documents_by_filter(_source_filter(src, same))
            if n_same:
                first = store.filter_documents(_source_filter(src, [*same, {"field": "meta.chunk_index",
                                                                            "operator": "==", "value": 0}]))
                if first and first[0].meta.get("chunk_count") == n_same:
                    report.unchanged.append(src)
                    return
        result = pipe.run({"parser": {"sources": [src], "meta": [{"file_hash": fh, "index_key": key}]}},
                          include_outputs_from={"parser", "chunker"})
        parsed = result.get("parser", {})
        for w in parsed.get("warnings", []):
            report.warnings.append(w)
        if parsed.get("failures"):
            report.failed.extend(parsed["failures"])
            return
        chunks = result.get("chunker", {}).get("documents", [])
        written = result.get("writer", {}).get("documents_written", 0)
        if not chunks or written != len(chunks):
            raise IngestError(src, f"wrote {written} of {len(chunks)} chunks; nothing old was removed, re-run")
        # only now drop what the new version replaces: older versions and stale chunk indexes
        store.delete_by_filter({"operator": "AND", "conditions": [
            {"field": "meta.source", "operator": "==", "value": src},
            {"operator": "OR", "conditions": [
                {"field": "meta.index_key", "operator": "!=", "value": key},
                {"field": "meta.chunk_index", "operator": ">=", "value": len(chunks)}]}]})
        pages = {p for c in chunks for p in (c.meta.get("page_numbers") or [])}
        report.ingested.append({"source": src, "chunks": len(chunks), "pages": len(pages) or 1})

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
                base = {"source": str(r["source"]), "file_name": str(r["source"]), "file_type": "record",
                        "file_hash": fh, "index_key": self.index_key(fh), **(r.get("meta") or {})}
                if r.get("title"):
                    elements.append(Document(content=r["title"], meta={**base, "category": "Title",
                                                                         "page_number": None}))
                elements.append(Document(content=r["text"], meta={**base, "category": "NarrativeText",
                                                                  "page_number": None}))
            out = pipe.run({"chunker": {"documents": elements}}, include_outputs_from={"chunker"})
            per_source: dict[str, int] = {}
            for c in out["chunker"]["documents"]:
                per_source[c.meta["source"]] = per_source.get(c.meta["source"], 0) + 1
            report.ingested.extend({"source": s, "chunks": n, "pages": 1} for s, n in per_source.items())
            if progress:
                progress(min(start + batch_size, len(records)), len(records), str(batch[-1]["source"]))
        report.seconds = time.perf_counter() - t0
        return report

    # --- library ----------------------------------------------------------------------------------
    def sources(self) -> list[str]:
        try:
            values, _ = self.store.get_metadata_field_unique_values("meta.source", size=100_000)
        except TypeError:  # pragma: no cover - older signature
            values, _ = self.store.get_metadata_field_unique_values("meta.source")
        return sorted(values)

    def list_documents(self) -> list[dict[str, Any]]:
        """Stored documents: source, file name, type, chunk and page counts."""
        out = []
        for src in self.sources():
            docs = self.store.filter_documents(_source_filter(src))
            pages = {p for d in docs for p in (d.meta.get("page_numbers") or [])}
            m = docs[0].meta if docs else {}
            out.append({"source": src, "file_name": m.get("file_name", Path(src).name),
                        "file_type": m.get("file_type"), "chunks": len(docs), "pages": len(pages) or 1,
                        "file_hash": m.get("file_hash")})
        return out

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
            raise DocragError(f"{s!r} matches several documents: {', '.join(by_name)}; give the full path")
        raise DocragError(f"no stored document {s!r} (see `docrag list`)")

    def show(self, source: str | Path) -> list[Hit]:
        src = self.resolve_source(source)
        docs = self.store.filter_documents(_source_filter(src))
        return [Hit.from_document(d) for d in sorted(docs, key=lambda d: d.meta.get("chunk_index", 0))]

    def delete(self, source: str | Path) -> int:
        """Delete a document's chunks; returns how many were removed."""
        src = self.resolve_source(source)
        return int(self.store.delete_by_filter(_source_filter(src)) or 0)

    # --- querying ---------------------------------------------------------------------------------
    def search(self, query: str, top_k: int | None = None, rerank: bool | None = None,
               filters: dict[str, Any] | None = None) -> list[Hit]:
        """Hybrid retrieval (dense + BM25, RRF) with optional cross-encoder reranking."""
        if not query.strip():
            raise DocragError("empty query")
        top_k = top_k or self.settings.top_k
        rerank = self.settings.rerank if rerank is None else rerank
        p = self._pipeline("retrieval", rerank=rerank)
        retrieve_k = max(self.settings.retrieve_k, top_k)
        out = p.run(graph.query_inputs(p, query, top_k, retrieve_k, to_haystack_filters(filters)))
        docs = (out.get("reranker") or out.get("retriever"))["documents"]
        return [Hit.from_document(d) for d in docs[:top_k]]

    def ask(self, question: str, top_k: int | None = None, filters: dict[str, Any] | None = None,
            stream: bool = False, rerank: bool | None = None, on_token: Callable[[str], None] | None = None,
            with_entities: bool = True) -> Answer | AnswerStream:
        """Answer from the documents with citations; declines when they hold no answer.

        ``stream=True`` returns an :class:`AnswerStream` (iterate for tokens, then read ``.answer``);
        ``on_token`` receives tokens as they arrive in the non-streaming form.
        """
        if not question.strip():
            raise DocragError("empty question")
        if stream:
            return AnswerStream(lambda cb: self._ask(question, top_k, filters, rerank, cb, with_entities))
        cb = (lambda chunk: on_token(chunk.content)) if on_token else None
        return self._ask(question, top_k, filters, rerank, cb, with_entities)

    def _ask(self, question: str, top_k: int | None, filters: dict[str, Any] | None, rerank: bool | None,
             callback: Callable[[Any], None] | None, with_entities: bool) -> Answer:
        top_k = top_k or self.settings.top_k
        rerank = self.settings.rerank if rerank is None else rerank
        p = self._pipeline("query", rerank=rerank)
        data = graph.query_inputs(p, question, top_k, max(self.settings.retrieve_k, top_k),
                                  to_haystack_filters(filters), reader_top_k=self.settings.reader_top_k)
        names = set(dict(p.graph.nodes(data=False)))
        with stage_timer() as timer:
            def on_chunk(chunk: Any) -> None:
                timer.mark("first_token")
                if callback:
                    callback(chunk)

            if "generator" in names:
                data["generator"] = {"streaming_callback": on_chunk}
            with self._lock:
                out = p.run(data, include_outputs_from={"gate", "retriever", "reranker"})
        a = out["answer_builder"]["answer"]
        docs = (out.get("gate") or {}).get("documents") or \
            (out.get("reranker") or out.get("retriever") or {}).get("documents", [])[:max(top_k, self.settings.reader_top_k)
                                                                                     if "reader" in names else top_k]
        timings = timer.stages()  # embed/retrieve/rerank/read/prompt/generate_s, first_token_s, total_s
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
        if self._extractor is None:
            self._extractor = graph.entity_extractor(self.settings)
            self._extractor.warm_up()
        return self._extractor

    def entities(self, source: str | Path | None = None, label: str | None = None) -> list[EntityCount]:
        """Entities found in stored chunks (all documents or one), with counts, most frequent first."""
        filters = _source_filter(self.resolve_source(source)) if source else None
        counts: dict[tuple[str, str], list[Any]] = {}
        for d in self.store.filter_documents(filters):
            for e in d.meta.get("entities") or []:
                if label and e.get("label") != label:
                    continue
                key = (e["label"], " ".join(e["text"].split()))
                entry = counts.setdefault(key, [0, set()])
                entry[0] += 1
                entry[1].add(d.meta.get("source", ""))
        rows = [EntityCount(label=k[0], text=k[1], count=v[0], sources=sorted(v[1])) for k, v in counts.items()]
        return sorted(rows, key=lambda r: (-r.count, r.label, r.text))

    def summarize(self, source: str | Path) -> Summary:
        """Summary of a stored document: T5 when a summarizer is configured, else the GGUF generator."""
        src = self.resolve_source(source)
        t0 = time.perf_counter()
        docs = sorted(self.store.filter_documents(_source_filter(src)), key=lambda d: d.meta.get("chunk_index", 0))
        if not docs:
            raise DocragError(f"{src} has no stored chunks")
        summarizer = self._summarizer()
        out = summarizer.run(documents=docs)
        return Summary(source=src, text=out["summary"].strip(), backend=out["backend"], model=out["model"],
                       parts=out.get("parts", 1), seconds=round(time.perf_counter() - t0, 3))

    def _summarizer(self) -> Any:
        key = "summarizer"
        with self._lock:
            if key not in self._pipelines:
                resolved = models.resolve_summarizer(self.settings.summarizer)
                if resolved is not None:
                    from rag.components.t5_summarizer import T5DocumentSummarizer

                    comp = T5DocumentSummarizer(model=resolved.path, device=models.resolve_device(self.settings.device))
                else:
                    from rag.components.llm_summarizer import LLMDocumentSummarizer

                    gen = graph.build_generator(self.settings, {"temperature": 0.0,
                                                                "repeat_penalty": self.settings.repeat_penalty})
                    comp = LLMDocumentSummarizer(generator=gen, max_summary_tokens=200)
                comp.warm_up()
                self._pipelines[key] = comp
            return self._pipelines[key]

    # --- graphs -----------------------------------------------------------------------------------
    def graph_yaml(self, name: str = "query", rerank: bool | None = None) -> str:
        """The named graph serialised as YAML (``indexing``, ``retrieval`` or ``query``)."""
        kwargs = {} if name == "indexing" else {"rerank": self.settings.rerank if rerank is None else rerank}
        return self._pipeline(name, **kwargs).dumps()
