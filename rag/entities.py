"""Entities that mean something: ONE key normaliser, one label scheme, and the checks that drop noise.

Every place that builds or compares an entity key (the extractor's ``meta["entity_keys"]``, the ``entity``
filter, ``DocRAG.entities()``, the app's Analysis page) goes through :func:`entity_key` /
:func:`normalize_text`, so ``"U.S.C."``, ``"U. S. C."`` and ``"u.s.c"`` are one entity.

```python
entity_key("org", "  Nestlé  Health Science ")   # 'ORG:nestlé health science'
canonical_label("PER")                             # 'PERSON'  (CoNLL, OntoNotes/spaCy -> one scheme)
clean_entities("See 49 U.S.C. 1154 on 5 May 2007 at 14:30.", raw)  # drops "S", "1154", "14:30" as DATE
entity_years("March 3, 2007")                      # [2007]; entity_years("1,500 feet") -> []
```
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Any

from ingest.entity_keys import (  # noqa: F401 - the key normaliser is re-exported here
    _DOTTED,
    _WS,
    LABEL_MAP,
    canonical_label,
    entity_key,
    normalize_text,
    parse_key,
)

NAME_LABELS = frozenset({"PERSON", "ORG", "LOC", "GPE", "MISC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART",
                         "LAW", "LANGUAGE"})
NUMERIC_LABELS = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "TIME"})

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_MONTH = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")[a-z]*\.?\b", re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\b", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\d,.$])(1[6-9]\d\d|20\d\d|2100)(?![\d,])")
_NUMERIC_DATE = re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b")
_RELATIVE = re.compile(r"\b(?:today|yesterday|tomorrow|century|decade|years?|months?|weeks?|days?|quarter|"
                       r"annual(?:ly)?|fiscal|spring|summer|autumn|fall|winter|q[1-4]|h[12]|\d{4}s)\b",
                       re.IGNORECASE)
_CLOCK = re.compile(r"^\s*\d{1,2}[:h.]\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?|hours?|local|utc|est|cst|pst|edt)?\s*$",
                    re.IGNORECASE)
_AMOUNT = re.compile(r"^[\s$€£%+\-.,\d]+$")
_HAS_LETTER = re.compile(r"[^\W\d_]")
BARE_YEAR_MAX = 2035  # a lone "2068" in a report is a figure, not a year
# a generic classifier or a document part and its number: no name, though written with a capital
_REFERENCE = re.compile(
    r"(?:Appendix|Annex|Article|Box|Case|Category|Chapter|Class|Clause|Column|Exhibit|Fig\.?|Figure|Grade|Group|"
    r"Item|Level|Line|No\.?|Note|Option|Page|Paragraph|Part|Phase|Question|Room|Row|Schedule|Section|Sheet|Stage|"
    r"Step|Table|Tier|Type|Unit|Vol\.?|Volume|Zone)\s+(?:\d+[A-Za-z]?|[IVXLC]+|[A-Z])")
# the kind of a document ("Final Report", "Quarterly Report", "Incident Report Form"): a MISC made only of
# qualifiers that say what a document is, then its kind
_DOC_QUALIFIERS = ("Accident|Annual|Application|Audit|Aviation|Claim|Expense|Factual|Final|Financial|Half-Year|"
                   "Incident|Inspection|Interim|Investigation|Monthly|Preliminary|Progress|Quarterly|Registration|"
                   "Safety|Status|Summary|Weekly")
_DOCUMENT_KIND = re.compile(rf"(?:(?:{_DOC_QUALIFIERS})\s+)+(?:Report|Form|Statement|Summary|Checklist|Worksheet)"
                            r"(?:\s+Form)?")


def display_text(text: str) -> str:
    """The shown form: whitespace collapsed, dotted abbreviations joined, outer punctuation stripped."""
    t = unicodedata.normalize("NFKC", str(text))
    t = _DOTTED.sub(lambda m: m.group(0).replace(" ", ""), t)
    return _WS.sub(" ", t).strip().strip(",;:()[]{}\"'“”‘’").strip()


def is_real_date(text: str) -> bool:
    """True for a calendar reference (a year, a month, a weekday, 5/12/2007, "last year"), False for clock
    times, bare amounts ("1,500", "$3"), implausible bare years ("2068" in a sales table) and numbers a NER
    model calls DATE. Numeric dates are parsed with ``dateparser`` ("12/45/99" is no date)."""
    t = display_text(text)
    if not t or _CLOCK.match(t):
        return False
    bare = re.fullmatch(r"(?:fy\s?)?(\d{4})s?", t, flags=re.IGNORECASE)
    if bare:
        return 1800 <= int(bare.group(1)) <= BARE_YEAR_MAX
    if _MONTH.search(t) or _WEEKDAY.search(t) or _YEAR.search(t):
        return True
    if _NUMERIC_DATE.search(t):
        return _parse_date(_NUMERIC_DATE.search(t).group(0), require_year=False) is not None
    if _AMOUNT.match(t):
        return False
    return bool(_RELATIVE.search(t))


def entity_years(text: str) -> list[int]:
    """The calendar years a DATE writes ("January 5, 2023" -> [2023]; "2021-2023" -> [2021, 2023]); [] for
    what is no real date, and for dates without a year."""
    t = display_text(text)
    if not is_real_date(t):
        return []
    years = {int(y) for y in _YEAR.findall(t)}
    if not years and _NUMERIC_DATE.search(t):
        parsed = _parse_date(_NUMERIC_DATE.search(t).group(0), require_year=True)
        years = {parsed.year} if parsed is not None else set()
    return sorted(years)


@lru_cache(maxsize=4096)
def _parse_date(text: str, require_year: bool) -> Any:
    try:
        import dateparser
    except ImportError:  # pragma: no cover - a pinned dependency
        return None
    settings: dict[str, Any] = {"PREFER_DAY_OF_MONTH": "first"}
    if require_year:
        settings["REQUIRE_PARTS"] = ["year"]
    try:
        return dateparser.parse(text, languages=["en"], settings=settings)
    except Exception:  # noqa: BLE001 - a date we cannot read is not a date we plot
        return None


def is_nonsense(label: str, text: str) -> bool:
    """An entity no reader would call one: a single character, a pure number or code as a name, a word piece
    (``##ing``), a name without letters, a DATE that is no calendar date."""
    label = canonical_label(label)
    t = display_text(text)
    if not t or t.startswith("##") or "##" in t:
        return True
    letters = _HAS_LETTER.findall(t)
    if label in NAME_LABELS:
        if len(letters) < 2 or len(t.replace(".", "").replace(" ", "")) < 2:
            return True
        if re.fullmatch(r"[\W\d_]*\d[\W\d_]*", t):  # digits and punctuation only
            return True
        if re.fullmatch(r"[A-Z]{1,4}\s?\d{2,}[A-Z0-9]*", t):  # flight numbers, case codes: "AA 1420", "NYC08CA055"
            return True
        if "|" in t:  # a run of table cells
            return True
        if _REFERENCE.fullmatch(t):  # "Class 3", "Section 4", "Table II": a class or a place in the document
            return True
        if label == "MISC" and _DOCUMENT_KIND.fullmatch(t):  # "Aviation Accident Final Report": what a form is
            return True
        if not any(c.isupper() for c in t):  # "daytoday", "et seq", "g&t": names are written with capitals
            return True
        return any(w[:1].islower() and w not in _CONNECT
                   and w not in {"de", "la", "von", "van", "der", "du", "the"}
                   and not any(c.isupper() for c in w) for w in t.split()[1:])  # "Lorem ipsum"
    if label == "DATE":
        return not is_real_date(t)
    return False


def merge_pieces(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join entities the tokenizer split: word pieces of one word (no space between them) and the letters of a
    dotted abbreviation ("U" "." "S" "." "C" "." -> "U.S.C."), when the labels agree."""
    out: list[dict[str, Any]] = []
    for e in sorted(entities, key=lambda e: (e["start"], e["end"])):
        if out:
            prev = out[-1]
            gap = text[prev["end"]:e["start"]] if e["start"] >= prev["end"] else ""
            same = canonical_label(prev["label"]) == canonical_label(e["label"])
            joins = (same and canonical_label(e["label"]) == "DATE" and gap in {", ", " ", ","}) or gap == "" or (gap.strip() in {".", "-", "&", "'"} and " " not in gap) or \
                (gap == " " and text[prev["end"] - 1:prev["end"]] == "." and len(text[e["start"]:e["end"]]) <= 2)
            if same and (joins or e["start"] < prev["end"]):  # adjacent pieces, or spans that overlap
                prev["end"] = max(prev["end"], e["end"])
                prev["text"] = text[prev["start"]:prev["end"]]
                continue
        out.append(dict(e))
    return out


def extend_to_word(text: str, e: dict[str, Any]) -> dict[str, Any]:
    """Widen a span that stops inside a word (or before an abbreviation's final dot) to the whole word."""
    s, t = e["start"], e["end"]
    while s > 0 and (text[s - 1].isalnum()):
        s -= 1
    while t < len(text) and text[t].isalnum():
        t += 1
    while True:
        if t < len(text) and text[t] == "." and re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", text[s:t].split()[-1] if
                                                            text[s:t].split() else ""):
            t += 1  # "U.S" -> "U.S."
        elif re.match(r"[A-Za-z]\.", text[t:t + 2]) and text[t - 1:t] == "." and \
                re.fullmatch(r"(?:[A-Za-z]\.)+", text[s:t].split()[-1] if text[s:t].split() else ""):
            t += 2  # "U.S." -> "U.S.C."
        elif re.match(r"-[A-Za-z0-9]", text[t:t + 2]) and text[t - 1:t].isalnum() and e.get("label") != "DATE":
            t += 1  # "PA" -> "PA-22-150"
            while t < len(text) and text[t].isalnum():
                t += 1
        else:
            break
    return {**e, "start": s, "end": t, "text": text[s:t]}


_CAP_WORD = re.compile(r"[A-Z][\w&'’\-]*$")
_LEAD_STOP = frozenset({"The", "A", "An", "In", "On", "At", "Of", "For", "By", "To", "And", "Or", "From", "With"})


_CONNECT = ("of", "and", "for", "&")
# what follows the last word of a form field's label ("Aircraft Category: Airplane", "Certificate(s) Held:"), or
# the rest of a label that counts its values ("Operating Certificate(s)", wrapped onto the next line before its ":")
_FIELD_LABEL = re.compile(r"(?:\(s\))?(?:[ \t][A-Z][\w/()\-]*){0,2}[ \t]?:(?:\s|$)|(?:[ \t][A-Z][\w\-]*){0,2}\(s\)")
# the head nouns that make a name an organisation ("United States Trustee Program", "Record Management Division")
ORG_HEADS = frozenset({"Administration", "Agency", "Association", "Authority", "Bank", "Board", "Bureau",
                       "Commission", "Committee", "Company", "Corporation", "Council", "Court", "Department",
                       "Division", "Foundation", "Inc", "Institute", "Ltd", "Ministry", "Office", "Program",
                       "Programme", "Service", "Society", "University"})
_PERSON_SHAPE = re.compile(r"[A-Z][a-z]+ [A-Z]\.? [A-Z][a-z]+")  # "Willis O Forman", "Robert J. Gretz"


def relabel(e: dict[str, Any]) -> dict[str, Any]:
    """Labels the words settle: a first name, an initial and a surname is a PERSON; a MISC whose last word is an
    organisation's head noun is an ORG."""
    t = e["text"]
    if e["label"] in {"ORG", "MISC", "LOC", "GPE"} and _PERSON_SHAPE.fullmatch(t):
        return {**e, "label": "PERSON"}
    if e["label"] == "MISC" and t.split() and t.split()[-1] in ORG_HEADS and len(t.split()) > 1:
        return {**e, "label": "ORG"}
    return e


def extend_name(text: str, e: dict[str, Any], taken: list[tuple[int, int]] | None = None,
                max_words: int = 3) -> dict[str, Any]:
    """An ORG/MISC that is a piece of a longer capitalised name on its line grows to the whole name: "Science"
    in "Nestlé Health Science", "Reform Act" in "Bankruptcy Reform Act", "Federal Rules of" + "Bankruptcy
    Procedure"; a DATE "January" in "January–June" takes the range."""
    if e["label"] == "DATE":
        m = re.match(r"\s?[–-]\s?(?:" + "|".join(_MONTHS) + r")[a-z]*", text[e["end"]:],
                     flags=re.IGNORECASE)
        s, t = e["start"], e["end"] + (m.end() if m else 0)
        b = re.search(r"\b(?:" + "|".join(_MONTHS) + r")[a-z]*\s?[–-]\s?$", text[max(0, s - 16):s], flags=re.IGNORECASE)
        s -= len(b.group(0)) if b else 0  # "January–[June 2022]" -> the whole range
        return e if (s, t) == (e["start"], e["end"]) else {**e, "start": s, "end": t, "text": text[s:t]}
    if e["label"] not in {"ORG", "MISC"}:
        return e
    s, t = e["start"], e["end"]
    others = [(a, b) for a, b in (taken or []) if (a, b) != (e["start"], e["end"])]

    def free(word: str, a: int, b: int) -> bool:  # a Capitalised word no other entity holds, not SHOUTED text
        return word not in _LEAD_STOP and not (word.isupper() and len(word) > 1) and \
            not any(a < y and x < b for x, y in others)

    for _ in range(max_words):  # to the left: "Word " or "Word of " before the span
        m = re.search(r"([A-Z][\w&'’\-]*) (?:(?:of|and|for|&) )?$", text[max(0, s - 60):s])
        if not m or not free(m.group(1), s - len(m.group(0)), s):
            break
        s -= len(m.group(0))
    for _ in range(max_words):  # to the right: " Word" or " of Word", not the next form field's label
        m = re.match(r" (?:of )?([A-Z][\w&'’\-]*)", text[t:])
        if not m or not free(m.group(1), t, t + m.end()) or _FIELD_LABEL.match(text, t + m.end()):
            break
        t += m.end()
    if text[s:t].split()[-1] in _CONNECT:  # a dangling "Federal Rules of"
        t = s + len(text[s:t].rsplit(" ", 1)[0])
    return e if (s, t) == (e["start"], e["end"]) else {**e, "start": s, "end": t, "text": text[s:t]}


def _in_context_noise(text: str, e: dict[str, Any]) -> bool:
    """Noise that only the surrounding text shows: a bare number tagged DATE in a table row (a figure), a
    capitalised word that begins a form field's label (not after a ``:``, where a value stands), and a one-word
    MISC/LOC that the same text also writes in lower case (a common word: "Information", "General")."""
    t = display_text(e["text"])
    line_start = text.rfind("\n", 0, e["start"]) + 1
    line_end = text.find("\n", e["end"])
    line = text[line_start: line_end if line_end >= 0 else len(text)]
    if e["label"] == "DATE" and re.fullmatch(r"\d{4}", t) and ("|" in line or re.match(
            r"\s?(?:lbs?|kg|ft|feet|hours?|hrs?|miles?|km|m|inch(?:es)?|units?|tons?|%)\b", text[e["end"]:],
            re.IGNORECASE)):
        return True
    if e["label"] in NAME_LABELS and re.fullmatch(r"[A-Z][a-z]+", t) and \
            re.match(r"[ \t][A-Z]", text[e["end"]:e["end"] + 2]) and _FIELD_LABEL.match(text, e["end"]) and \
            not re.search(r":[ \t]*$", text[max(0, e["start"] - 3):e["start"]]):
        return True  # the first word of a form field's label ("... / Altimeter Setting: 30.27"), not a value
    return e["label"] in {"MISC", "LOC"} and " " not in t and t[:1].isupper() and t[1:].islower() and \
        re.search(rf"\b{re.escape(t.lower())}\b", text) is not None


def trim_to_cell(text: str, e: dict[str, Any]) -> dict[str, Any]:
    """An entity ends at its table cell (``|``); a date or number also at its line and before a ``: value``
    ("January–June 2022: 7683", "June 2023\nZone", "757 | Net")."""
    stops = r"\s\|" if e["label"] in NAME_LABELS else r"\s?\||\n|:\s"
    cut = re.search(stops, e["text"])
    if not cut:
        return e
    t = e["start"] + len(e["text"][:cut.start()].rstrip())
    return {**e, "end": t, "text": text[e["start"]:t]}


# "49 U.S.C. Section 1154(b)", "28 C.F.R. § 58.6(a)(3)", "11 U.S.C. §§ 101-1532": a statute cited by its code
_CITATION = re.compile(r"\b\d{1,3}\s+(?:[A-Z]\.){2,}(?:[A-Z]\.?)?\s*(?:§§?|[Ss]ections?|[Ss]ec\.)\s*"
                       r"\d+(?:\.\d+)*[a-z]?(?:\([a-z0-9]{1,4}\))*(?:\s?[–-]\s?\d+(?:\.\d+)*)?")


def legal_citations(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statute citations as one LAW entity each, replacing the pieces a NER model makes of them ("U.S.C." as a
    place, "C. Section" as MISC)."""
    found = [{"text": m.group(0), "label": "LAW", "start": m.start(), "end": m.end()}
             for m in _CITATION.finditer(text)]
    if not found:
        return entities
    kept = [e for e in entities if not any(e["start"] < c["end"] and c["start"] < e["end"] for c in found)]
    return sorted(kept + found, key=lambda e: (e["start"], e["end"]))


def join_heads(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One or two capitalised words tagged ORG/MISC right after another name are that name's head: "United States"
    + "Code" is "United States Code", "Independent Safety Board" + "Act" one act (the head's label wins)."""
    out: list[dict[str, Any]] = []
    for e in entities:
        prev = out[-1] if out else None
        word = e["text"]
        if prev is not None and e["label"] in {"ORG", "MISC"} and prev["label"] in NAME_LABELS and \
                text[prev["end"]:e["start"]] == " " and re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z]+)?", word) and \
                not prev["text"].isupper() and not _FIELD_LABEL.match(text, e["end"]):
            out[-1] = {**e, "start": prev["start"], "text": text[prev["start"]:e["end"]]}
            continue
        out.append(e)
    return out


def vote_labels(documents: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """One label per name across the chunks of one document: each name takes the label most of its mentions have
    (ties: the first seen), so "Nestlé Health Science" is not an ORG in one table row and MISC in the next.
    Dates and numbers keep theirs."""
    votes: dict[str, Counter[str]] = {}
    for ents in documents:
        for e in ents:
            if e["label"] in NAME_LABELS:
                votes.setdefault(normalize_text(e["text"]), Counter())[e["label"]] += 1
    best = {k: c.most_common(1)[0][0] for k, c in votes.items()}
    return [[{**e, "label": best[normalize_text(e["text"])]} if e["label"] in NAME_LABELS else e for e in ents]
            for ents in documents]


def clean_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The extractor's last step: one label scheme, whole words, split pieces merged, statute citations whole,
    dates cut at their cell, nonsense dropped."""
    spans = [extend_to_word(text, {**e, "label": canonical_label(e["label"])}) for e in entities]
    taken = [(e["start"], e["end"]) for e in spans]
    merged = [extend_to_word(text, e) for e in merge_pieces(text, [extend_name(text, e, taken) for e in spans])]
    merged = join_heads(text, legal_citations(text, [trim_to_cell(text, e) for e in merge_pieces(text, merged)]))
    merged = [relabel(e) for e in merged]
    out = []
    for e in merged:
        if is_nonsense(e["label"], display_text(e["text"])) or _in_context_noise(text, e):
            continue
        out.append(e)
    return out
