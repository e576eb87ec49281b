from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, UploadFile

from rag.server.deps import Service

documents_router = APIRouter(prefix="/documents", tags=["documents"])


@documents_router.get("", summary="The key's stored documents")
def list_documents(svc: Service) -> list[dict[str, Any]]:
    return svc.list_documents()


@documents_router.post("", summary="Upload and ingest files (multipart, field `files`)")
def ingest(files: Annotated[list[UploadFile], File()], svc: Service,
           force: Annotated[bool, Query(description="re-ingest unchanged files")] = False,
           ) -> dict[str, Any]:
    """Same contract as ``docrag ingest --json``; a file of the same name replaces the stored one."""
    if not files:
        raise HTTPException(status_code=400, detail="no files: send multipart field 'files'")
    return svc.ingest([(f.filename or "upload", f.file) for f in files], force=force)


@documents_router.get("/{source:path}", summary="A document's chunks (source or unique file name)")
def show(source: str, svc: Service) -> list[dict[str, Any]]:
    return svc.show(source)


@documents_router.delete("/{source:path}", summary="Delete a document (source or unique file name)")
def delete(source: str, svc: Service) -> dict[str, Any]:
    return svc.delete(source)
