"""What the store holds: vector names, payload indexes, the visibility rule, and the store's plain-value config.

Chunks are Haystack Documents stored as points: payload ``{"id", "content", "meta": {...}}``, a dense vector
``text-dense`` (cosine) and a BM25 sparse vector ``text-sparse`` (Qdrant's IDF modifier): the names
qdrant-haystack uses, so Haystack's retrievers, an older store and a Qdrant server all agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME

from ingest.errors import StoreError

__all__ = ["DENSE", "PAYLOAD_INDEXES", "PENDING", "SPARSE", "VISIBLE", "StoreConfig", "embedding_dim"]

DENSE = DENSE_VECTORS_NAME
SPARSE = SPARSE_VECTORS_NAME

# every field a filter of ours touches has an index (keyword / integer). No bool fields: Edge 0.9 matches no
# boolean payload value (MatchValue(True) finds nothing), so flags are keywords.
PAYLOAD_INDEXES: list[dict[str, str]] = [
    {"field_name": "meta.source", "field_schema": "keyword"},
    {"field_name": "meta.file_hash", "field_schema": "keyword"},
    {"field_name": "meta.file_name", "field_schema": "keyword"},
    {"field_name": "meta.file_type", "field_schema": "keyword"},
    {"field_name": "meta.entity_keys", "field_schema": "keyword"},
    {"field_name": "meta.index_key", "field_schema": "keyword"},
    {"field_name": "meta.version", "field_schema": "keyword"},
    {"field_name": "meta.page_numbers", "field_schema": "integer"},
    {"field_name": "meta.chunk_index", "field_schema": "integer"},
    {"field_name": "meta.state", "field_schema": "keyword"},
]

# chunks of a document version still being written carry meta.state = "pending"; searches never see them
PENDING = "pending"
VISIBLE = {"field": "meta.state", "operator": "!=", "value": PENDING}


@dataclass(frozen=True)
class StoreConfig:
    """Everything the store layer needs, as plain values (``rag`` builds it from ``Settings``).

    :param collection: collection (server) or shard folder name (embedded).
    :param embedding_dim: dense vector size.
    :param path: embedded store folder (Qdrant Edge); ignored when ``url`` is set.
    :param url: a Qdrant server; qdrant-client is used.
    :param prefetch_limit: candidates per side (dense, sparse) before fusion; None = max(100, top_k).
    :param fusion: ``rrf`` or ``dbsf``.
    :param hnsw_threshold: embedded only: at or above this many chunks the dense side is HNSW-indexed
        (``optimize``); below it every search is exact. 0 = never index.
    :param hnsw_ef: HNSW search beam (recall vs speed) once indexed.
    """

    collection: str
    embedding_dim: int
    path: Path | None = None
    url: str | None = None
    api_key: str | None = None
    timeout: int = 30
    shard_number: int = 1
    replication_factor: int = 1
    prefetch_limit: int | None = None
    fusion: str = "rrf"
    rrf_k: int = 2
    hnsw_threshold: int = 0
    hnsw_ef: int = 128

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "dbsf"):
            raise ValueError(f"fusion must be rrf or dbsf, not {self.fusion!r}")
        if self.prefetch_limit is not None and self.prefetch_limit < 1:
            raise ValueError(f"prefetch_limit must be >= 1, not {self.prefetch_limit}")
        if self.url is None and self.path is None:
            raise ValueError("an embedded store needs a path (or give a server url)")

    @property
    def embedded(self) -> bool:
        return not self.url

    def describe(self) -> str:
        where = self.url or f"embedded (Qdrant Edge) at {self.path}"
        return f"Qdrant {where}, collection {self.collection!r}"

    def prefetch_for(self, top_k: int) -> int:
        return self.prefetch_limit or max(100, top_k)


def embedding_dim(model_path: str) -> int:
    """Output dimension of a sentence-transformers folder, read from its files (no model load)."""
    p = Path(model_path)
    for cand in sorted(p.glob("*_Dense/config.json"), reverse=True):
        return int(json.loads(cand.read_text())["out_features"])
    cfg = p / "config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        for key in ("hidden_size", "d_model", "dim"):
            if key in data:
                return int(data[key])
    raise StoreError(f"cannot tell the embedding size of {model_path}: no config.json with hidden_size")
