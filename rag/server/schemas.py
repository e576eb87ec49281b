"""Request bodies. Responses are the ``to_dict()`` contracts of :mod:`rag.api`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000)
    top_k: int | None = Field(default=None, ge=1, le=100)
    rerank: bool | None = None
    filters: dict[str, Any] | None = Field(default=None, description="Haystack filters or the short form "
                                           "{source, file_name, page, entity, file_type}.")


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000)
    top_k: int | None = Field(default=None, ge=1, le=100)
    rerank: bool | None = None
    filters: dict[str, Any] | None = None
    stream: bool = Field(default=False, description="Answer as server-sent events: `token` events, then one "
                                                    "`answer` event (or `error`).")


class SummarizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=4096, description="Stored source or unique file name.")
