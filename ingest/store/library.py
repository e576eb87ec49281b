"""The document library: one record per document, and atomic versioned replace.

Records live beside the chunks (their own collection: ``<collection>.records`` on Edge,
``<collection>__records`` on a server), one point per document: source, name, type, hash, index key, the live
version, pages, chunks, ingested-at and entity counts. ``list``, the unchanged check and the library page read
records, never the chunks.

A new version of a document becomes visible at once or not at all:

1. its chunks are written under a new ``version`` with ``meta.state = "pending"`` (searches skip them);
2. the count of written chunks is checked;
3. the record is flipped to the new version (state ``committing``) -- the commit point;
4. the new chunks are made live, then every other version of the source is deleted;
5. the record's state becomes ``live``.

A failure before 3 (disk full, a kill) leaves the previous version, or nothing, visible; :meth:`recover`, run
at every open, deletes orphaned pending chunks and finishes any commit or delete that was cut short.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from haystack import Document
from haystack.document_stores.types import DuplicatePolicy

from ingest.errors import StoreError
from ingest.store.filters import source_filter
from ingest.store.schema import PENDING

logger = logging.getLogger(__name__)

RECORD_INDEXES = [{"field_name": "meta.state", "field_schema": "keyword"},
                  {"field_name": "meta.file_name", "field_schema": "keyword"}]


def entity_counts(chunks: Iterable[Document]) -> dict[str, int]:
    """``{"LABEL\\ttext": mentions}`` over the chunks' ``meta.entities`` (text whitespace-normalised)."""
    counts: dict[str, int] = {}
    for c in chunks:
        for e in c.meta.get("entities") or []:
            key = f"{e['label']}\t{' '.join(str(e['text']).split())}"
            counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass
