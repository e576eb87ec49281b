"""``EdgeDocumentStore``: a :class:`QdrantDocumentStore` whose storage is a Qdrant Edge shard in-process.

Qdrant Edge (``qdrant-edge-py``) runs Qdrant's own Rust segment, shard and WAL code inside this process:
one :class:`EdgeShard` per collection, in ``<path>/<collection>``. The class keeps qdrant-haystack's
interface (``write_documents``, ``filter_documents``, ``delete_by_filter``, ``update_by_filter``,
``_query_hybrid`` ...), so ``DocumentWriter`` and ``QdrantHybridRetriever`` run over it unchanged; no
qdrant-client is ever created. Filters go through qdrant-haystack's own converter (the same semantics on
both backends), then into Edge's types.

Limits of Edge 0.9 (beta, pinned): one process per shard (a second open fails on the WAL lock, reported as
:class:`StoreLockedError`), HNSW indexing is a blocking ``optimize()`` (done here once the shard reaches
``hnsw_threshold`` points; exact search below it), no grouped queries.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from haystack import Document
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils.filters import FilterError as HaystackFilterError
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import convert_id
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from qdrant_client.http import models as rest

from ingest.errors import FilterError, StoreCorruptError, StoreError, StoreFullError, StoreLockedError
from ingest.store.filters import and_
from ingest.store.schema import DENSE, PAYLOAD_INDEXES, SPARSE, VISIBLE

logger = logging.getLogger(__name__)

_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
           "float": qe.PayloadSchemaType.Float, "bool": qe.PayloadSchemaType.Bool,
           "datetime": qe.PayloadSchemaType.Datetime}
_DISTANCE = {"cosine": qe.Distance.Cosine, "dot_product": qe.Distance.Dot, "l2": qe.Distance.Euclid}
_SCROLL_PAGE = 1000
# Edge maps its segment files (sparse, preallocated): a write into them on a full disk is a SIGBUS, not an
# error. So every write first checks the free space: this reserve plus 4x the batch's estimated size.
MIN_FREE_BYTES = 128 << 20


# --- filters: Haystack dict -> qdrant-client model (qdrant-haystack's converter) -> Edge ------------------
def edge_filter(filters: dict[str, Any] | None) -> qe.Filter | None:
    """A Haystack filter as an Edge ``Filter``; :class:`FilterError` for a malformed one."""
    if not filters:
        return None
    try:
        converted = convert_filters_to_qdrant(filters)
    except HaystackFilterError as e:
        raise FilterError(f"invalid filter: {e}") from e
    return _to_edge(converted) if converted is not None else None


def _to_edge(c: Any) -> Any:
    if isinstance(c, rest.Filter):
        def many(xs: Any) -> list[Any] | None:
            if xs is None:
                return None
            return [_to_edge(x) for x in (xs if isinstance(xs, list) else [xs])]

        min_should = None
        if c.min_should is not None:
            min_should = qe.MinShould(conditions=many(c.min_should.conditions), min_count=c.min_should.min_count)
        return qe.Filter(must=many(c.must), should=many(c.should), must_not=many(c.must_not),
                         min_should=min_should)
    if isinstance(c, rest.FieldCondition):
        match = rng = None
        if isinstance(c.match, rest.MatchValue):
            match = qe.MatchValue(c.match.value)
        elif isinstance(c.match, rest.MatchAny):
            match = qe.MatchAny(c.match.any)
        elif isinstance(c.match, rest.MatchExcept):
            match = qe.MatchExcept(getattr(c.match, "except_", None) or getattr(c.match, "except"))
        elif c.match is not None:
            raise FilterError(f"filter match {type(c.match).__name__} is not supported by the embedded store")
        if isinstance(c.range, rest.DatetimeRange):
            iso = {k: (v.isoformat() if isinstance(v, datetime) else v)
                   for k, v in (("gt", c.range.gt), ("gte", c.range.gte), ("lt", c.range.lt), ("lte", c.range.lte))}
            rng = qe.RangeDateTime(**iso)
        elif isinstance(c.range, rest.Range):
            rng = qe.RangeFloat(gt=c.range.gt, gte=c.range.gte, lt=c.range.lt, lte=c.range.lte)
        return qe.FieldCondition(key=c.key, match=match, range=rng)
    if isinstance(c, rest.IsEmptyCondition):
        return qe.IsEmptyCondition(c.is_empty.key)
    if isinstance(c, rest.IsNullCondition):
        return qe.IsNullCondition(c.is_null.key)
    if isinstance(c, rest.HasIdCondition):
        return qe.HasIdCondition(set(c.has_id))
    raise FilterError(f"filter condition {type(c).__name__} is not supported by the embedded store")


def store_error(e: Exception, where: str, doing: str) -> StoreError:
    """A typed store error for an Edge failure: disk full, damaged file, or anything else."""
    text = str(e)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space left" in text or "os error 28" in text:
        return StoreFullError(f"the disk under {where} is full while {doing}: free space and run the command "
                              "again (nothing half-written is visible; the store reopens intact)")
    return StoreError(f"{doing} failed in {where}: {' '.join(text.split())[:300]}")


class EdgeDocumentStore(QdrantDocumentStore):
    """Haystack's Qdrant document store over an in-process Qdrant Edge shard.

    ```python
    store = EdgeDocumentStore(path="/data/store", index="docrag", embedding_dim=384)
    DocumentWriter(document_store=store).run(documents=docs)
    QdrantHybridRetriever(document_store=store).run(query_embedding=..., query_sparse_embedding=...)
    ```
    """

    def __init__(self, path: str, index: str = "Document", embedding_dim: int = 768, similarity: str = "cosine",
                 sparse_idf: bool = True, return_embedding: bool = False, write_batch_size: int = 256,
                 prefetch_limit: int | None = None, fusion: str = "rrf", rrf_k: int = 2,
                 hnsw_threshold: int = 0, hnsw_ef: int = 128, progress_bar: bool = False,
                 payload_indexes: list[dict[str, str]] | None = None) -> None:
        """
        :param path: folder holding the shards (one subfolder per ``index``).
        :param index: the collection name.
        :param prefetch_limit: hybrid candidates per side before fusion; None = max(100, top_k).
        :param fusion: ``rrf`` (reciprocal rank fusion, constant ``rrf_k``) or ``dbsf``.
        :param hnsw_threshold: index the dense vectors (HNSW) once the shard holds this many points;
            0 = never (exact search).
        :param hnsw_ef: HNSW search beam once indexed.
        :param payload_indexes: payload indexes made with a new shard; None = docrag's chunk fields.
        """
        if similarity not in _DISTANCE:
            raise ValueError(f"similarity must be one of {sorted(_DISTANCE)}, not {similarity!r}")
        if fusion not in ("rrf", "dbsf"):
            raise ValueError(f"fusion must be rrf or dbsf, not {fusion!r}")
        super().__init__(index=index, embedding_dim=embedding_dim, similarity=similarity,
                         use_sparse_embeddings=True, sparse_idf=sparse_idf, return_embedding=return_embedding,
                         write_batch_size=write_batch_size, progress_bar=progress_bar)
        self.path = str(path)
        self.prefetch_limit = prefetch_limit
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_ef = hnsw_ef
        self.payload_indexes = PAYLOAD_INDEXES if payload_indexes is None else payload_indexes
        self._shard: qe.EdgeShard | None = None
        self._shard_lock = threading.RLock()
        self._indexed = False

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def shard_path(self) -> Path:
        return Path(self.path) / self.index

    def _initialize_client(self) -> None:  # never a qdrant-client: every method below speaks Edge
        self.shard()

    def shard(self) -> qe.EdgeShard:
        """The open shard (created with vectors and payload indexes on first use)."""
        with self._shard_lock:
            if self._shard is None:
                self._shard = self._open()
            return self._shard

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.embedding_dim, distance=_DISTANCE[self.similarity])},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if self.sparse_idf else None)},
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000))

    def _open(self) -> qe.EdgeShard:
        p = self.shard_path
        self._check_space(0, "opening the store", p if p.exists() else p.parent if p.parent.exists() else None)
        try:
            if (p / "edge_config.json").is_file() or (p / "segments").is_dir():
                shard = qe.EdgeShard.load(str(p))
            else:
                p.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(p), self._config())
                for idx in self.payload_indexes:
                    shard.update(qe.UpdateOperation.create_field_index(idx["field_name"], _SCHEMA[idx["field_schema"]]))
                shard.flush()
        except Exception as e:
            text = str(e)
            if "WouldBlock" in text or "lock" in text.lower():
                raise StoreLockedError(f"the embedded store {p} is open in another process") from e
            if isinstance(e, OSError) or "No space left" in text or "os error 28" in text:
                raise store_error(e, str(p), "opening the store") from e
            raise StoreCorruptError(
                f"the embedded store {p} cannot be read ({' '.join(text.split())[:200]}): a store file is "
                f"truncated or damaged. Fix: move it aside (mv {p} {p}.broken) and ingest the documents again"
            ) from e
        info = shard.info()
        self._indexed = info.indexed_vectors_count > 0
        return shard

    def close(self) -> None:
        with self._shard_lock:
            if self._shard is not None:
                try:
                    self._shard.flush()
                finally:
                    self._shard.close()
                    self._shard = None

    def flush(self) -> None:
        with self._shard_lock:
            if self._shard is not None:
                self._shard.flush()

    def _check_space(self, batch_bytes: int, doing: str, where: Path | None = None,
                     reserve: int = MIN_FREE_BYTES) -> None:
        try:
            free = shutil.disk_usage(where or self.shard_path).free
        except OSError:
            return
        need = reserve + 4 * batch_bytes
        if free < need:
            raise StoreFullError(f"the disk under {self.shard_path} is full ({free >> 20} MiB free, {need >> 20} MiB "
                                 f"needed) while {doing}: free space and run the command again (nothing "
                                 "half-written is visible; the store reopens intact)")

    def _update(self, op: qe.UpdateOperation, doing: str, batch_bytes: int = 0) -> None:
        # deletes free space (they only log to the WAL): a small reserve lets them clean up a nearly full disk
        self._check_space(batch_bytes, doing, reserve=MIN_FREE_BYTES // 8 if doing.startswith("deleting")
                          else MIN_FREE_BYTES)
        try:
            self.shard().update(op)
        except StoreError:
            raise
        except Exception as e:
            raise store_error(e, str(self.shard_path), doing) from e

    def to_dict(self) -> dict[str, Any]:
        from haystack import default_to_dict

        return default_to_dict(self, path=self.path, index=self.index, embedding_dim=self.embedding_dim,
                               similarity=self.similarity, sparse_idf=self.sparse_idf,
                               return_embedding=self.return_embedding, write_batch_size=self.write_batch_size,
                               prefetch_limit=self.prefetch_limit, fusion=self.fusion, rrf_k=self.rrf_k,
                               hnsw_threshold=self.hnsw_threshold, hnsw_ef=self.hnsw_ef,
                               payload_indexes=self.payload_indexes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeDocumentStore:
        from haystack import default_from_dict

        return default_from_dict(cls, data)

    # --- points <-> documents ---------------------------------------------------------------------------
    @staticmethod
    def _point(doc: Document) -> qe.Point:
        """The point of a Document: qdrant-haystack's payload (``Document.to_dict`` without its deep copy of the
        embedding, which costs ~5 ms a chunk)."""
        payload = {"id": doc.id, "content": doc.content, "blob": doc.blob.to_dict() if doc.blob else None,
                   "meta": doc.meta}
        vector: dict[str, Any] = {}
        if doc.embedding is not None:
            vector[DENSE] = [float(x) for x in doc.embedding]
        if doc.sparse_embedding is not None:
            vector[SPARSE] = qe.SparseVector(indices=list(doc.sparse_embedding.indices),
                                             values=[float(v) for v in doc.sparse_embedding.values])
        return qe.Point(id=convert_id(doc.id), vector=vector, payload=payload)

    @staticmethod
    def _document(point: Any, score: float | None = None) -> Document:
        payload = dict(point.payload or {})
        payload["score"] = score
        vec = getattr(point, "vector", None)
        if isinstance(vec, dict):
            if DENSE in vec:
                payload["embedding"] = list(vec[DENSE])
            if SPARSE in vec:
                sv = vec[SPARSE]
                payload["sparse_embedding"] = {"indices": list(sv.indices), "values": list(sv.values)}
        return Document.from_dict(payload)

    # --- Haystack DocumentStore protocol -------------------------------------------------------------------
    def count_documents(self) -> int:
        return self.shard().count(qe.CountRequest(exact=True))

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        return self.shard().count(qe.CountRequest(exact=True, filter=edge_filter(filters)))

    def _scroll(self, filters: dict[str, Any] | None, with_vector: bool = False) -> Iterator[Any]:
        flt = edge_filter(filters)
        offset = None
        while True:
            records, offset = self.shard().scroll(qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, filter=flt,
                                                                   with_payload=True, with_vector=with_vector))
            yield from records
            if offset is None or not records:
                return

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        if filters and not isinstance(filters, dict):
            raise FilterError("filters must be a dictionary")
        if filters and "operator" not in filters:
            raise FilterError("invalid filter syntax: a filter needs an 'operator' (see Haystack's filter docs)")
        return [self._document(r) for r in self._scroll(filters, with_vector=self.return_embedding)]

    def get_documents_by_id(self, ids: list[str]) -> list[Document]:
        if not ids:
            return []
        records = self.shard().retrieve([convert_id(i) for i in ids], with_payload=True,
                                        with_vector=self.return_embedding)
        return [self._document(r) for r in records]

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.FAIL) -> int:
        for doc in documents:
            if not isinstance(doc, Document):
                # ValueError, not TypeError: the error QdrantDocumentStore.write_documents raises here
                raise ValueError(  # noqa: TRY004
                    f"write_documents() expects a list of Documents, got an element of {type(doc)}")
        if not documents:
            return 0
        unique = list({d.id: d for d in documents}.values())
        if policy in (DuplicatePolicy.FAIL, DuplicatePolicy.SKIP):
            existing = {r.payload["id"] for r in self.shard().retrieve([convert_id(d.id) for d in unique],
                                                                       with_payload=["id"], with_vector=False)}
            if existing and policy == DuplicatePolicy.FAIL:
                raise DuplicateDocumentError(f"ID(s) {', '.join(sorted(existing))} already exist in the store")
            unique = [d for d in unique if d.id not in existing]
        for start in range(0, len(unique), self.write_batch_size):
            batch = unique[start:start + self.write_batch_size]
            points = [self._point(d) for d in batch]
            size = sum(len(d.content or "") + 4096 + 8 * self.embedding_dim for d in batch)
            self._update(qe.UpdateOperation.upsert_points(points), "writing chunks", size)
        self._maybe_index()
        return len(unique)

    def delete_documents(self, document_ids: list[str]) -> None:
        if document_ids:
            self._update(qe.UpdateOperation.delete_points([convert_id(i) for i in document_ids]), "deleting chunks")

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        n = self.count_documents_by_filter(filters)
        if n:
            self._update(qe.UpdateOperation.delete_points_by_filter(edge_filter(filters)), "deleting chunks")
        return n

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        n = self.count_documents_by_filter(filters)
        if n:
            self._update(qe.UpdateOperation.set_payload_by_filter(edge_filter(filters), dict(meta), key="meta"),
                         "updating chunk metadata")
        return n

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        self._update(qe.UpdateOperation.delete_points_by_filter(qe.Filter()), "deleting all chunks")

    def get_metadata_field_unique_values(self, metadata_field: str, search_term: str | None = None, from_: int = 0,
                                         size: int = 10, filters: dict[str, Any] | None = None
                                         ) -> tuple[list[Any], int]:
        key = metadata_field if metadata_field.startswith("meta.") else f"meta.{metadata_field}"
        values = sorted({str(v) if not isinstance(v, (int, float, bool)) else v
                         for r in self._scroll(filters) for v in _values_at(r.payload, key)}, key=lambda v: (str(v),
                                                                                                            type(v).__name__))
        if search_term:
            values = [v for v in values if search_term.lower() in str(v).lower()]
        return values[from_:from_ + size], len(values)

    # --- queries (what the retrievers call) -----------------------------------------------------------------
    def _params(self) -> qe.SearchParams | None:
        return qe.SearchParams(hnsw_ef=self.hnsw_ef) if self._indexed else None

    def _run_query(self, request: qe.QueryRequest) -> list[Any]:
        try:
            return self.shard().query(request)
        except StoreError:
            raise
        except Exception as e:
            raise store_error(e, str(self.shard_path), "searching") from e

    def _query_by_embedding(self, query_embedding: list[float], filters: dict[str, Any] | None = None,
                            top_k: int = 10, scale_score: bool = False, return_embedding: bool = False,
                            score_threshold: float | None = None, group_by: str | None = None,
                            group_size: int | None = None) -> list[Document]:
        _no_groups(group_by)
        points = self._run_query(qe.QueryRequest(
            limit=top_k, query=qe.Query.Nearest([float(x) for x in query_embedding], using=DENSE),
            filter=edge_filter(and_(filters, VISIBLE)), with_payload=True, with_vector=return_embedding,
            score_threshold=score_threshold, params=self._params()))
        docs = []
        for p in points:
            score = p.score
            if scale_score:
                score = (score + 1) / 2 if self.similarity == "cosine" else float(1 / (1 + pow(2.718281828, -score / 100)))
            docs.append(self._document(p, score))
        return docs

    def _query_by_sparse(self, query_sparse_embedding: SparseEmbedding, filters: dict[str, Any] | None = None,
                         top_k: int = 10, scale_score: bool = False, return_embedding: bool = False,
                         score_threshold: float | None = None, group_by: str | None = None,
                         group_size: int | None = None) -> list[Document]:
        _no_groups(group_by)
        points = self._run_query(qe.QueryRequest(
            limit=top_k, query=qe.Query.Nearest(_sparse(query_sparse_embedding), using=SPARSE),
            filter=edge_filter(and_(filters, VISIBLE)), with_payload=True, with_vector=return_embedding,
            score_threshold=score_threshold))
        return [self._document(p, p.score) for p in points]

    def _query_hybrid(self, query_embedding: list[float], query_sparse_embedding: SparseEmbedding,
                      filters: dict[str, Any] | None = None, top_k: int = 10, return_embedding: bool = False,
                      score_threshold: float | None = None, group_by: str | None = None,
                      group_size: int | None = None, rrf_k: int | None = None,
                      rrf_weights: list[float] | None = None) -> list[Document]:
        """Dense and sparse prefetches (``prefetch_limit`` each) fused by RRF or DBSF, filters on both sides."""
        _no_groups(group_by)
        flt = edge_filter(and_(filters, VISIBLE))
        limit = self.prefetch_limit or max(100, top_k)
        prefetches = [
            qe.Prefetch(limit=limit, query=qe.Query.Nearest(_sparse(query_sparse_embedding), using=SPARSE), filter=flt),
            qe.Prefetch(limit=limit, query=qe.Query.Nearest([float(x) for x in query_embedding], using=DENSE),
                        filter=flt, params=self._params()),
        ]
        fusion = qe.Fusion.Dbsf() if self.fusion == "dbsf" else qe.Fusion.Rrf(k=rrf_k or self.rrf_k,
                                                                             weights=rrf_weights)
        points = self._run_query(qe.QueryRequest(limit=top_k, prefetches=prefetches, query=fusion,
                                                 with_payload=True, with_vector=return_embedding,
                                                 score_threshold=score_threshold))
        return [self._document(p, p.score) for p in points]

    # --- HNSW -------------------------------------------------------------------------------------------------
    def _maybe_index(self) -> None:
        """Build the HNSW index (blocking) the first time the shard reaches ``hnsw_threshold`` points."""
        if not self.hnsw_threshold or self._indexed:
            return
        if self.count_documents() >= self.hnsw_threshold:
            self.optimize()

    def optimize(self) -> bool:
        """Run Edge's optimizers (HNSW for the dense vectors); blocks until done."""
        try:
            changed = self.shard().optimize()
        except Exception as e:
            raise store_error(e, str(self.shard_path), "indexing (HNSW)") from e
        self._indexed = self.shard().info().indexed_vectors_count > 0
        return changed


def _sparse(s: SparseEmbedding) -> qe.SparseVector:
    return qe.SparseVector(indices=list(s.indices), values=[float(v) for v in s.values])


def _no_groups(group_by: str | None) -> None:
    if group_by:
        raise StoreError("grouped queries (group_by) are not supported by the embedded store (Qdrant Edge)")


def _values_at(payload: dict[str, Any] | None, key: str) -> list[Any]:
    cur: Any = payload or {}
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return []
        cur = cur[part]
    if cur is None:
        return []
    return list(cur) if isinstance(cur, list) else [cur]
