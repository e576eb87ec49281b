"""docrag's typed results. ``to_dict()`` of each is the JSON contract of the CLI's ``--json`` and the HTTP API.

``rag.api`` re-exports every name here (``from rag.api import Answer, Hit`` keeps working).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document

__all__ = ["Answer", "AnswerStream", "Citation", "EntityCount", "Evidence", "Hit", "IngestReport", "Summary"]


@dataclass
class IngestReport:
    """What an ingest did. ``to_dict()`` is the documented JSON contract of ``docrag ingest --json``."""

    ingested: list[dict[str, Any]] = field(default_factory=list)  # {"source","chunks","pages"}
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # {"source","error"}
    warnings: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"ingested": self.ingested, "unchanged": self.unchanged, "failed": self.failed,
                "warnings": self.warnings,
                "summary": {"files": len(self.ingested) + len(self.unchanged) + len(self.failed),
                            "ingested": len(self.ingested), "unchanged": len(self.unchanged),
                            "failed": len(self.failed), "pages": sum(i["pages"] for i in self.ingested),
                            "chunks": sum(i["chunks"] for i in self.ingested), "seconds": round(self.seconds, 3)}}


@dataclass
class Hit:
    """One retrieved chunk."""

    chunk_id: str
    source: str
    file_name: str
    page: int | None
    pages: list[int]
    score: float | None
    text: str
    title_path: str = ""
    chunk_index: int | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_document(cls, d: Document) -> Hit:
        m = d.meta
        return cls(chunk_id=d.id, source=m.get("source", ""), file_name=m.get("file_name", ""),
                   page=m.get("page_number"), pages=list(m.get("page_numbers") or []), score=d.score,
                   text=d.content or "", title_path=m.get("title_path", ""), chunk_index=m.get("chunk_index"),
                   entities=list(m.get("entities") or []))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Citation:
    ref: int
    source: str
    file_name: str
    page: int | None
    pages: list[int]
    chunk_id: str
    quote: str
    score: float | None = None
    start: int | None = None  # character offsets of ``quote`` in the chunk text (quote == text[start:end])
    end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """A verbatim answer span found by the extractive reader: ``chunk_text[start:end] == text``.

    ``sentence`` is the sentence holding the span, ``sentence_start`` its offset in the chunk text.
    ``score`` is the calibrated probability (0-1) that this span answers the question.
    """

    text: str
    chunk_id: str
    start: int
    end: int
    score: float
    source: str = ""
    file_name: str = ""
    page: int | None = None
    sentence: str = ""
    sentence_start: int = 0
    margin: float | None = None  # the reader's span logit minus its no-answer logit (before calibration)
    rerank_score: float | None = None  # the cross-encoder logit of the chunk

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """A grounded answer. ``declined`` is True when the documents hold no answer.

    ``mode`` is ``generated`` (the generator's text, checked against the evidence), ``extractive`` (the
    reader's span in its sentence, used when the generated text does not agree with the evidence; or, for a
    question about what the documents say, the sentences of the passages it is about) or ``declined``.
    ``confidence`` is the calibrated probability (0-1) that the answer is right.
    """

    question: str
    text: str
    citations: list[Citation]
    documents: list[Hit]
    entities: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    declined: bool = False
    grounded: bool = True
    evidence: list[Evidence] = field(default_factory=list)
    confidence: float = 0.0
    mode: str = "generated"

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.text,
                "citations": [c.to_dict() for c in self.citations],
                "documents": [h.to_dict() for h in self.documents], "entities": self.entities,
                "timings": self.timings, "declined": self.declined, "grounded": self.grounded,
                "evidence": [e.to_dict() for e in self.evidence], "confidence": self.confidence,
                "mode": self.mode}


@dataclass
class Summary:
    source: str
    text: str
    backend: str
    model: str
    parts: int = 1
    seconds: float = 0.0
    sentences: list[dict[str, Any]] = field(default_factory=list)  # extractive: {"text", "page", "chunk_id"}
    unsupported: list[str] = field(default_factory=list)  # numbers/names of the summary not in the document

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EntityCount:
    label: str
    text: str
    count: int
    sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnswerStream:
    """Iterate to receive answer tokens as they are generated; ``.answer`` holds the final Answer after.

    ``stop()`` abandons the answer: the generator stops at its next token (or before it starts, when it
    waits for another answer), the iteration ends and ``.answer`` stays None; ``.stopped`` is then True.
    """

    def __init__(self, start: Callable[[Callable[[Any], None], threading.Event], Answer]) -> None:
        self._q: queue.Queue = queue.Queue()
        self.answer: Answer | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()

        def work() -> None:
            try:
                self.answer = start(lambda chunk: self._q.put(chunk.content), self._stop)
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                self._error = e
            finally:
                self._q.put(None)

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Abandon the answer (idempotent); the worker thread ends at its next token."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def __iter__(self) -> Iterator[str]:
        from rag.errors import AnswerStopped

        while True:
            tok = self._q.get()
            if tok is None:
                break
            if tok:
                yield tok
        self._thread.join()
        if self._error and not isinstance(self._error, AnswerStopped):
            raise self._error


SHEET_TYPES = (".xlsx", ".xls", ".csv", ".tsv", ".ods")
SLIDE_TYPES = (".pptx", ".ppt", ".odp")


def page_unit(source: str) -> str:
    """What a document's pages are called: ``sheet`` (spreadsheets), ``slide`` (presentations) or ``page``."""
    ext = Path(source).suffix.lower()
    return "sheet" if ext in SHEET_TYPES else "slide" if ext in SLIDE_TYPES else "page"


def page_label(page: int | None, pages: list[int] | None = None, source: str = "") -> str:
    """``page 3``, ``pages 1–3``; spreadsheets count sheets and presentations slides, not pages; ``no page`` for
    documents without pages (e-mail, text, web pages). The one label of a hit's or citation's place (CLI, UI)."""
    pages = sorted(set(pages or ([page] if page else [])))
    unit = page_unit(source)
    if not pages:
        return "whole document" if unit == "sheet" else "no page"
    if len(pages) == 1:
        return f"{unit} {pages[0]}"
    return f"{unit}s {pages[0]}–{pages[-1]}"
