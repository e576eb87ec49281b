"""Error hierarchy for docrag.

Every error carries a message written for the user: what went wrong, with which file or setting, and
how to fix it.
"""

from __future__ import annotations


class DocragError(Exception):
    """Base class of all docrag errors."""


class ConfigError(DocragError):
    """A setting is invalid (bad value, unknown key, unreadable TOML file)."""


class ModelNotFoundError(DocragError):
    """A model could not be resolved to local weights."""


class ModelFormatError(ModelNotFoundError):
    """A model path exists but is not a model of the expected format (e.g. a generator that is not GGUF)."""


class StoreError(DocragError):
    """The Qdrant store is unavailable or rejected an operation."""


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
