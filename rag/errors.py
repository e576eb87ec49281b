"""Error hierarchy for docrag. HTTP status codes map by type (``rag.server.app.status_for``).

Every error carries a message written for the user: what went wrong, with which file or setting, and
how to fix it. The ingest layer's errors (parsing, the store, filters) live in :mod:`ingest.errors` and are
re-exported here, so ``from rag.errors import StoreError`` and ``isinstance(e, DocragError)`` cover both.
"""

from __future__ import annotations

from ingest.errors import (
    CorruptDocumentError,
    DocragError,
    EmptyDocumentError,
    EncryptedDocumentError,
    FilterError,
    IngestError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    UnsupportedFileError,
)

__all__ = ["AmbiguousSourceError", "ConfigError", "CorruptDocumentError", "DocragError", "EmptyDocumentError",
           "EncryptedDocumentError", "FilterError", "IngestError", "ModelNotFoundError", "NotFoundError",
           "StoreCorruptError", "StoreError", "StoreFullError", "StoreLockedError", "UnsupportedFileError",
           "UsageError"]


class ConfigError(DocragError):
    """A setting is invalid (bad value, unknown key, unreadable TOML file)."""


class ModelNotFoundError(DocragError):
    """A model could not be resolved to local weights."""


class UsageError(DocragError):
    """A call is malformed: empty question, a setting that cannot change on an open DocRAG (HTTP 400)."""


class NotFoundError(DocragError):
    """No stored document matches (HTTP 404)."""


class AmbiguousSourceError(DocragError):
    """A name matches several stored documents (HTTP 409); ``matches`` lists them."""

    def __init__(self, message: str, matches: list[str]) -> None:
        self.matches = matches
        super().__init__(message)
