"""docrag's store layer: the only code that speaks Qdrant.

- embedded (default): Qdrant Edge in-process, one shard per collection under ``<path>/edge/`` -- see
  :mod:`ingest.store.edge`;
- server (``url`` set): qdrant-client -- :mod:`ingest.store.server`;
- :mod:`ingest.store.library`: document records and atomic versioned replace, over either backend;
- :mod:`ingest.store.filters`: the filter syntax; :mod:`ingest.store.schema`: vectors, payload indexes, config;
- :mod:`ingest.store.migrate`: stores made by an older docrag (qdrant-client local mode).

``ingest`` never imports ``rag``: :class:`StoreConfig` carries plain values that ``rag`` builds from Settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haystack.utils import Secret

from ingest.store.edge import EdgeDocumentStore
from ingest.store.library import RECORD_INDEXES, DocumentRecord, Library
from ingest.store.migrate import find_local_mode, migrate_local_mode
from ingest.store.schema import PAYLOAD_INDEXES, StoreConfig, embedding_dim
from ingest.store.server import ServerDocumentStore

__all__ = [
    "PAYLOAD_INDEXES",
    "DocumentRecord",
    "EdgeDocumentStore",
    "Library",
    "ServerDocumentStore",
    "StoreConfig",
    "build_document_store",
    "embedded_collections",
    "embedding_dim",
    "open_library",
]

logger = logging.getLogger(__name__)


def edge_dir(cfg: StoreConfig) -> Path:
    return Path(cfg.path) / "edge"


def _edge(cfg: StoreConfig, index: str, records: bool = False) -> EdgeDocumentStore:
    if records:
        return EdgeDocumentStore(path=str(edge_dir(cfg)), index=index, embedding_dim=1,
                                 payload_indexes=RECORD_INDEXES)
    return EdgeDocumentStore(path=str(edge_dir(cfg)), index=index, embedding_dim=cfg.embedding_dim,
                             prefetch_limit=cfg.prefetch_limit, fusion=cfg.fusion, rrf_k=cfg.rrf_k,
                             hnsw_threshold=cfg.hnsw_threshold, hnsw_ef=cfg.hnsw_ef)


def _server(cfg: StoreConfig, index: str, records: bool = False) -> ServerDocumentStore:
    common: dict[str, Any] = {"url": cfg.url,
                              "api_key": Secret.from_token(cfg.api_key) if cfg.api_key else None,
                              "index": index, "similarity": "cosine", "return_embedding": False,
                              "progress_bar": False, "write_batch_size": 256, "wait_result_from_api": True,
                              "timeout": cfg.timeout, "shard_number": cfg.shard_number,
                              "replication_factor": cfg.replication_factor, "write_consistency_factor": 1}
    if records:
        return ServerDocumentStore(embedding_dim=1, use_sparse_embeddings=False,
                                   payload_fields_to_index=RECORD_INDEXES, **common)
    return ServerDocumentStore(embedding_dim=cfg.embedding_dim, use_sparse_embeddings=True, sparse_idf=True,
                               payload_fields_to_index=PAYLOAD_INDEXES, prefetch_limit=cfg.prefetch_limit,
                               fusion=cfg.fusion, rrf_k=cfg.rrf_k, **common)


def embedded_collections(path: str | Path) -> list[str]:
    """The collections of the embedded store at ``path``: its shard folders, without the records shards and
    half-done migrations (a server's collections are the server's to list)."""
    folder = Path(path) / "edge"
    names = (p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else ()
    return sorted(n for n in names if not n.endswith((".records", "-migrating")))


def build_document_store(cfg: StoreConfig) -> Any:
    """The chunk store (lazily connecting): Edge when embedded, qdrant-client for a server."""
    return _server(cfg, cfg.collection) if cfg.url else _edge(cfg, cfg.collection)


def open_library(cfg: StoreConfig, progress: Callable[[str], None] | None = None, migrate: bool = True
                 ) -> Library:
    """Open (and recover) the collection's chunks and records; an older local-mode store is migrated once.

    :param migrate: False refuses an unmigrated older store with the command that migrates it.
    :raises StoreError: (or a subclass) with the fix.
    """
    if cfg.url:
        lib = Library(_server(cfg, cfg.collection), _server(cfg, f"{cfg.collection}__records", records=True),
                      cfg.describe())
    else:
        old = find_local_mode(Path(cfg.path), cfg.collection)
        if old is not None and not (edge_dir(cfg) / cfg.collection).exists():
            if not migrate:
                from ingest.errors import StoreError

                raise StoreError(f"{old.parent} was written by an older docrag (qdrant-client local mode); "
                                 f"migrate it once with: docrag migrate --collection {cfg.collection}")
            edge_dir(cfg).mkdir(parents=True, exist_ok=True)
            migrate_local_mode(Path(cfg.path), cfg.collection, edge_dir(cfg), lambda name: _edge(cfg, name),
                               progress)
        lib = Library(_edge(cfg, cfg.collection), _edge(cfg, f"{cfg.collection}.records", records=True),
                      cfg.describe())
    try:
        lib.chunks.count_documents()  # open now so errors surface here, not mid-ingest
        lib.recover(progress)
    except BaseException:
        lib.close()
        raise
    return lib
