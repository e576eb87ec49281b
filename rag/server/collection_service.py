"""The service layer: one :class:`DocRAG` per collection, serialised, with the answer cache around ``ask``.

Every collection lives in the home's one store (the same as the CLI's and the app's: an embedded Edge shard
per collection under ``<home>/qdrant/edge/``, or the server's collections with ``qdrant_url``), and every
tenant shares the process's one model pool (:data:`rag.engine.POOL`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rag.api import DocRAG
from rag.config import Settings
from rag.server.cache import AnswerCache
from rag.uploads import UploadFolder

logger = logging.getLogger(__name__)


class CollectionService:
    """Everything one key (team) can do to its collection. All DocRAG calls are serialised by one lock:
    llama.cpp and the embedded store are not safe to share between threads."""

    def __init__(self, settings: Settings, collection: str, cache: AnswerCache) -> None:
        self.collection = collection
        self.uploads = UploadFolder(settings.home / "service" / "uploads" / collection, settings.upload_quota_mb)
        self.settings = settings.model_copy(update={"collection": collection})
        self.rag = DocRAG(settings=self.settings, collection=collection)
        self.cache = cache
        self.lock = threading.Lock()
        keep = {k: v for k, v in self.settings.public_dict().items()
                if k not in ("api_keys", "api_keys_file", "rate_limit_per_minute", "max_upload_mb",
                             "upload_quota_mb")}
        self.fingerprint = hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # --- documents ---------------------------------------------------------------------------------
    def ingest(self, files: list[tuple[str, IO[bytes]]], force: bool = False) -> dict[str, Any]:
        """Save uploads in the collection's upload folder (same name = same document) and ingest them.

        Files are parsed in the parse worker pool before the collection lock is taken, so a slow or hostile
        file never holds up the key's other requests. Rejected uploads are removed again; an update of a
        stored document says ``"replaced": true``; the response holds file names, never server paths.
        """
        with self.uploads.lock:  # this key's uploads one batch at a time; queries are not held up
            staged, refused = self.uploads.stage(files, self.settings.max_upload_mb)
            paths = [s.path for s in staged]
            parsed = self.rag.parse(paths) if paths else {}
            report = None
            try:
                with self.lock:
                    report = self.rag.ingest(paths, force=force, parsed=parsed)
            finally:
                failed = {f["source"] for f in report.failed} if report else {str(p) for p in paths}
                self.uploads.settle(staged, failed)
        if report.ingested or report.failed:
            self.cache.invalidate(self.collection)
        out = report.to_dict()
        by_path = {str(s.path): s for s in staged}
        for row in out["ingested"] + out["failed"] + out.get("warnings", []):
            self._public_row(row, by_path)
        out["unchanged"] = [Path(u).name for u in out.get("unchanged", [])]
        out["failed"] += [{"source": r["file_name"], "file_name": r["file_name"], "error": r["error"]}
                          for r in refused]
        out["summary"]["failed"] = len(out["failed"])
        out["summary"]["files"] += len(refused)
        return out

    def _public_row(self, row: dict[str, Any], staged: dict[str, Any]) -> None:
        """Report rows name the stored file, never the server's path; ``replaced`` on an update."""
        src = row.get("source", "")
        up = staged.get(src)
        row["source"] = row["file_name"] = Path(src).name
        if up is not None:
            row["uploaded_as"] = up.original_name
            if "chunks" in row:
                row["replaced"] = up.replaced
        folder = str(self.uploads.folder)
        for key in ("error", "warning"):
            if isinstance(row.get(key), str):
                row[key] = row[key].replace(folder + "/", "").replace(folder, "")

    def list_documents(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.rag.list_documents()

    def show(self, source: str) -> list[dict[str, Any]]:
        with self.lock:
            return [h.to_dict() for h in self.rag.show(source)]

    def delete(self, source: str) -> dict[str, Any]:
        with self.lock:
            src = self.rag.resolve_source(source)
            removed = self.rag.delete(src)
        self.cache.invalidate(self.collection)
        self.uploads.remove(src)
        return {"source": Path(src).name, "deleted_chunks": removed}

    # --- querying ----------------------------------------------------------------------------------
    def search(self, query: str, top_k: int | None, rerank: bool | None,
               filters: dict[str, Any] | None) -> list[dict[str, Any]]:
        with self.lock:
            return [h.to_dict() for h in self.rag.search(query, top_k=top_k, rerank=rerank, filters=filters)]

    def _cache_key(self, question: str, top_k: int | None, rerank: bool | None,
                   filters: dict[str, Any] | None) -> tuple[tuple[str, str], int]:
        params = {"top_k": top_k, "rerank": rerank, "filters": filters}
        version = self.cache.version(self.collection)
        return self.cache.key(self.collection, question, params, self.fingerprint), version

    def ask(self, question: str, top_k: int | None, rerank: bool | None,
            filters: dict[str, Any] | None) -> dict[str, Any]:
        """A cited answer; ``cached`` says whether it came from the answer cache."""
        key, version = self._cache_key(question, top_k, rerank, filters)
        hit = self.cache.get(key)
        if hit is not None:
            return {**hit, "cached": True}
        with self.lock:
            hit = self.cache.peek(key)  # a concurrent asker of the same question may have just answered it
            if hit is not None:
                return {**hit, "cached": True}
            answer = self.rag.ask(question, top_k=top_k, filters=filters, rerank=rerank).to_dict()
            self.cache.put(key, answer, version)
        return {**answer, "cached": False}

    def ask_stream(self, question: str, top_k: int | None, rerank: bool | None,
                   filters: dict[str, Any] | None) -> Iterator[tuple[str, Any]]:
        """Yields ``("token", text)`` events, then ``("answer", dict)``. A cached answer is one token event."""
        key, version = self._cache_key(question, top_k, rerank, filters)
        hit = self.cache.get(key)
        if hit is not None:
            yield "token", hit["answer"]
            yield "answer", {**hit, "cached": True}
            return
        # a plain Lock (not RLock): the generator may be resumed on different threadpool threads
        self.lock.acquire()
        stream, finished = None, False
        try:
            hit = self.cache.peek(key)
            if hit is not None:
                yield "token", hit["answer"]
                yield "answer", {**hit, "cached": True}
                return
            stream = self.rag.ask(question, top_k=top_k, filters=filters, rerank=rerank, stream=True)
            tokens = iter(stream)
            for token in tokens:
                yield "token", token
            finished = True
            answer = stream.answer.to_dict()
            self.cache.put(key, answer, version)
            yield "answer", {**answer, "cached": False}
        finally:
            if stream is not None and not finished:  # client went away: let generation finish first
                for _ in tokens:
                    pass
            self.lock.release()

    # --- analysis ----------------------------------------------------------------------------------
    def summarize(self, source: str) -> dict[str, Any]:
        with self.lock:
            return self.rag.summarize(source).to_dict()

    def entities(self, source: str | None, label: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [e.to_dict() for e in self.rag.entities(source, label=label)]

    def close(self) -> None:
        with self.lock:
            self.rag.close()


class CollectionRegistry:
    """Opens one :class:`CollectionService` per collection on first use and keeps it."""

    def __init__(self, settings: Settings, cache: AnswerCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or AnswerCache()
        self._services: dict[str, CollectionService] = {}
        self._lock = threading.Lock()

    def get(self, collection: str) -> CollectionService:
        with self._lock:
            svc = self._services.get(collection)
            if svc is None:
                svc = self._services[collection] = CollectionService(self.settings, collection, self.cache)
                logger.info("opened collection %s", collection)
            return svc

    def open_collections(self) -> list[str]:
        with self._lock:
            return sorted(self._services)

    def close(self) -> None:
        with self._lock:
            services, self._services = list(self._services.values()), {}
        for svc in services:
            svc.close()
