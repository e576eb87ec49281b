"""docrag: offline retrieval-augmented document analysis (query graph, components, Python API).

``from rag import DocRAG`` — names are imported lazily so that ``rag.errors``/``rag.config`` stay light.
"""

from __future__ import annotations

from typing import Any

import ingest.offline  # noqa: F401 - telemetry off before any library is imported

__all__ = ["Answer", "AnswerStream", "Citation", "DocRAG", "EntityCount", "Hit", "IngestReport", "Settings",
           "Summary"]


def __getattr__(name: str) -> Any:
    if name == "Settings":
        from rag.config import Settings

        return Settings
    if name in __all__:
        from rag import api

        return getattr(api, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
