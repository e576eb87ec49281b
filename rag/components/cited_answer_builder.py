"""Turn the generator's reply into an answer with verified citations (source, pages, chunk id, quote)."""

from __future__ import annotations

import re
from typing import Any

from haystack import Document, component
from haystack.dataclasses import ChatMessage

from ingest.chunk import page_at
from ingest.sparse import bm25_tokenize

NO_ANSWER_TEXT = "The documents do not contain an answer to this question."
_NOT_FOUND = re.compile(r"\bNOT[_ ]FOUND\b|\b(?:do(?:es)? not|don't) (?:contain|mention|provide)\b|"
                        r"\bno (?:information|answer)\b|\bcannot (?:be )?(?:answer|found)\b", re.IGNORECASE)
_MARK = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a else 0.0


def best_quote(answer: str, text: str, max_chars: int = 300) -> str:
    """The sentence of ``text`` that shares the most (stemmed) terms with ``answer``."""
    terms = set(bm25_tokenize(answer))
    best, best_s = "", -1.0
    for sent in _SENT.split(text):
        sent = sent.strip()
        if not sent:
            continue
        s = _overlap(terms, set(bm25_tokenize(sent)))
        if s > best_s:
            best, best_s = sent, s
    return best[:max_chars]


@component
class CitedAnswerBuilder:
    """Builds the final answer: text, citations checked against the retrieved chunks, grounding flag.

    - ``[n]`` markers that point at a numbered context chunk become citations; markers to anything else are
      dropped from the text and the citations.
    - When the model cites nothing, each answer sentence is attributed to the context chunk that supports it
      best (term overlap ≥ ``min_support``); unsupported answers are flagged ``grounded=False``.
    - A "not found" reply, or ``no_answer`` from the relevance gate, yields a declined answer.
    """

    def __init__(self, min_support: float = 0.5) -> None:
        if not 0 <= min_support <= 1:
            raise ValueError(f"min_support must be in [0, 1], not {min_support}")
        self.min_support = min_support

    @component.output_types(answer=dict)
    def run(self, query: str, replies: list[ChatMessage] | None = None, documents: list[Document] | None = None,
            no_answer: str | None = None) -> dict[str, Any]:
        documents = documents or []
        if no_answer is not None or not replies:
            return {"answer": self._declined(query, documents)}
        raw = (replies[0].text or "").strip()
        if not raw or (_NOT_FOUND.search(raw) and len(raw.split()) < 25):
            return {"answer": self._declined(query, documents, raw)}

        cited: list[int] = []

        def keep(m: re.Match) -> str:
            nums = [int(x) for x in m.group(1).split(",")]
            valid = [n for n in nums if 1 <= n <= len(documents)]
            for n in valid:
                if n not in cited:
                    cited.append(n)
            return f"[{', '.join(map(str, valid))}]" if valid else ""

        text = re.sub(r"\s+([.,;:])", r"\1", _MARK.sub(keep, raw)).strip()
        if not re.search(r"\w", re.sub(r"\[[\d, ]*\]", "", text)):  # nothing left but markers/punctuation
            return {"answer": self._declined(query, documents, raw)}
        mode = "model"
        if not cited:
            mode = "attributed"
            for sent in _SENT.split(text):
                terms = set(bm25_tokenize(sent))
                scored = [(_overlap(terms, set(bm25_tokenize(d.content or ""))), i + 1) for i, d in enumerate(documents)]
                score, n = max(scored, default=(0.0, 0))
                if n and score >= self.min_support and n not in cited:
                    cited.append(n)
        answer_terms = set(bm25_tokenize(text))
        support = max((_overlap(answer_terms, set(bm25_tokenize(documents[n - 1].content or ""))) for n in cited),
                      default=0.0)
        citations = [self._citation(n, documents[n - 1], text) for n in cited]
        return {"answer": {"query": query, "text": text, "citations": citations, "declined": False,
                           "grounded": bool(citations) and support >= self.min_support,
                           "citation_mode": mode, "raw": raw}}

    @staticmethod
    def _citation(n: int, doc: Document, answer: str) -> dict[str, Any]:
        m = doc.meta
        quote = best_quote(answer, doc.content or "")
        at = (doc.content or "").find(quote) if quote else -1
        return {"ref": n, "source": m.get("source"), "file_name": m.get("file_name"),
                "page": page_at(m, at) if at >= 0 else m.get("page_number"), "pages": m.get("page_numbers", []),
                "chunk_id": doc.id, "quote": quote, "score": doc.score}

    @staticmethod
    def _declined(query: str, documents: list[Document], raw: str = "") -> dict[str, Any]:
        return {"query": query, "text": NO_ANSWER_TEXT, "citations": [], "declined": True, "grounded": True,
                "citation_mode": "none", "raw": raw}
