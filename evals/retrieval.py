"""The four retrieval configurations evaluated on one ingested collection.

- ``bm25``: BM25 sparse vectors only (our query encoder -> ``QdrantSparseEmbeddingRetriever``).
- ``dense``: all-MiniLM-L6-v2 only (``SentenceTransformersTextEmbedder`` -> ``QdrantEmbeddingRetriever``).
- ``hybrid``: the product graph ``rag.graph.build_retrieval(rerank=False)`` (dense + BM25, RRF in Qdrant).
- ``hybrid_rerank``: the product graph with its cross-encoder (``build_retrieval(rerank=True)``) over the
  first ``rerank_depth`` hybrid chunks, followed by the rest of the hybrid list (so Recall@100 stays defined).

The two single-signal baselines are small Haystack pipelines built here on the same store and models; the
product graph itself is only built by ``rag.graph``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from haystack import Pipeline

from rag import graph, models
from rag.config import Settings

CONFIGS = ("bm25", "dense", "hybrid", "hybrid_rerank")
Hits = list[tuple[str, float | None]]  # (record id, score) per retrieved chunk, best first


def _bm25_pipeline(store: Any, depth: int) -> Pipeline:
    from haystack_integrations.components.retrievers.qdrant import QdrantSparseEmbeddingRetriever

    from rag.components.bm25_query_embedder import BM25QuerySparseEmbedder

    p = Pipeline()
    p.add_component("sparse_query_embedder", BM25QuerySparseEmbedder())
    p.add_component("retriever", QdrantSparseEmbeddingRetriever(document_store=store, top_k=depth))
    p.connect("sparse_query_embedder.sparse_embedding", "retriever.query_sparse_embedding")
    return p


def _dense_pipeline(settings: Settings, store: Any, depth: int) -> Pipeline:
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever

    p = Pipeline()
    p.add_component("query_embedder", SentenceTransformersTextEmbedder(
        model=graph.embedder_path(settings), device=ComponentDevice.from_str(models.resolve_device(settings.device)),
        progress_bar=False, normalize_embeddings=True, local_files_only=True))
    p.add_component("retriever", QdrantEmbeddingRetriever(document_store=store, top_k=depth))
    p.connect("query_embedder.embedding", "retriever.query_embedding")
    return p


def _hits(docs: list[Any]) -> Hits:
    return [(d.meta.get("source", ""), d.score) for d in docs]


def build_searchers(settings: Settings, store: Any, depth: int = 300,
                    rerank_depth: int = 50) -> tuple[dict[str, Callable[[str], Hits]], dict[str, str]]:
    """One ``search(query) -> chunk hits`` callable per available config, and the configs skipped (with why).

    :param depth: chunks fetched per query by the first-stage configs (enough for 100 distinct documents).
    :param rerank_depth: hybrid chunks the cross-encoder rescores per query.
    """
    skipped: dict[str, str] = {}
    bm25 = _bm25_pipeline(store, depth)
    dense = _dense_pipeline(settings, store, depth)
    hybrid = graph.build_retrieval(settings.model_copy(update={"retrieve_k": depth}), store, rerank=False)
    searchers: dict[str, Callable[[str], Hits]] = {
        "bm25": lambda q: _hits(bm25.run({"sparse_query_embedder": {"text": q}})["retriever"]["documents"]),
        "dense": lambda q: _hits(dense.run({"query_embedder": {"text": q}})["retriever"]["documents"]),
        "hybrid": lambda q: _hits(hybrid.run(graph.query_inputs(hybrid, q, depth, depth, None))
                                  ["retriever"]["documents"]),
    }
    reranker = models.resolve_reranker(settings.reranker)
    if reranker is None:
        skipped["hybrid_rerank"] = "no cross-encoder configured or shipped in models/reranker"
        return searchers, skipped
    rr = graph.build_retrieval(settings.model_copy(update={"retrieve_k": rerank_depth}), store, rerank=True)
    cache: dict[str, Hits] = {}
    hybrid_search = searchers["hybrid"]

    def hybrid_cached(q: str) -> Hits:
        if q not in cache:
            cache.clear()
            cache[q] = hybrid_search(q)
        return cache[q]

    def reranked(q: str) -> Hits:
        head = _hits(rr.run(graph.query_inputs(rr, q, rerank_depth, rerank_depth, None))["reranker"]["documents"])
        seen = {h[0] for h in head}
        return head + [h for h in hybrid_cached(q) if h[0] not in seen]

    searchers["hybrid"] = hybrid_cached
    searchers["hybrid_rerank"] = reranked
    return searchers, skipped


def reranker_id(settings: Settings) -> str | None:
    r = models.resolve_reranker(settings.reranker)
    return None if r is None else f"{r.path} ({r.origin})"
