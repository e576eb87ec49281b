"""Decide from the reader's spans whether to answer, and pick the evidence the generator is given."""

from __future__ import annotations

import logging
from typing import Any

from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

logger = logging.getLogger(__name__)


def evidence_dict(a: ExtractedAnswer) -> dict[str, Any]:
    """An ``ExtractedAnswer`` as the JSON evidence record of ``rag.api.Evidence``."""
    doc = a.document
    m = doc.meta if doc else {}
    start, end = (a.document_offset.start, a.document_offset.end) if a.document_offset else (0, 0)
    text = doc.content or "" if doc else ""
    s0 = int(a.meta.get("sentence_start", start))
    s1 = int(a.meta.get("sentence_end", end))
    return {"text": a.data or "", "chunk_id": doc.id if doc else "", "start": start, "end": end,
            "score": round(float(a.score), 4), "source": m.get("source", ""), "file_name": m.get("file_name", ""),
            "page": m.get("page_number"), "sentence": text[s0:s1], "sentence_start": s0,
            "margin": a.meta.get("margin"), "rerank_score": a.meta.get("rerank_score")}


@component
class EvidenceGate:
    """Passes the best reader spans on as evidence, or declines when the calibrated confidence is too low.

    - ``evidence`` / ``documents`` are emitted only when the best span's probability is at least ``threshold``:
      the generator downstream then runs; otherwise ``no_answer`` is emitted and no generation happens.
    - ``candidates`` (every span found, as evidence records) is always emitted, for display and evals.
    - Besides the best span, a span is kept as evidence when it scores at least ``min_share`` of the best and
      comes from another place (at most ``max_evidence``).
    """

    def __init__(self, threshold: float = 0.5, max_evidence: int = 3, min_share: float = 0.5) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1], not {threshold}")
        if max_evidence < 1:
            raise ValueError(f"max_evidence must be >= 1, not {max_evidence}")
        self.threshold = threshold
        self.max_evidence = max_evidence
        self.min_share = min_share

    @component.output_types(evidence=list[dict], documents=list[Document], no_answer=str, candidates=list[dict])
    def run(self, query: str, answers: list[ExtractedAnswer], threshold: float | None = None) -> dict[str, Any]:
        cut = self.threshold if threshold is None else threshold
        spans = [a for a in answers if a.data is not None and a.document is not None]
        candidates = [evidence_dict(a) for a in spans]
        if not spans or spans[0].score < cut:
            logger.info("Declined: best span probability %.3f < %.3f", spans[0].score if spans else 0.0, cut)
            return {"no_answer": query, "candidates": candidates}
        best = spans[0].score
        chosen = [0]
        for i, a in enumerate(spans[1:], start=1):
            if len(chosen) >= self.max_evidence:
                break
            if a.score >= self.min_share * best and a.score >= cut / 2:
                chosen.append(i)
        docs: list[Document] = []
        for i in chosen:
            if all(d.id != spans[i].document.id for d in docs):
                docs.append(spans[i].document)
        return {"evidence": [candidates[i] for i in chosen], "documents": docs, "candidates": candidates}
