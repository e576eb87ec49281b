"""Questions that name a reporting period ("Q3 2022", "fiscal 2021") or a relative one ("the latest quarterly
report", "the previous quarter"), resolved against the stored document dates (chunk meta ``doc_date``, set at
ingest by ``ingest.context``).

- :func:`period_ask` reads the question: an explicit period through ``ingest.context.find_period`` (the one
  parser of periods; a quarter dates to its last day, so "Q3 2022" and "quarter ended September 30, 2022" are
  the same filing), a lone year, or the words latest / most recent / newest / last, previous / prior,
  earliest / oldest / first, when they qualify a period word (report, filing, quarter, results, ...).
- :func:`choose_sources` picks, from the first-stage candidates of the question, the stored documents it means:
  for a relative ask, the documents of the top candidate's family (same company/author, else the same title
  with its period words removed) with the latest (previous, earliest) date among that family's candidates; for
  an explicit date, the candidates dated so; for a year, those dated in it and those whose candidate chunk
  names it (another year's filing reports it in its comparison columns).
- :func:`restrict` turns the chosen sources into a retrieval filter, and-ed with the caller's.

``DocRAG.search`` and ``DocRAG.ask`` apply it before their graph runs (one extra first-stage pass, only for
questions with a period); a question without one, or whose candidates carry no dates, is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingest.context import find_period

_LATEST = re.compile(r"\b(latest|most\s+recent|newest|last)\b", re.IGNORECASE)  # not "current" (assets)
_PREVIOUS = re.compile(r"\b(previous|prior|preceding|second[- ]to[- ]last|penultimate)\b", re.IGNORECASE)
_EARLIEST = re.compile(r"\b(earliest|oldest|first)\b", re.IGNORECASE)
# what a relative word must qualify to count as a period ask ("the last question" is not one)
_PERIOD_NOUN = re.compile(r"\b(quarter|quarterly|report|filing|filings|statement|statements|period|results|"
                          r"10-?q|10-?k|annual|half[- ]year|fiscal\s+year|year|edition|version|release)\b",
                          re.IGNORECASE)
_ORDINAL_QUARTER = re.compile(r"\b(first|second|third|fourth)\s+(quarter|half)\b(?!ly)", re.IGNORECASE)
_LONE_YEAR = re.compile(r"^(?:19|20)\d\d$")
_FAMILY_NOISE = re.compile(
    r"\b(q[1-4]|h[12]|fy\s?\d{2,4}|(?:19|20)\d\d|first|second|third|fourth|quarter(?:ly)?|half[- ]year|annual|"
    r"fiscal|year|report|results|ended|ending|for|the|of|three|six|nine|twelve|months|"
    r"january|february|march|april|may|june|july|august|september|october|november|december|\d{1,2})\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class PeriodAsk:
    """What period a question asks for: ``kind`` is ``latest`` | ``previous`` | ``earliest`` (relative to the
    stored dates), ``date`` (an ISO date: a quarter, half, fiscal year end or a day) or ``year``."""

    kind: str
    label: str = ""
    iso: str = ""


def period_ask(question: str) -> PeriodAsk | None:
    """The period ``question`` asks for, or None.

    >>> period_ask("What was the gross margin in Q3 2022?")
    PeriodAsk(kind='date', label='Q3 2022', iso='2022-09-30')
    >>> period_ask("Gross margin in the latest quarterly report?").kind
    'latest'
    """
    text = " ".join(question.split())
    label, iso = find_period(text)
    if iso:
        if _LONE_YEAR.match(label) or label.startswith("FY"):  # a fiscal year need not end in December
            return PeriodAsk("year", label, iso[:4])
        return PeriodAsk("date", label, iso)
    text = _ORDINAL_QUARTER.sub(" ", text)  # "first quarter" names a quarter, not the earliest filing
    if not _PERIOD_NOUN.search(text):
        return None
    for kind, pattern in (("previous", _PREVIOUS), ("latest", _LATEST), ("earliest", _EARLIEST)):
        if m := pattern.search(text):
            return PeriodAsk(kind, m.group(1).lower())
    return None


def _meta(doc: Any) -> dict[str, Any]:
    return doc.meta if hasattr(doc, "meta") else dict(doc)


def family(meta: dict[str, Any]) -> str:
    """The series a document belongs to (the filings of one company): its author/company, else its title or
    file name with period words, dates and numbers removed (lower case)."""
    if meta.get("doc_author"):
        return " ".join(str(meta["doc_author"]).lower().split())
    base = str(meta.get("doc_title") or "") or re.sub(r"\.[A-Za-z0-9]+$", "", str(meta.get("file_name") or ""))
    base = re.sub(r"[\W_]+", " ", base)
    return " ".join(_FAMILY_NOISE.sub(" ", base).lower().split())


def _dated(meta: dict[str, Any]) -> bool:
    """A document whose date names its reporting period: a file (dataset records get their "date" from the
    first year their text mentions) whose period is more than a bare year found in its text."""
    period = str(meta.get("doc_period") or "")
    return bool(meta.get("source") and meta.get("doc_date") and meta.get("file_type") != "record"
                and not _LONE_YEAR.match(period))


def choose_sources(ask: PeriodAsk, candidates: Sequence[Any]) -> list[str]:
    """Stored sources the question means, from its first-stage candidates (best first; Documents or meta
    dicts with ``source`` and ``doc_date``). Only files dated by a reporting period or a full date count (not
    dataset records, nor a bare year taken from the text); empty when none is (then nothing is restricted)."""
    dated = [(m["source"], str(m["doc_date"]), family(m)) for m in map(_meta, candidates) if _dated(m)]
    if not dated:
        return []
    if ask.kind == "date":
        return list(dict.fromkeys(s for s, d, _ in dated if d[:10] == ask.iso[:10]))
    if ask.kind == "year":
        # a filing of another year reports this one too (the prior-year columns of a comparison table), so a
        # candidate whose own text names the year keeps its document
        year = ask.iso[:4]
        names_year = re.compile(rf"\b{year}\b")
        keep = []
        for c in candidates:
            m = _meta(c)
            dated_in_year = _dated(m) and str(m["doc_date"])[:4] == year
            if m.get("source") and (dated_in_year or names_year.search(getattr(c, "content", None) or "")):
                keep.append(m["source"])
        return list(dict.fromkeys(keep))
    fam = dated[0][2]  # the family of the best dated candidate
    dates = sorted({d for _, d, f in dated if f == fam}, reverse=ask.kind != "earliest")
    pick = 1 if ask.kind == "previous" else 0
    if pick >= len(dates):
        return []
    return list(dict.fromkeys(s for s, d, f in dated if f == fam and d == dates[pick]))


def restrict(filters: dict[str, Any] | None, sources: Sequence[str]) -> dict[str, Any] | None:
    """``filters`` and-ed with "the chunk belongs to one of ``sources``" (Haystack filter syntax)."""
    from ingest.store.filters import and_

    if not sources:
        return filters
    return and_(filters, {"field": "meta.source", "operator": "in", "value": list(sources)})
