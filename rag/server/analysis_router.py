from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from rag.server.collection_service import CollectionService
from rag.server.deps import service
from rag.server.schemas import SummarizeBody

analysis_router = APIRouter(tags=["analysis"])


@analysis_router.post("/summarize", summary="Summary of one stored document")
def summarize(body: SummarizeBody, svc: CollectionService = Depends(service)) -> dict[str, Any]:
    return svc.summarize(body.source, body.max_words)


@analysis_router.get("/entities", summary="Entity counts over the collection or one document")
def entities(source: str | None = Query(None), label: str | None = Query(None),
             svc: CollectionService = Depends(service)) -> list[dict[str, Any]]:
    return svc.entities(source, label)
