"""Is a summary faithful to its document? Every number and name it writes must occur in the document.

Abstractive summaries (T5, a GGUF model) can invent facts ("150-foot runway" for a report that says
1,500 ft); :func:`unsupported_facts` lists what the document does not back, and ``DocRAG.summarize`` puts
that list on the ``Summary`` so the app flags it. An extractive summary always gives ``[]``.

```python
unsupported_facts("A 150-foot runway near Denver.", "The runway is 1,500 ft long, near Denver.")  # ['150']
```
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_NAME = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:of|the|and|de|&)?\s*[A-Z][\w'’\-]*)*")
_WORD = re.compile(r"[\w'’\-]+")
_STOP = frozenset({"the", "a", "an", "this", "that", "these", "those", "it", "its", "he", "she", "they", "we",
                   "i", "in", "on", "at", "of", "and", "or", "but", "for", "to", "by", "with", "as", "after",
                   "before", "during", "while", "when", "there", "here", "his", "her", "their", "our", "no",
                   # sentence openers a summary writes with a capital: no names
                   "additionally", "also", "however", "overall", "furthermore", "moreover", "finally", "meanwhile",
                   "thus", "therefore", "instead", "today", "yesterday", "according"})


def _name_words(name: str) -> list[str]:
    """The words of a name that must occur in the document: possessives cut ("NTSB's" -> "NTSB"), stop words
    dropped (a sentence-initial "It's" or "The" is no name)."""
    words = (re.sub(r"['’]s$", "", w) for w in _WORD.findall(name))
    return [w for w in words if w and w.lower() not in _STOP]


def _numbers(text: str) -> set[str]:
    return {m.group(0).replace(",", "").rstrip(".").lstrip("0") or "0" for m in _NUMBER.finditer(text)}


def facts(summary: str) -> list[str]:
    """The numbers and capitalised names a summary states (first seen first): what :func:`unsupported_facts`
    checks, and the denominator of the unsupported share (``evals.summary_support``)."""
    out: list[str] = []
    for m in _NUMBER.finditer(summary):
        number = m.group(0).rstrip(".,")  # "Title 24, which" -> "24"
        if number not in out:
            out.append(number)
    for m in _NAME.finditer(summary):
        if _name_words(m.group(0)) and m.group(0) not in out:
            out.append(m.group(0))
    return out


def unsupported_facts(summary: str, document: str) -> list[str]:
    """Numbers and capitalised names of ``summary`` that ``document`` does not contain (first seen first).

    Numbers compare without thousands separators (``1,500`` == ``1500``); a name is backed when each of its
    words occurs in the document (case-insensitive), so "Federal Aviation Administration" needs all three.
    """
    doc_numbers = _numbers(document)
    doc_words = {w.lower() for w in _WORD.findall(document)}

    def backed(fact: str) -> bool:
        if _NUMBER.fullmatch(fact):
            return (fact.replace(",", "").lstrip("0") or "0") in doc_numbers
        return all(w.lower() in doc_words or f"{w.lower()}'s" in doc_words for w in _name_words(fact))

    return [f for f in facts(summary) if not backed(f)]