class DocumentRecord:
    """What the library knows about one stored document."""

    source: str
    file_name: str = ""
    file_type: str | None = None
    file_hash: str | None = None
    index_key: str | None = None
    version: str | None = None
    pages: int = 1
    chunks: int = 0
    ingested_at: float = 0.0
    entities: dict[str, int] = field(default_factory=dict)
    state: str = "live"  # live | committing | deleting
    previous: str | None = None

    @property
    def id(self) -> str:
        return hashlib.sha256(f"record\x00{self.source}".encode()).hexdigest()

    def to_document(self) -> Document:
        return Document(id=self.id, content=self.source, meta=asdict(self), embedding=[1.0])

    @classmethod
    def from_document(cls, d: Document) -> DocumentRecord:
        known = {k: v for k, v in d.meta.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def listing(self) -> dict[str, Any]:
        """The row of ``docrag list --json`` (and the HTTP ``/documents``)."""
        return {"source": self.source, "file_name": self.file_name, "file_type": self.file_type,
                "chunks": self.chunks, "pages": self.pages, "file_hash": self.file_hash,
                "ingested_at": self.ingested_at}


class Library:
    """Chunks + records of one collection, over either backend (both speak qdrant-haystack's interface)."""

    def __init__(self, chunks: Any, records: Any, describe: str = "") -> None:
        self.chunks = chunks
        self.records_store = records
        self.describe = describe

    # --- records ------------------------------------------------------------------------------------
    def records(self) -> list[DocumentRecord]:
        return sorted((DocumentRecord.from_document(d) for d in self.records_store.filter_documents()),
                      key=lambda r: r.source)

    def record(self, source: str) -> DocumentRecord | None:
        found = self.records_store.get_documents_by_id([DocumentRecord(source).id])
        return DocumentRecord.from_document(found[0]) if found else None

    def put(self, *records: DocumentRecord) -> None:
        if records:
            self.records_store.write_documents([r.to_document() for r in records], policy=DuplicatePolicy.OVERWRITE)

    def unchanged(self, source: str, index_key: str) -> bool:
        rec = self.record(source)
        return rec is not None and rec.state == "live" and rec.index_key == index_key

    # --- versioned replace ----------------------------------------------------------------------------
    @staticmethod
    def new_version(index_key: str) -> str:
        return f"{index_key[:16]}-{uuid.uuid4().hex[:12]}"

    @staticmethod
    def pending_meta(version: str) -> dict[str, str]:
        """Meta for every chunk of a version being written (the parser passes it on to the chunks)."""
        return {"version": version, "state": PENDING}

    def commit(self, source: str, version: str, chunks: list[Document], meta: dict[str, Any]) -> DocumentRecord:
        """Make ``version`` the document's visible version (steps 2-5 above); returns its record."""
        written = self.chunks.count_documents_by_filter(self._version_filter(source, version))
        if written != len(chunks):
            self.abort(source, version)
            raise StoreError(f"{source}: wrote {written} of {len(chunks)} chunks; the previous version stays, re-run")
        old = self.record(source)
        pages = {p for c in chunks for p in (c.meta.get("page_numbers") or [])}
        rec = DocumentRecord(source=source, file_name=meta.get("file_name", ""), file_type=meta.get("file_type"),
                             file_hash=meta.get("file_hash"), index_key=meta.get("index_key"), version=version,
                             pages=len(pages) or 1, chunks=len(chunks), ingested_at=round(time.time(), 3),
                             entities=entity_counts(chunks), state="committing",
                             previous=old.version if old else None)
        self.put(rec)  # the commit point
        self._finish_commit(rec)
        return rec

    def _finish_commit(self, rec: DocumentRecord) -> None:
        self.chunks.update_by_filter(self._version_filter(rec.source, rec.version), {"state": "live"})
        self.chunks.delete_by_filter(source_filter(rec.source, [
            {"field": "meta.version", "operator": "!=", "value": rec.version}]))
        rec.state, rec.previous = "live", None
        self.put(rec)

    def abort(self, source: str, version: str) -> None:
        """Best effort: drop a version's chunks (what is left is removed by :meth:`recover`)."""
        try:
            self.chunks.delete_by_filter(self._version_filter(source, version))
        except Exception as e:  # noqa: BLE001 - the disk may still be full; recover() cleans up at next open
            logger.warning("could not remove the unfinished version of %s yet: %s", source, e)

    @staticmethod
    def _version_filter(source: str, version: str) -> dict[str, Any]:
        return source_filter(source, [{"field": "meta.version", "operator": "==", "value": version}])

    def write_live(self, records: list[DocumentRecord]) -> None:
        """Records for chunks written live in one step (dataset records: one id per text, no versions)."""
        self.put(*records)

    # --- deletion ---------------------------------------------------------------------------------------
    def delete(self, source: str) -> int:
        rec = self.record(source) or DocumentRecord(source)
        rec.state = "deleting"
        self.put(rec)
        n = int(self.chunks.delete_by_filter(source_filter(source)) or 0)
        self.records_store.delete_documents([rec.id])
        return n

    # --- recovery -----------------------------------------------------------------------------------------
    def recover(self, progress: Callable[[str], None] | None = None) -> dict[str, int]:
        """Finish cut-short commits and deletes; drop orphaned pending chunks; build records for an older store.

        Cheap when nothing was cut short: one record scan and one count.
        """
        done = {"commits": 0, "deletes": 0, "orphans": 0, "records_built": 0}
        recs = self.records()
        for rec in recs:
            if rec.state == "committing":
                self._finish_commit(rec)
                done["commits"] += 1
            elif rec.state == "deleting":
                self.chunks.delete_by_filter(source_filter(rec.source))
                self.records_store.delete_documents([rec.id])
                done["deletes"] += 1
        pending = {"field": "meta.state", "operator": "==", "value": PENDING}
        if self.chunks.count_documents_by_filter(pending):
            done["orphans"] = int(self.chunks.delete_by_filter(pending) or 0)
        if not recs and self.chunks.count_documents():
            done["records_built"] = self.build_records(progress)
        if any(done.values()):
            logger.warning("store recovery in %s: %s", self.describe, done)
        return done

    def build_records(self, progress: Callable[[str], None] | None = None) -> int:
        """Records from the chunks, for a store written before records existed (one scan of all chunks)."""
        by_source: dict[str, list[Document]] = {}
        for d in self.chunks.filter_documents():
            by_source.setdefault(d.meta.get("source", ""), []).append(d)
        out = []
        for src, docs in by_source.items():
            m = docs[0].meta
            pages = {p for d in docs for p in (d.meta.get("page_numbers") or [])}
            out.append(DocumentRecord(source=src, file_name=m.get("file_name", ""), file_type=m.get("file_type"),
                                      file_hash=m.get("file_hash"), index_key=m.get("index_key"),
                                      version=m.get("version"), pages=len(pages) or 1, chunks=len(docs),
                                      entities=entity_counts(docs)))
        for start in range(0, len(out), 256):
            self.put(*out[start:start + 256])
            if progress:
                progress(f"document records: {min(start + 256, len(out))}/{len(out)}")
        return len(out)

    def close(self) -> None:
        for s in (self.chunks, self.records_store):
            with contextlib.suppress(Exception):
                s.close()
