"""Build the final answer from the evidence: the generated text when it agrees with it, else the span."""

from __future__ import annotations

import re
from typing import Any

from haystack import component
from haystack.dataclasses import ChatMessage

from rag.text import normalize_answer

NO_ANSWER_TEXT = "The documents do not contain an answer to this question."
_MARK = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_NUMBER = re.compile(r"\d[\d,.]*")
_NOT_FOUND = re.compile(r"\bNOT[_ ]FOUND\b", re.IGNORECASE)


def _numbers(text: str) -> set[str]:
    return {n.strip(".,").replace(",", "") for n in _NUMBER.findall(text) if n.strip(".,")}


# function words a faithful short answer may add to the evidence's own words
_GLUE = frozenset(["a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or",
                   "but", "as", "is", "are", "was", "were", "be", "been", "being", "it", "its", "this",
                   "that", "these", "those", "there", "their", "they", "he", "she", "his", "her", "them",
                   "which", "who", "whom", "whose", "what", "when", "where", "why", "how", "than", "then",
                   "so", "also", "about", "into", "over", "under", "after", "before", "during", "between",
                   "around", "per", "not", "no", "yes"])


_YES_NO = re.compile(r"\s*(?:is|are|was|were|do|does|did|can|could|will|would|should|shall|has|have|had|may|must|"
                     r"isn't|aren't|wasn't|doesn't|don't|didn't|can't|won't)\b", re.IGNORECASE)


def is_yes_no(question: str) -> bool:
    """A question answered with yes or no ("Is alcohol reimbursed?"), not a choice ("Is it A or B?")."""
    return _YES_NO.match(question) is not None and not re.search(r"\bor\b", question, re.IGNORECASE)


def novel_words(generated: str, evidence: list[dict[str, Any]], query: str = "") -> list[str]:
    """Content words of ``generated`` found in neither the evidence sentences nor the question."""
    known = set(normalize_answer(" ".join([query, *(e["sentence"] for e in evidence),
                                           *(e["text"] for e in evidence)])).split())
    return [w for w in normalize_answer(_MARK.sub(" ", generated)).split() if w not in known and w not in _GLUE]


def states(generated: str, record: dict[str, Any]) -> bool:
    """True when ``generated`` holds the evidence record's span (normalised words, in order)."""
    span = normalize_answer(record["text"])
    return bool(span) and f" {span} " in f" {normalize_answer(_MARK.sub(' ', generated))} "


def agrees(generated: str, evidence: list[dict[str, Any]], max_words: int = 40, query: str = "") -> bool:
    """True when ``generated`` states a span of the evidence and says nothing the evidence and question lack.

    The check is lexical and strict on purpose: the span's normalised words must appear in order in the
    normalised answer, every number in the answer must occur in an evidence sentence, every content word must
    come from the evidence sentences or the question (a small model's paraphrase that invents a name, a place or
    an abbreviation fails), and the answer stays short. A generated answer that fails is replaced by the
    extractive one.
    """
    body = normalize_answer(_MARK.sub(" ", generated))
    if not body or len(body.split()) > max_words:
        return False
    if not any(states(generated, e) for e in evidence):
        return False
    allowed = set().union(*(_numbers(e["sentence"]) | _numbers(e["text"]) for e in evidence))
    if not _numbers(_MARK.sub(" ", generated)) <= allowed:
        return False
    return not novel_words(generated, evidence, query)


