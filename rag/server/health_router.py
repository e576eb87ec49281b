from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from rag.server.deps import Caller

health_router = APIRouter(tags=["health"])


@health_router.get("/health", summary="Liveness; open, needs no key")
def health(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {"status": "ok", "store": "server" if settings.qdrant_url else "embedded",
            "collections_open": len(request.app.state.registry.open_collections())}


@health_router.get("/whoami", summary="The calling key's team and collection")
def whoami(who: Caller) -> dict[str, Any]:
    return {"name": who.name, "collection": who.collection}
