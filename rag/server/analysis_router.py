from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from rag.server.deps import Service
from rag.server.schemas import SummarizeBody

analysis_router = APIRouter(tags=["analysis"])


@analysis_router.post("/summarize", summary="Summary of one stored document")
def summarize(body: SummarizeBody, svc: Service) -> dict[str, Any]:
    return svc.summarize(body.source)


@analysis_router.get("/entities", summary="Entity counts over the collection or one document")
def entities(svc: Service, source: Annotated[str | None, Query()] = None,
             label: Annotated[str | None, Query()] = None) -> list[dict[str, Any]]:
    return svc.entities(source, label)
