"""FastAPI dependencies: the authenticated, rate-limited caller's collection service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.server.collection_service import CollectionService
from rag.server.keys import Principal

bearer = HTTPBearer(auto_error=False, description="An API key from DOCRAG_API_KEYS or the keys file.")


def principal(request: Request,
              creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """401 without a known key, 429 (with ``Retry-After``) over the key's rate limit."""
    state = request.app.state
    who = state.keys.lookup(creds.credentials) if creds and creds.scheme.lower() == "bearer" else None
    if who is None:
        raise HTTPException(status_code=401, detail="missing or unknown API key: send 'Authorization: Bearer KEY'",
                            headers={"WWW-Authenticate": "Bearer"})
    wait = state.limiter.acquire(who.key_hash)
    if wait > 0:
        raise HTTPException(status_code=429,
                            detail=f"rate limit of {state.limiter.per_minute} requests per minute exceeded",
                            headers={"Retry-After": state.limiter.retry_after_header(wait)})
    return who


def service(request: Request, who: Annotated[Principal, Depends(principal)]) -> CollectionService:
    """The caller's own collection: a key can only ever reach the collection its entry names."""
    return request.app.state.registry.get(who.collection)


Caller = Annotated[Principal, Depends(principal)]
Service = Annotated[CollectionService, Depends(service)]
