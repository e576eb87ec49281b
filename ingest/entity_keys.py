"""Entity keys: the one normaliser of an entity's identity (``"LABEL:normalized text"``) and the label scheme.

It lives in ``ingest`` (the lowest layer) so the store's ``entity`` filter and the extractor's
``meta["entity_keys"]`` use the same function; ``rag.entities`` re-exports it with the noise checks.
"""

from __future__ import annotations

import re
import unicodedata

# One scheme: OntoNotes names (what spaCy gives) with the CoNLL ones mapped onto them.
LABEL_MAP = {"PER": "PERSON", "PERSON": "PERSON", "PERS": "PERSON", "ORG": "ORG", "ORGANIZATION": "ORG",
             "LOC": "LOC", "LOCATION": "LOC", "GPE": "GPE", "MISC": "MISC", "NORP": "NORP", "FAC": "FAC",
             "PRODUCT": "PRODUCT", "EVENT": "EVENT", "WORK_OF_ART": "WORK_OF_ART", "LAW": "LAW",
             "LANGUAGE": "LANGUAGE", "DATE": "DATE", "TIME": "TIME", "PERCENT": "PERCENT", "MONEY": "MONEY",
             "QUANTITY": "QUANTITY", "ORDINAL": "ORDINAL", "CARDINAL": "CARDINAL"}

_WS = re.compile(r"\s+")
_DOTTED = re.compile(r"\b(?:[A-Za-z]\s?\.\s?){2,}")  # U.S.C. / U. S. C. / e.g.


def normalize_text(text: str) -> str:
    """The comparable form of an entity's text: NFKC, dotted abbreviations joined, whitespace collapsed,
    lower-case, outer punctuation stripped (``"U. S. C."`` -> ``"u.s.c."``)."""
    t = unicodedata.normalize("NFKC", str(text))
    t = _DOTTED.sub(lambda m: m.group(0).replace(" ", ""), t)
    t = _WS.sub(" ", t).strip().strip(",;:()[]{}\"'“”‘’").strip()
    return t.lower()


def canonical_label(label: str) -> str:
    """Map a transformers (CoNLL ``PER``/``B-ORG``...) or spaCy label onto the one scheme (upper-case)."""
    lab = str(label or "").upper()
    if len(lab) > 2 and lab[1] in "-_" and lab[0] in "BIESLU":
        lab = lab[2:]
    return LABEL_MAP.get(lab, lab)


def entity_key(label: str, text: str) -> str:
    """``"LABEL:normalized text"``: the Qdrant payload value and the one identity of an entity."""
    return f"{canonical_label(label)}:{normalize_text(text)}"


def parse_key(value: str) -> str:
    """A user's ``LABEL:text`` filter value as a key; raises ValueError without a ``:``."""
    label, sep, text = str(value).partition(":")
    if not sep:
        raise ValueError(f"entity filters are LABEL:text, e.g. ORG:acme corp (got {value!r})")
    return entity_key(label, text)
