"""``create_app``: the FastAPI app over :class:`~rag.server.collection_service.CollectionRegistry`."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag.config import Settings
from rag.errors import (
    AmbiguousSourceError,
    ConfigError,
    DocragError,
    FilterError,
    IngestError,
    ModelNotFoundError,
    NotFoundError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    UsageError,
)
from rag.server.analysis_router import analysis_router
from rag.server.collection_service import CollectionRegistry
from rag.server.documents_router import documents_router
from rag.server.health_router import health_router
from rag.server.keys import KeyRing
from rag.server.limits import BodySizeLimitMiddleware, RateLimiter
from rag.server.query_router import query_router

logger = logging.getLogger(__name__)

API_DESCRIPTION = """Offline document Q&A over docrag's `DocRAG` API.

Every route except `/health` and the docs needs `Authorization: Bearer KEY`. Each key reaches only its own
collection. Requests over the key's rate limit get `429` with `Retry-After`; bodies over
`DOCRAG_MAX_UPLOAD_MB` get `413`."""


# the HTTP status of each error type; the first matching base class wins (most specific first)
STATUS_BY_TYPE: tuple[tuple[type[DocragError], int], ...] = (
    (NotFoundError, 404),
    (AmbiguousSourceError, 409),
    (StoreLockedError, 503),
    (StoreFullError, 507),
    (StoreError, 503),
    (FilterError, 400),
    (UsageError, 400),
    (IngestError, 422),
    (ModelNotFoundError, 500),
    (ConfigError, 500),
)


def status_for(e: DocragError) -> int:
    """The HTTP status for a docrag error, by its type (never by its message): 400 when none matches."""
    for cls, status in STATUS_BY_TYPE:
        if isinstance(e, cls):
            return status
    return 400


def create_app(settings: Settings, registry: CollectionRegistry | None = None,
               keys: KeyRing | None = None) -> FastAPI:
    """The HTTP app. Tests pass their own ``registry`` to share loaded models between apps.

    :param settings: service settings (keys, rate limit, upload limit, store).
    :param registry: the collections; a new one from ``settings`` when None.
    :param keys: the key ring; built from ``settings.api_keys``/``api_keys_file`` when None.
    :raises ConfigError: when the keys file cannot be read or an entry is malformed.
    """
    if keys is None:  # (an empty ring given is kept: keys may be added to it later)
        keys = KeyRing.from_settings(settings.api_keys, settings.api_keys_file, settings.collection)
    owns_registry = registry is None
    registry = registry or CollectionRegistry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if owns_registry:
            registry.close()

    app = FastAPI(title="docrag", version="0.1.0", description=API_DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.keys = keys
    app.state.registry = registry
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=int(settings.max_upload_mb * 1024 * 1024))

    @app.exception_handler(DocragError)
    async def docrag_error(request: Request, e: DocragError) -> JSONResponse:
        status = status_for(e)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, e)
        return JSONResponse(status_code=status, content={"detail": str(e)})

    for router in (health_router, documents_router, query_router, analysis_router):
        app.include_router(router)
    if not len(keys):
        logger.warning("no API keys configured: every request except /health answers 401 "
                       "(set DOCRAG_API_KEYS or DOCRAG_API_KEYS_FILE)")
    return app


def describe_keys(keys: KeyRing) -> list[dict[str, Any]]:
    """Teams and collections (never keys) for the start-up log."""
    return [{"name": p.name, "collection": p.collection} for p in keys.principals()]
