from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ingest.store.filters import to_haystack_filters
from rag.errors import DocragError
from rag.server.deps import Service
from rag.server.schemas import AskBody, SearchBody

query_router = APIRouter(tags=["query"])


@query_router.post("/search", summary="Hybrid retrieval (+ rerank) in the key's collection")
def search(body: SearchBody, svc: Service) -> list[dict[str, Any]]:
    return svc.search(body.query, body.top_k, body.rerank, body.filters)


def _sse(events: Iterator[tuple[str, Any]]) -> Iterator[str]:
    try:
        for event, data in events:
            payload = {"text": data} if event == "token" else data
            yield f"event: {event}\ndata: {json.dumps(payload)}\n\n"
    except DocragError as e:
        yield f"event: error\ndata: {json.dumps({'error': str(e)})}\n\n"


@query_router.post("/ask", summary="A cited answer; `stream: true` answers as server-sent events",
                   responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}})
def ask(body: AskBody, svc: Service) -> Any:
    if body.stream:
        to_haystack_filters(body.filters)  # a bad filter is a 400 now, not an error event mid-stream
        events = svc.ask_stream(body.question, body.top_k, body.rerank, body.filters)
        return StreamingResponse(_sse(events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return svc.ask(body.question, body.top_k, body.rerank, body.filters)
