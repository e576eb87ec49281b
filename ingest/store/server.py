"""``ServerDocumentStore``: qdrant-haystack's store on a Qdrant server (qdrant-client), with docrag's query rules.

The same rules as the embedded :class:`~ingest.store.edge.EdgeDocumentStore`: hybrid search prefetches
``prefetch_limit`` candidates per side (default max(100, top_k), so fusion never cuts recall@100), fuses by
RRF or DBSF, and no search sees the chunks of a document version still being written (``meta.pending``).
"""

from __future__ import annotations

import inspect
from typing import Any

from haystack import Document, default_to_dict
from haystack.dataclasses import SparseEmbedding
from haystack.utils.filters import FilterError as HaystackFilterError
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from qdrant_client.http import models as rest

from ingest.errors import FilterError, StoreError
from ingest.store.filters import and_
from ingest.store.schema import VISIBLE

_BASE_PARAMS = [k for k in inspect.signature(QdrantDocumentStore.__init__).parameters if k != "self"]


class ServerDocumentStore(QdrantDocumentStore):
    """:class:`QdrantDocumentStore` plus ``prefetch_limit``/``fusion``/``rrf_k`` and the visibility rule."""

    def __init__(self, *args: Any, prefetch_limit: int | None = None, fusion: str = "rrf", rrf_k: int = 2,
                 **kwargs: Any) -> None:
        if fusion not in ("rrf", "dbsf"):
            raise ValueError(f"fusion must be rrf or dbsf, not {fusion!r}")
        super().__init__(*args, **kwargs)
        self.prefetch_limit = prefetch_limit
        self.fusion = fusion
        self.rrf_k = rrf_k

    def to_dict(self) -> dict[str, Any]:
        params = {k: getattr(self, k) for k in _BASE_PARAMS}
        params["api_key"] = self.api_key.to_dict() if self.api_key else None
        return default_to_dict(self, **params, prefetch_limit=self.prefetch_limit, fusion=self.fusion,
                               rrf_k=self.rrf_k)

    def filter_documents(self, filters: dict[str, Any] | rest.Filter | None = None) -> list[Document]:
        if isinstance(filters, dict) and filters and "operator" not in filters:
            raise FilterError("invalid filter syntax: a filter needs an 'operator' (see Haystack's filter docs)")
        return super().filter_documents(filters)

    @staticmethod
    def _filter(filters: dict[str, Any] | None) -> rest.Filter | None:
        try:
            return convert_filters_to_qdrant(and_(filters, VISIBLE))
        except HaystackFilterError as e:
            raise FilterError(f"invalid filter: {e}") from e

    def _query_by_embedding(self, query_embedding: list[float], filters: dict[str, Any] | None = None,
                            top_k: int = 10, scale_score: bool = False, return_embedding: bool = False,
                            score_threshold: float | None = None, group_by: str | None = None,
                            group_size: int | None = None) -> list[Document]:
        return super()._query_by_embedding(query_embedding, self._filter(filters), top_k, scale_score,
                                           return_embedding, score_threshold, group_by, group_size)

    def _query_by_sparse(self, query_sparse_embedding: SparseEmbedding, filters: dict[str, Any] | None = None,
                         top_k: int = 10, scale_score: bool = False, return_embedding: bool = False,
                         score_threshold: float | None = None, group_by: str | None = None,
                         group_size: int | None = None) -> list[Document]:
        return super()._query_by_sparse(query_sparse_embedding, self._filter(filters), top_k, scale_score,
                                        return_embedding, score_threshold, group_by, group_size)

    def _query_hybrid(self, query_embedding: list[float], query_sparse_embedding: SparseEmbedding,
                      filters: dict[str, Any] | None = None, top_k: int = 10, return_embedding: bool = False,
                      score_threshold: float | None = None, group_by: str | None = None,
                      group_size: int | None = None, rrf_k: int | None = None,
                      rrf_weights: list[float] | None = None) -> list[Document]:
        if group_by:
            return super()._query_hybrid(query_embedding, query_sparse_embedding, self._filter(filters), top_k,
                                         return_embedding, score_threshold, group_by, group_size, rrf_k,
                                         rrf_weights)
        self._initialize_client()
        flt = self._filter(filters)
        limit = self.prefetch_limit or max(100, top_k)
        if self.fusion == "dbsf":
            query: Any = rest.FusionQuery(fusion=rest.Fusion.DBSF)
        else:
            k = rrf_k or self.rrf_k
            query = rest.RrfQuery(rrf=rest.Rrf(k=k, **({"weights": rrf_weights} if rrf_weights else {})))
        try:
            points = self._client.query_points(
                collection_name=self.index,
                prefetch=[
                    rest.Prefetch(query=rest.SparseVector(indices=query_sparse_embedding.indices,
                                                          values=query_sparse_embedding.values),
                                  using=SPARSE_VECTORS_NAME, filter=flt, limit=limit),
                    rest.Prefetch(query=query_embedding, using=DENSE_VECTORS_NAME, filter=flt, limit=limit),
                ],
                query=query, limit=top_k, score_threshold=score_threshold, with_payload=True,
                with_vectors=return_embedding).points
        except Exception as e:
            raise StoreError(f"hybrid search failed on {self.url or self.location or self.path}: {e}") from e
        return self._process_query_point_results(points)
