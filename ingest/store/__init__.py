"""The Qdrant document store from settings: embedded (local folder) by default, a server when a URL is set.

One code path for both: qdrant-haystack's ``QdrantDocumentStore`` with dense vectors (cosine) plus BM25
sparse vectors with Qdrant's IDF modifier. On a server the collection is created with the configured shard
number and replication factor (a 3-node cluster in compose.yaml uses replication factor 2) and payload
indexes on the fields we filter by.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from haystack.utils import Secret
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from rag.config import Settings
from rag.errors import StoreError

logger = logging.getLogger(__name__)

PAYLOAD_INDEXES = [
    {"field_name": "meta.source", "field_schema": "keyword"},
    {"field_name": "meta.file_hash", "field_schema": "keyword"},
    {"field_name": "meta.file_name", "field_schema": "keyword"},
    {"field_name": "meta.entity_keys", "field_schema": "keyword"},
    {"field_name": "meta.page_number", "field_schema": "integer"},
]


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


def build_document_store(settings: Settings, dim: int, collection: str | None = None) -> QdrantDocumentStore:
    """Create (lazily connecting) the store for ``settings``; ``collection`` overrides the configured one."""
    common = dict(
        index=collection or settings.collection,
        embedding_dim=dim,
        similarity="cosine",
        use_sparse_embeddings=True,
        sparse_idf=True,
        return_embedding=False,
        progress_bar=False,
        write_batch_size=256,
        wait_result_from_api=True,
        timeout=settings.qdrant_timeout,
    )
    if settings.qdrant_url:
        return QdrantDocumentStore(
            url=settings.qdrant_url,
            api_key=Secret.from_token(settings.qdrant_api_key) if settings.qdrant_api_key else None,
            shard_number=settings.shard_number,
            replication_factor=settings.replication_factor,
            write_consistency_factor=1,
            payload_fields_to_index=PAYLOAD_INDEXES,
            **common,
        )
    path = settings.store_path
    path.mkdir(parents=True, exist_ok=True)
    return QdrantDocumentStore(path=str(path), **common)


def describe(settings: Settings, collection: str | None = None) -> str:
    where = settings.qdrant_url or f"embedded at {settings.store_path}"
    return f"Qdrant {where}, collection {collection or settings.collection!r}"
