"""Structure-aware chunking: element Documents in, chunk Documents out. Pure splitting, no I/O.

Rules, in order:
- a Title closes the current chunk and updates the title path (``A > B > C`` by ``category_depth``);
- a table becomes chunks of its own (``ingest.tables``): each body row keeps its row label and column
  headers (``Zone NA · Sales: 12553 | ...``), parts of at most ``chunk_size // 2`` words (numbers cost many
  word pieces) each start with the table's caption line; a header-only table element lends its rows to the
  table element after it;
- a page change closes the chunk once it holds at least ``chunk_size // 3`` words (citations stay precise);
- text is packed up to ``chunk_size`` words, long elements split at sentence ends, and consecutive chunks of a
  section share ``chunk_overlap`` words.

Each chunk keeps ``source``, ``file_name``, ``file_type``, ``file_hash``, ``page_numbers`` (sorted list),
``page_number`` (first page), ``page_offsets`` (where each page starts in the text, for a chunk over several
pages; :func:`page_at`), ``element_types``, ``title_path``, ``chunk_index`` and ``chunk_count``, the
document context ``doc_title``/``doc_author``/``doc_period``/``doc_date`` (ISO date, when found; see
``ingest.context``) and ``context``: the one-line contextual header (title · author · period · file name ·
section path) that the graph embeds, BM25-indexes and reranks in front of the content. Its id is derived
from (source, file_hash, chunk_index), so re-ingesting the same content gives the same point ids.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from haystack import Document, component

from ingest.context import CONTEXT_FIELD, DOC_FIELDS, context_header, document_context
from ingest.tables import TableContext, table_parts

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_PASSTHROUGH = ("source", "file_name", "file_type", "file_hash", "index_key", "version", "state", "attachment",
                *DOC_FIELDS)


PAGE_OFFSETS = "page_offsets"  # meta of a chunk over several pages: [[character offset, page], ...]


def _page_offsets(texts: list[str], pages: list[int | None]) -> list[list[int]]:
    """``[[offset, page], ...]``: where each page starts in ``"\\n".join(texts)`` (pieces without a page
    continue the page before them)."""
    out: list[list[int]] = []
    pos = 0
    for text, page in zip(texts, pages, strict=True):
        if page is not None and (not out or out[-1][1] != page):
            out.append([pos, page])
        pos += len(text) + 1
    return out


def page_at(meta: dict[str, Any], offset: int) -> int | None:
    """The page of the character at ``offset`` of a chunk's text: the one owner of "which page is this quote
    on" (citations, evidence, summaries). A chunk of one page, or one stored before ``page_offsets`` existed,
    answers its first page."""
    page = meta.get("page_number")
    for at, p in meta.get(PAGE_OFFSETS) or []:
        if at > offset:
            break
        page = p
    return page


def chunk_id(source: str, file_hash: str, index: int) -> str:
    """Deterministic chunk id: the same file content always maps to the same ids."""
    return hashlib.sha256(f"{source}\x00{file_hash}\x00{index}".encode()).hexdigest()


def _split_long(text: str, limit: int) -> list[str]:
    """Split text over ``limit`` words at sentence ends (hard-split sentences that are longer)."""
    parts, cur, n = [], [], 0
    for sent in _SENTENCE_END.split(text):
        words = sent.split()
        while len(words) > limit:
            if cur:
                parts.append(" ".join(cur))
                cur, n = [], 0
            parts.append(" ".join(words[:limit]))
            words = words[limit:]
        if n + len(words) > limit and cur:
            parts.append(" ".join(cur))
            cur, n = [], 0
        cur.extend(words)
        n += len(words)
    if cur:
        parts.append(" ".join(cur))
    return parts


@dataclass
class _Open:
    texts: list[str] = field(default_factory=list)
    text_pages: list[int | None] = field(default_factory=list)  # the page of each piece of ``texts``
    words: int = 0
    pages: set[int] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    last_page: int | None = None
    title_path: str = ""


@component
class ElementChunker:
    """Packs element Documents of each source into chunks that follow the document's structure.

    Usage:
    ```python
    chunks = ElementChunker(chunk_size=180, chunk_overlap=30).run(documents=elements)["documents"]
    ```
    """

    def __init__(self, chunk_size: int = 180, chunk_overlap: int = 30) -> None:
        """
        :param chunk_size: target chunk length in words.
        :param chunk_overlap: words of the previous chunk repeated at the start of the next one in a section.
        """
        if chunk_size < 16:
            raise ValueError(f"chunk_size must be >= 16 words, not {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(f"chunk_overlap must be in [0, chunk_size), not {chunk_overlap}")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """
        :param documents: element Documents in reading order (several sources allowed, grouped by ``source``).
        :returns: chunk Documents.
        """
        by_source: dict[str, list[Document]] = {}
        for d in documents:
            by_source.setdefault(d.meta.get("source", ""), []).append(d)
        out: list[Document] = []
        for elements in by_source.values():
            out.extend(self._chunk_source(elements))
        return {"documents": out}

    def _chunk_source(self, elements: list[Document]) -> list[Document]:
        base = {k: elements[0].meta[k] for k in _PASSTHROUGH if k in elements[0].meta}
        base.update(document_context(elements, str(base.get("file_name", ""))))
        tables = TableContext()
        raw: list[dict[str, Any]] = []
        titles: list[tuple[int, str]] = []
        cur = _Open()
        tail: list[str] = []  # overlap words carried into the next chunk of the same section
        tail_page: int | None = None  # the page those words come from

        def title_path() -> str:
            return " > ".join(t for _, t in titles)

        def emit(is_overlap_source: bool = True) -> None:
            nonlocal cur, tail, tail_page
            if cur.words == 0:
                cur = _Open(last_page=cur.last_page)
                return
            text = "\n".join(cur.texts)
            raw.append({"content": text, "pages": sorted(cur.pages), "types": sorted(cur.types),
                        "title_path": cur.title_path, "page_offsets": _page_offsets(cur.texts, cur.text_pages)})
            words = text.split()
            tail = words[-self.chunk_overlap:] if (self.chunk_overlap and is_overlap_source) else []
            tail_page = cur.text_pages[-1] if cur.text_pages else None
            cur = _Open(last_page=cur.last_page)

        def add(text: str, page: int | None, category: str) -> None:
            nonlocal tail
            n = len(text.split())
            if cur.words and cur.words + n > self.chunk_size:
                emit()
            if cur.words == 0:
                cur.title_path = title_path()
            if cur.words == 0 and tail:
                cur.texts.append(" ".join(tail))
                cur.text_pages.append(tail_page)
                cur.words += len(tail)
                tail = []
            cur.texts.append(text)
            cur.text_pages.append(page)
            cur.words += n
            cur.types.add(category)
            if page is not None:
                cur.pages.add(page)

        for i, el in enumerate(elements):
            text = (el.content or "").strip()
            if not text:
                continue
            cat = el.meta.get("category", "NarrativeText")
            page = el.meta.get("page_number")
            if page is not None and cur.last_page is not None and page != cur.last_page \
                    and cur.words >= self.chunk_size // 3:
                emit()
            if page is not None:
                cur.last_page = page
            if cat == "Title":
                if cur.words >= self.chunk_size // 4:
                    emit()
                tail = []
                depth = el.meta.get("category_depth") or 0
                titles = [t for t in titles if t[0] < depth] + [(depth, " ".join(text.split())[:200])]
                # the title text also starts the next chunk so it is searchable
                add(text, page, cat)
                continue
            if cat == "Table":
                nxt = elements[i + 1] if i + 1 < len(elements) else None
                nxt_text = nxt.content if nxt is not None and nxt.meta.get("category") == "Table" else None
                parts = table_parts(text, tables, max(16, self.chunk_size // 2), next_text=nxt_text,
                                    caption=el.meta.get("sheet", ""))
                if parts:
                    emit()
                    tail = []
                for part in parts:
                    add(part, page, cat)
                    emit(is_overlap_source=False)
                continue
            for part in (_split_long(text, self.chunk_size) if len(text.split()) > self.chunk_size else [text]):
                add(part, page, cat)
        emit()
        raw = self._merge_small(raw)

        count = len(raw)
        fh = base.get("file_hash", "")
        src = base.get("source", "")
        chunks = []
        for i, r in enumerate(raw):
            meta = {**base, "chunk_index": i, "chunk_count": count, "page_numbers": r["pages"],
                    "page_number": r["pages"][0] if r["pages"] else None, "element_types": r["types"],
                    "title_path": r["title_path"]}
            if len(r["page_offsets"]) > 1:  # where each page starts in the text, for the page of a quote
                meta[PAGE_OFFSETS] = r["page_offsets"]
            meta[CONTEXT_FIELD] = context_header(meta)
            # a stored version (ingest.store.library) gets its own ids: writing it never touches the live one
            chunks.append(Document(id=chunk_id(src, base.get("version") or fh, i), content=r["content"], meta=meta))
        return chunks

    def _merge_small(self, raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fold chunks of under 16 words into their predecessor when the result stays within 1.5x size."""
        out: list[dict[str, Any]] = []
        for r in raw:
            if out and len(r["content"].split()) < 16 and "Table" not in r["types"] + out[-1]["types"] and \
                    len(out[-1]["content"].split()) + len(r["content"].split()) <= int(self.chunk_size * 1.5):
                prev = out[-1]
                shift = len(prev["content"]) + 1
                for at, page in r["page_offsets"]:
                    if not prev["page_offsets"] or prev["page_offsets"][-1][1] != page:
                        prev["page_offsets"].append([at + shift, page])
                prev["content"] += "\n" + r["content"]
                prev["pages"] = sorted(set(prev["pages"]) | set(r["pages"]))
                prev["types"] = sorted(set(prev["types"]) | set(r["types"]))
            else:
                out.append(dict(r))
        return out
