"""Decline early when nothing retrieved is relevant enough to answer from."""

from __future__ import annotations

import logging
from typing import Any

from haystack import Document, component

logger = logging.getLogger(__name__)


@component
class RelevanceGate:
    """Passes on the documents scoring at least ``min_score``; when none does, emits ``no_answer`` instead.

    The generator downstream only runs when ``documents`` is emitted, so an unanswerable question costs no
    generation time and cannot be answered from irrelevant text. With ``min_score=None`` (e.g. when there is no
    reranker and scores are not calibrated) every non-empty result passes.
    """

    def __init__(self, min_score: float | None = None, top_k: int = 5) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, not {top_k}")
        self.min_score = min_score
        self.top_k = top_k

    @component.output_types(documents=list[Document], no_answer=str)
    def run(self, query: str, documents: list[Document], min_score: float | None = None,
            top_k: int | None = None) -> dict[str, Any]:
        threshold = self.min_score if min_score is None else min_score
        docs = documents[: top_k or self.top_k]
        if threshold is not None:
            docs = [d for d in docs if d.score is not None and d.score >= threshold]
        if not docs:
            best = max((d.score for d in documents if d.score is not None), default=None)
            logger.info("No document passes the relevance gate (best score %s, threshold %s)", best, threshold)
            return {"no_answer": query}
        return {"documents": docs}
