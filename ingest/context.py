"""Document context for contextual chunk headers: title, author/company, date or period, file name.

Every chunk carries a one-line header (meta ``context``) built by :func:`context_header` from its document's
context and its section path. That header is what the dense embedder, the BM25 sparse embedder and the
cross-encoder see in front of the chunk text (:func:`embedded_text`, the same ``"\\n"`` join as Haystack's
``meta_fields_to_embed``), and what the prompt shows the reader. Training (``rag.training``) builds its
passages with the same two functions, so the reranker is trained on the text the graph reranks.

The document context comes from the parser's metadata when present (``doc_title``, ``doc_author``,
``doc_date``) and otherwise from the first page: the first Title element, a date or reporting period
("June 30, 2022", "Q3 2022", "fiscal year 2021"), found by :func:`find_period`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

SEPARATOR = " · "
CONTEXT_FIELD = "context"  # chunk meta key of the header; the graph embeds it in front of the content
DOC_FIELDS = ("doc_title", "doc_author", "doc_date", "doc_period")

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_MONTH_NUM = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], 1)}
_DATE = re.compile(rf"\b({_MONTHS})\.?\s+(\d{{1,2}}),?\s+((?:19|20)\d\d)\b", re.IGNORECASE)
_ISO = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
_QUARTER = re.compile(r"\b(?:Q([1-4])|(first|second|third|fourth)\s+quarter)\s*(?:of\s+)?(?:fiscal\s+)?"
                      r"((?:19|20)\d\d)\b", re.IGNORECASE)
_HALF = re.compile(r"\b(?:H([12])|(first|second)\s+half(?:[- ]year)?)\s*(?:of\s+)?((?:19|20)\d\d)\b",
                   re.IGNORECASE)
_YEAR_HALF = re.compile(r"\b((?:19|20)\d\d)\s+(?:first\s+)?half[- ]year", re.IGNORECASE)
_FISCAL = re.compile(r"\b(?:fiscal\s+(?:year\s+)?|FY\s?)((?:19|20)\d\d)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4}


def find_period(text: str) -> tuple[str, str]:
    """The first reporting period and date named in ``text``: ``(period label, ISO date)``, either may be ``""``.

    ``"for the quarter ended June 30, 2022"`` -> ``("June 30, 2022", "2022-06-30")``; ``"Q3 2022"`` ->
    ``("Q3 2022", "2022-09-30")`` (a quarter dates to its last day); ``"2023 half-year"`` ->
    ``("H1 2023", "2023-06-30")``; a lone year ``2021`` -> ``("2021", "2021-12-31")``.
    """
    text = " ".join(text.split())
    found: list[tuple[int, str, str]] = []
    if m := _DATE.search(text):
        mon = m.group(1).lower().rstrip(".")
        num = next(v for k, v in _MONTH_NUM.items() if k.startswith(mon[:3]))
        found.append((m.start(), f"{m.group(1).title()} {int(m.group(2))}, {m.group(3)}",
                      f"{m.group(3)}-{num:02d}-{int(m.group(2)):02d}"))
    if m := _ISO.search(text):
        found.append((m.start(), m.group(0), m.group(0)))
    if m := _QUARTER.search(text):
        q = int(m.group(1) or _ORD[m.group(2).lower()])
        end = {1: "03-31", 2: "06-30", 3: "09-30", 4: "12-31"}[q]
        found.append((m.start(), f"Q{q} {m.group(3)}", f"{m.group(3)}-{end}"))
    if m := _HALF.search(text):
        h = int(m.group(1) or _ORD[m.group(2).lower()])
        found.append((m.start(), f"H{h} {m.group(3)}", f"{m.group(3)}-{'06-30' if h == 1 else '12-31'}"))
    if m := _YEAR_HALF.search(text):  # "2023 half-year": the first half
        found.append((m.start(), f"H1 {m.group(1)}", f"{m.group(1)}-06-30"))
    if m := _FISCAL.search(text):
        found.append((m.start(), f"FY {m.group(1)}", f"{m.group(1)}-12-31"))
    if found:
        _, label, iso = min(found)
        return label, iso
    if m := _YEAR.search(text):
        return m.group(1), f"{m.group(1)}-12-31"
    return "", ""


def document_context(elements: Iterable[Any], file_name: str = "") -> dict[str, str]:
    """``doc_title``, ``doc_period`` and ``doc_date`` of one document from its first-page elements.

    Values already in the first element's meta (from the parser or a record) win. ``elements`` are
    Haystack Documents in reading order with ``category`` and ``page_number`` meta.
    """
    els = list(elements)
    meta = dict(els[0].meta) if els else {}
    out = {k: str(meta[k]) for k in DOC_FIELDS if meta.get(k)}
    first = [e for e in els if (e.meta.get("page_number") or 1) == (els[0].meta.get("page_number") or 1)] if els else []
    first = first[:40]
    if "doc_title" not in out:
        title = next((" ".join((e.content or "").split()) for e in first
                      if e.meta.get("category") == "Title" and len((e.content or "").split()) >= 2), "")
        if title:
            out["doc_title"] = title[:160]
    if "doc_date" not in out:
        text = " ".join((e.content or "") for e in first)[:4000]
        label, iso = find_period(f"{text} {PurePath(file_name).stem.replace('-', ' ').replace('_', ' ')}")
        if iso:
            out["doc_date"] = iso
            out.setdefault("doc_period", label)
    return out


def context_header(meta: dict[str, Any]) -> str:
    """One line of document context for a chunk: ``title · author · period · file name · section path``.

    Parts repeated (a section path equal to the title) or absent are left out; dataset records
    (``file_type == "record"``) show no file name, since theirs is an id.
    """
    parts: list[str] = []
    for key in ("doc_title", "doc_author", "doc_period"):
        v = " ".join(str(meta.get(key) or "").split())
        if v:
            parts.append(v)
    if not meta.get("doc_period") and meta.get("doc_date"):
        parts.append(str(meta["doc_date"]))
    if meta.get("file_name") and meta.get("file_type") != "record":
        parts.append(str(meta["file_name"]))
    section = " ".join(str(meta.get("title_path") or "").split())
    if section:
        low = [p.lower() for p in parts]
        section = " > ".join(s for s in section.split(" > ") if s.lower() not in low)
        if section:
            parts.append(section)
    seen: list[str] = []
    for p in parts:
        if p.lower() not in (s.lower() for s in seen):
            seen.append(p)
    return SEPARATOR.join(seen)


def embedded_text(header: str, content: str) -> str:
    """What the embedders and the cross-encoder read for a chunk: header, newline, content.

    Equal to Haystack's ``meta_fields_to_embed=["context"]`` join (``"\\n"``) and to
    ``BM25DocumentSparseEmbedder``'s.
    """
    return f"{header}\n{content}" if header else content


def record_meta(title: str = "") -> dict[str, str]:
    """Document meta of a pre-extracted record (``DocRAG.ingest_records``): its title is the document title."""
    title = " ".join((title or "").split())
    return {"file_type": "record", **({"doc_title": title} if title else {})}


def record_text(title: str, text: str) -> str:
    """The one text of a dataset record, as the graph embeds and reranks it when the record is one chunk."""
    return embedded_text(context_header(record_meta(title)), text.strip())
