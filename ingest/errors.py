"""Errors of the ingest layer (parsing, chunking, the store). ``rag.errors`` re-exports them and adds its own.

Every error carries a message written for the user: what went wrong, with which file or setting, and how to
fix it. ``ingest`` never imports ``rag``: this is the root of the hierarchy.
"""

from __future__ import annotations

try:
    from haystack.errors import FilterError as _HaystackFilterError
except ImportError:  # a bare GPU machine that runs evals.gpu_bench (torch and sentence-transformers, no haystack)
    _HaystackFilterError = Exception  # type: ignore[misc,assignment]


class DocragError(Exception):
    """Base class of all docrag errors."""


class StoreError(DocragError):
    """The Qdrant store is unavailable or rejected an operation."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store (``owner`` names it when known)."""

    def __init__(self, message: str, owner: dict | None = None) -> None:
        self.owner = owner
        super().__init__(message)


class StoreCorruptError(StoreError):
    """A store file is truncated or damaged; the message names the file and the command that fixes it."""


class StoreFullError(StoreError):
    """The disk under the store is full; nothing of the failed write is visible."""


class FilterError(DocragError, _HaystackFilterError):
    """A filter is malformed: unknown field, unknown operator or a bad value (HTTP 400).

    Also a Haystack ``FilterError``, so Haystack's document-store contract holds."""


class IngestError(DocragError):
    """A single file could not be ingested. ``source`` names the file, ``reason`` says why and how to fix it."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class EmptyDocumentError(IngestError):
    """The file has no extractable text."""


class EncryptedDocumentError(IngestError):
    """The file is password protected."""


class UnsupportedFileError(IngestError):
    """The file type is not supported."""


class CorruptDocumentError(IngestError):
    """The file is damaged or truncated."""
