"""Answer-text normalisation shared by the answer checks at run time and the SQuAD metrics of the evals."""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
CITATION_MARK = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def strip_citations(text: str) -> str:
    return CITATION_MARK.sub("", text).strip()


# sentence ends: . ! ? followed by space + capital/digit/quote, or a line break; keeps "U.S." and "1.5" whole
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n{1,}")
_ABBREV = re.compile(r"(?:\b[A-Z][a-z]{0,3}|\b[A-Z](?:\.[A-Z])*|\bNo|\bvs|\betc|\be\.g|\bi\.e)\.$")


def split_sentences(text: str) -> list[tuple[int, str]]:
    """``(offset, sentence)`` pairs of ``text``; does not split after short abbreviations ("Mr.", "U.S.")."""
    out: list[tuple[int, str]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        piece = text[start:m.end()].strip()
        if m.group(0).startswith("\n") or not _ABBREV.search(text[start:m.start()].rstrip()):
            if piece:
                out.append((start, piece))
            start = m.end()
    if text[start:].strip():
        out.append((start, text[start:].strip()))
    return out
