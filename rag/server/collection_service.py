"""The service layer: one :class:`DocRAG` per collection, serialised, with the answer cache around ``ask``.

Every collection lives in the home's one store (the same as the CLI's and the app's: an embedded Edge shard
per collection under ``<home>/qdrant/edge/``, or the server's collections with ``qdrant_url``), and every
tenant shares the process's one model pool (:data:`rag.engine.POOL`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rag.api import DocRAG
from rag.config import Settings
from rag.server.cache import AnswerCache

logger = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._\- ]+")


def safe_file_name(name: str) -> str:
    """An upload's file name reduced to its last part and harmless characters."""
    base = Path(name.replace("\\", "/")).name.strip()
    base = _SAFE_NAME.sub("_", base).lstrip(".")
    return base[:200] or "upload"


class CollectionService:
    """Everything one key (team) can do to its collection. All DocRAG calls are serialised by one lock:
    llama.cpp and the embedded store are not safe to share between threads."""

    def __init__(self, settings: Settings, collection: str, cache: AnswerCache) -> None:
        self.collection = collection
        self.uploads = settings.home / "service" / "uploads" / collection
        self.settings = settings.model_copy(update={"collection": collection})
        self.rag = DocRAG(settings=self.settings, collection=collection)
        self.cache = cache
        self.lock = threading.Lock()
        keep = {k: v for k, v in self.settings.public_dict().items()
                if k not in ("api_keys", "api_keys_file", "rate_limit_per_minute", "max_upload_mb")}
        self.fingerprint = hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # --- documents ---------------------------------------------------------------------------------
    def ingest(self, files: list[tuple[str, IO[bytes]]], force: bool = False) -> dict[str, Any]:
        """Save uploads under the collection's upload folder (same name = same document) and ingest them."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, fh in files:
            dest = self.uploads / safe_file_name(name)
            tmp = dest.with_name(dest.name + ".part")
            with open(tmp, "wb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
            tmp.replace(dest)
            paths.append(dest)
        with self.lock:
            report = self.rag.ingest(paths, force=force)
        if report.ingested or report.failed:
            self.cache.invalidate(self.collection)
        out = report.to_dict()
        for row in out["ingested"] + out["failed"]:
            row["file_name"] = Path(row["source"]).name
        return out

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
        p = Path(src)
        if p.parent == self.uploads and p.is_file():
            p.unlink()
        return {"source": src, "deleted_chunks": removed}

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