@component
class EvidenceAnswerBuilder:
    """The answer: ``generated`` (the reply, checked by :func:`agrees`, stating and citing the best span or one
    nearly as likely), ``extractive`` (the best span) or ``declined``.

    Citations are the evidence records the answer rests on; each quote is the sentence holding the span,
    an exact substring of its chunk (``quote == chunk_text[start:end]``). ``passages`` (the gate's answer to a
    question about what the documents say) are given as they stand: their sentences, each cited, ``extractive``.
    """

    def __init__(self, weaker_share: float = 0.75) -> None:
        """:param weaker_share: a generated reply may rest on a span weaker than the best one only when that span's
            probability is at least this share of the best's (else it falls back to the best span)."""
        if not 0 < weaker_share <= 1:
            raise ValueError(f"weaker_share must be in (0, 1], not {weaker_share}")
        self.weaker_share = weaker_share

    @component.output_types(answer=dict)
    def run(self, query: str, candidates: list[dict] | None = None, evidence: list[dict] | None = None,
            replies: list[ChatMessage] | None = None, no_answer: str | None = None,
            passages: list[dict] | None = None) -> dict[str, Any]:
        candidates = candidates or []
        if passages and no_answer is None:
            text = " ".join(f"{e['sentence'].strip()} [{n}]" for n, e in enumerate(passages, start=1))
            return {"answer": {"query": query, "text": text,
                               "citations": [self._citation(n, e) for n, e in enumerate(passages, start=1)],
                               "evidence": passages, "candidates": candidates, "declined": False, "grounded": True,
                               "mode": "extractive", "confidence": max(e["score"] for e in passages), "raw": ""}}
        if no_answer is not None or not evidence:
            # how sure the decline is: 1 - the best span that could have been the answer (not one whose sentence
            # speaks of another thing than asked, which the gate marks ``contradicted``)
            best = max((c["score"] for c in candidates if not c.get("contradicted")), default=0.0)
            return {"answer": {"query": query, "text": NO_ANSWER_TEXT, "citations": [], "evidence": [],
                               "candidates": candidates, "declined": True, "grounded": True, "mode": "declined",
                               "confidence": round(1.0 - best, 4), "raw": ""}}
        raw = (replies[0].text or "").strip() if replies else ""
        cited: list[int] = []

        def keep(m: re.Match) -> str:
            nums = [int(x) for x in m.group(1).split(",")]
            valid = [n for n in nums if 1 <= n <= len(evidence)]
            cited.extend(n for n in valid if n not in cited)
            return f"[{', '.join(map(str, valid))}]" if valid else ""

        text = re.sub(r"\s+([.,;:])", r"\1", _MARK.sub(keep, raw)).strip()
        # the reply must state, and cite, the best span or one nearly as likely (weaker_share of its probability): a
        # small generator that writes from a much weaker span of another document ("the second Tuesday" at p 0.42
        # beside "28 October 2026" at 0.65) falls back to the best span
        strong = [n for n, e in enumerate(evidence, start=1)
                  if e["score"] >= self.weaker_share * evidence[0]["score"] and states(text, e)]
        if (raw and not _NOT_FOUND.search(raw) and strong and agrees(text, evidence, query=query)
                and (not cited or set(cited) & set(strong))):
            mode = "generated"
            if not cited:
                cited = strong[:1]
                text = f"{text.rstrip()} [{cited[0]}]"
        else:
            mode = "extractive"
            cited = [1]
            # a yes/no question is answered by the sentence, not by a fragment of it ("Alcohol is not")
            text = f"{evidence[0]['sentence' if is_yes_no(query) else 'text'].strip()} [1]"
        citations = [self._citation(n, evidence[n - 1]) for n in cited]
        # evidence keeps the prompt's numbering ([n] = evidence[n - 1]); the confidence is the cited spans' best
        return {"answer": {"query": query, "text": text, "citations": citations, "evidence": evidence,
                           "candidates": candidates, "declined": False, "grounded": True, "mode": mode,
                           "confidence": max(evidence[n - 1]["score"] for n in cited), "raw": raw}}

    @staticmethod
    def _citation(n: int, e: dict[str, Any]) -> dict[str, Any]:
        return {"ref": n, "source": e["source"], "file_name": e["file_name"], "page": e["page"],
                "pages": [e["page"]] if e["page"] is not None else [], "chunk_id": e["chunk_id"],
                "quote": e["sentence"], "score": e["score"], "start": e["sentence_start"],
                "end": e["sentence_start"] + len(e["sentence"])}
