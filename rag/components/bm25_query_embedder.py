"""Query side of BM25 hybrid search."""

from __future__ import annotations

from haystack import component
from haystack.dataclasses import SparseEmbedding

from ingest.sparse import BM25SparseEncoder


@component
class BM25QuerySparseEmbedder:
    """Encodes a query as a BM25 sparse vector (weight 1 per distinct term; Qdrant applies IDF)."""

    def __init__(self) -> None:
        self._encoder = BM25SparseEncoder()

    @component.output_types(sparse_embedding=SparseEmbedding)
    def run(self, text: str) -> dict[str, SparseEmbedding]:
        return {"sparse_embedding": self._encoder.encode_query(text)}
