"""docrag: offline retrieval-augmented document analysis (query graph, components, Python API)."""

from rag.api import Answer, AnswerStream, Citation, DocRAG, EntityCount, Hit, IngestReport, Summary
from rag.config import Settings

__all__ = ["Answer", "AnswerStream", "Citation", "DocRAG", "EntityCount", "Hit", "IngestReport", "Settings",
           "Summary"]
