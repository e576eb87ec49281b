"""``StoreHybridRetriever``: Haystack's ``QdrantHybridRetriever``, unchanged at run time, whose ``from_dict``
restores the store by its own type (qdrant-haystack's always builds a plain ``QdrantDocumentStore``, so a graph
over Edge or our server store would not load back from YAML)."""

from __future__ import annotations

from typing import Any

from haystack import component, default_from_dict
from haystack.core.serialization import import_class_by_name
from haystack.document_stores.types import FilterPolicy
from haystack_integrations.components.retrievers.qdrant import QdrantHybridRetriever


@component
class StoreHybridRetriever(QdrantHybridRetriever):
    """Hybrid (dense + sparse) retrieval over any docrag store; see :class:`QdrantHybridRetriever`."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreHybridRetriever:
        store = data["init_parameters"]["document_store"]
        data["init_parameters"]["document_store"] = import_class_by_name(store["type"]).from_dict(store)
        if filter_policy := data["init_parameters"].get("filter_policy"):
            data["init_parameters"]["filter_policy"] = FilterPolicy.from_str(filter_policy)
        return default_from_dict(cls, data)
