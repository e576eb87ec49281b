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
