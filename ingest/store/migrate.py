"""Stores made by an older docrag: qdrant-client's *local mode* folder (``<path>/collection/<name>/storage.sqlite``).

:func:`find_local_mode` detects one; :func:`migrate_local_mode` copies every point (payload, dense and sparse
vectors, unchanged ids) into a new Edge shard, written under ``<name>-migrating`` and renamed only when
complete, so an interrupted migration leaves the old store as it was and simply runs again. The old folder is
kept (delete it by hand once the new store works).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from ingest.errors import StoreError, StoreLockedError

logger = logging.getLogger(__name__)


def find_local_mode(path: Path, collection: str) -> Path | None:
    """The sqlite file of an older local-mode collection under ``path``, if there is one."""
    db = Path(path) / "collection" / collection / "storage.sqlite"
    return db if db.is_file() else None


def migrate_local_mode(path: Path, collection: str, target: Path, make_store: Callable[[str], object],
                       progress: Callable[[str], None] | None = None, batch: int = 512) -> int:
    """Copy the local-mode collection into ``target/<collection>`` (an Edge shard); returns the points copied.

    :param make_store: builds the (closed) :class:`EdgeDocumentStore` for an index name under ``target``.
    """
    import qdrant_edge as qe
    from qdrant_client import QdrantClient

    tmp_name = f"{collection}-migrating"
    shutil.rmtree(Path(target) / tmp_name, ignore_errors=True)
    try:
        client = QdrantClient(path=str(path))
    except Exception as e:
        if "already accessed by another instance" in str(e) or "lock" in str(e).lower():
            raise StoreLockedError(f"the older store {path} is open in another process; stop it and retry") from e
        raise StoreError(f"cannot read the older store {path}: {e}") from e
    store = make_store(tmp_name)
    try:
        total = client.count(collection).count
        done, offset = 0, None
        while True:
            points, offset = client.scroll(collection, limit=batch, offset=offset, with_payload=True,
                                           with_vectors=True)
            ops = []
            for p in points:
                vec = {}
                for name, v in (p.vector or {}).items():
                    vec[name] = qe.SparseVector(indices=list(v.indices), values=list(v.values)) \
                        if hasattr(v, "indices") else list(v)
                ops.append(qe.Point(id=str(p.id), vector=vec, payload=p.payload or {}))
            if ops:
                store.shard().update(qe.UpdateOperation.upsert_points(ops))
            done += len(points)
            if progress:
                progress(f"migrating {collection}: {done}/{total} chunks")
            if offset is None or not points:
                break
        store.close()
    except BaseException:
        store.close()
        shutil.rmtree(Path(target) / tmp_name, ignore_errors=True)
        raise
    finally:
        client.close()
    (Path(target) / tmp_name).rename(Path(target) / collection)
    logger.warning("migrated %d chunks of %s from %s (local mode) to Qdrant Edge at %s; the old folder is kept",
                   done, collection, path, Path(target) / collection)
    return done
