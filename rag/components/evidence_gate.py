"""Decide from the reader's spans whether to answer, and pick the evidence the generator is given."""

from __future__ import annotations

import logging
import re
from typing import Any

from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from ingest.chunk import page_at
from ingest.tables import caption, is_table_chunk
from rag.components.extractive_reader import sentence_around, sentence_bounds
from rag.components.question_condenser import content_words
from rag.question_forms import asks_for_passage, contradicts, defined_as_another, passage_topic
from rag.span_decode import Calibrator
from rag.text import addresses_the_assistant

logger = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")


def _record(doc: Document | None, text: str, start: int, end: int, score: float, s0: int, s1: int,
            margin: float | None, rerank: float | None) -> dict[str, Any]:
    """The JSON evidence record of ``rag.api.Evidence``: ``text`` at ``[start, end)`` in a sentence ``[s0, s1)``."""
    m = doc.meta if doc else {}
    content = doc.content or "" if doc else ""
    return {"text": text, "chunk_id": doc.id if doc else "", "start": start, "end": end,
            "score": round(float(score), 4), "source": m.get("source", ""), "file_name": m.get("file_name", ""),
            "page": page_at(m, start), "sentence": content[s0:s1], "sentence_start": s0,
            "margin": margin, "rerank_score": rerank}


def evidence_dict(a: ExtractedAnswer) -> dict[str, Any]:
    """An ``ExtractedAnswer`` as the JSON evidence record of ``rag.api.Evidence``."""
    start, end = (a.document_offset.start, a.document_offset.end) if a.document_offset else (0, 0)
    return _record(a.document, a.data or "", start, end, a.score, int(a.meta.get("sentence_start", start)),
                   int(a.meta.get("sentence_end", end)), a.meta.get("margin"), a.meta.get("rerank_score"))


def _with_caption(doc: Document | None, sentence: str) -> str:
    """What a span's sentence says, for :func:`rag.question_forms.contradicts`: a table row behind its table's
    caption (:func:`ingest.tables.caption`), prose as it is."""
    if doc is None or not is_table_chunk(doc.meta or {}):
        return sentence
    head = caption(doc.content or "")
    return f"{head}\n{sentence}" if head and head != sentence else sentence


# A table's cells are no answer when two of its rows score within this share of each other at the top: the
# reader cannot tell the rows apart ("What was revenue in Q3 2025?" of a segment table: Marinas 0.70, Ports 0.69,
# where the total is in the prose beside it, 0.67). A paraphrased row ("How heavy is ...?" of Weight 0.84 and
# Payload 0.76) stays an answer.
AMBIGUOUS_ROW_SHARE = 0.95


def _without_ambiguous_rows(spans: list[ExtractedAnswer], candidates: list[dict[str, Any]],
                            kept: list[int]) -> list[int]:
    """``kept`` (indices, best first) less every cell of a table chunk whose best kept cell has a rival in another
    row of that chunk scoring at least :data:`AMBIGUOUS_ROW_SHARE` of it; those are marked ``ambiguous``.
    Repeated while the best left is such a cell. A question that names its row reads that row alone
    (:func:`ingest.tables.named_rows`), so this only concerns questions that name none."""
    while kept:
        top = kept[0]
        doc = spans[top].document
        if doc is None or not is_table_chunk(doc.meta or {}):
            return kept
        same = [i for i in kept if spans[i].document is not None and spans[i].document.id == doc.id]
        floor = AMBIGUOUS_ROW_SHARE * spans[top].score
        if len({candidates[i]["sentence_start"] for i in same if spans[i].score >= floor}) < 2:
            return kept
        for i in same:
            candidates[i]["ambiguous"] = True
        kept = [i for i in kept if i not in same]
    return kept


def _stems(text: str) -> set[str]:
    """The topic words of ``text`` (:func:`content_words`) by their first five letters, lowercased."""
    return {w.lower()[:5] for w in content_words(text)}


_FOOTNOTE_MARKS = re.compile(r"(?:\[\^?\w{1,4}\])+$")


def topic_sentence(text: str, query: str, start: int, end: int, max_chars: int = 400) -> tuple[int, int]:
    """The sentence of ``text`` holding most of the question's topic words (:func:`content_words` of
    :func:`~rag.question_forms.passage_topic`: "bottles of water", not "the memo", compared by
    their first five letters); ties go to a prose sentence (6+ words, ending in . ! or ?) over a heading, caption or
    form line, then to the reader's sentence ``text[start:end]``, then to the earlier one; no overlap at all keeps
    the reader's sentence. A sentence over ``max_chars`` is cut to a window around its first topic word."""
    topic = _stems(passage_topic(query))
    best, best_key = (start, end), (-1, False, False, 0)
    for k, (s, e) in enumerate(sentence_bounds(text, max_chars=len(text) + 1)):
        if addresses_the_assistant(text[s:e]):
            continue  # an instruction hidden in the document is data, never the answer
        words = _stems(text[s:e])
        ending = _FOOTNOTE_MARKS.sub("", text[s:e].rstrip()).rstrip("\"'”’)]")  # "long.[^1]" ends a sentence
        prose = len(text[s:e].split()) >= 6 and ending.endswith((".", "!", "?"))
        key = (len(topic & words), prose, s <= start < e, -k)
        if key > best_key:
            best, best_key = (s, e), key
    if best_key[0] <= 0:
        best = (start, end)
    s, e = _trim_lines(text, *best, topic)
    if e - s > max_chars:
        at = next((m.start() for m in _WORD.finditer(text, s, e) if m.group().lower()[:5] in topic), s)
        return sentence_around(text, at, at + 1, max_chars)
    return s, e


def _trim_lines(text: str, s: int, e: int, topic: set[str]) -> tuple[int, int]:
    """Drop a heading or date line in front of a sentence ("May 5, 2023\nTo Whom ...": a short line that does not
    end a sentence) while the rest still holds a topic word, and a trailing line with no words or a footnote mark."""
    def has_topic(a: int, b: int) -> bool:
        return bool(topic & _stems(text[a:b])) or not topic
    while (nl := text.find("\n", s, e)) != -1:
        head = text[s:nl].strip()
        if head.endswith((".", "!", "?", ":", ";")) or len(head.split()) > 8:
            break
        nxt = nl + 1
        while nxt < e and text[nxt].isspace():
            nxt += 1
        if nxt >= e or not has_topic(nxt, e):
            break
        s = nxt
    while (nl := text.rfind("\n", s, e)) != -1:
        tail = text[nl + 1:e].strip()
        if sum(c.isalpha() for c in tail) >= 2 and not tail.startswith("[^"):
            break
        e = nl
        while e > s and text[e - 1].isspace():
            e -= 1
    return s, e


@component
class EvidenceGate:
    """Passes the best reader spans on as evidence, or declines when the calibrated confidence is too low.

    - ``evidence`` / ``documents`` are emitted only when the best span's probability is at least ``threshold``:
      the generator downstream then runs; otherwise ``no_answer`` is emitted and no generation happens.
    - ``candidates`` (every span found, as evidence records) is always emitted, for display and evals.
    - Besides the best span, a span is kept as evidence when it scores at least ``min_share`` of the best and
      comes from another place (at most ``max_evidence``).
    - A span whose sentence contradicts the question (:func:`rag.question_forms.contradicts`: "chief financial
      officer" for a question about the chief executive; "AMR-400" for the AMR-800; a table row behind a caption
      of January–June 2022 for 2023) is never evidence.
    - A question that asks what the documents say about something (:func:`rag.question_forms.asks_for_passage`)
      has no span answer: with ``passage_calibration`` (the reranker's, ``models/reranker/calibration.json``) it
      is answered by ``passages`` instead -- the sentence with most of the question's topic words in each of the
      ``max_passages`` best-reranked ``documents`` whose calibrated probability of being the passage asked about is at
      least the calibration's threshold -- or declined when no chunk reaches it. Passages skip the generator.
      The calibration holds for the first chunk only (fitted on it; ECE 0.03 there, 0.50 on the second), hence
      one passage by default.
    """

    def __init__(self, threshold: float = 0.5, max_evidence: int = 3, min_share: float = 0.5,
                 passage_calibration: dict[str, float] | None = None, max_passages: int = 1) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1], not {threshold}")
        if max_evidence < 1 or max_passages < 1:
            raise ValueError(f"max_evidence and max_passages must be >= 1, not {max_evidence}, {max_passages}")
        self.threshold = threshold
        self.max_evidence = max_evidence
        self.min_share = min_share
        self.passage_calibration = dict(passage_calibration) if passage_calibration else None
        self.max_passages = max_passages
        self._passage = Calibrator.from_dict(passage_calibration) if passage_calibration else None

    @component.output_types(evidence=list[dict], documents=list[Document], no_answer=str, candidates=list[dict],
                            passages=list[dict])
    def run(self, query: str, answers: list[ExtractedAnswer], threshold: float | None = None,
            documents: list[Document] | None = None) -> dict[str, Any]:
        """``documents``: the reranked chunks the reader read (passage questions are answered from the best of
        them, whether or not the reader found a span there)."""
        cut = self.threshold if threshold is None else threshold
        spans = [a for a in answers if a.data is not None and a.document is not None]
        candidates = [evidence_dict(a) for a in spans]
        if self._passage is not None and asks_for_passage(query):
            return self._passages(query, spans, candidates, documents or [])
        # a span whose sentence has another word of a set the question asks one of (financial for executive, June
        # for May) answers another question (rag.question_forms.contradicts): it stays a candidate, never evidence
        # (a table row is judged with its table's caption, where the period often is: "January–June 2022"); so does a
        # span introduced as one party when the question asks for another ("Maria Delgado (the Tenant)" for the landlord)
        kept = []
        for i, (a, c) in enumerate(zip(spans, candidates)):
            if contradicts(query, _with_caption(a.document, c["sentence"])) or defined_as_another(
                    query, c["sentence"], c["end"] - c["sentence_start"]):
                c["contradicted"] = True  # no evidence, and no measure of how sure a decline is
            else:
                kept.append(i)
        kept = _without_ambiguous_rows(spans, candidates, kept)
        spans, evidence = [spans[i] for i in kept], [candidates[i] for i in kept]
        if not spans or spans[0].score < cut:
            logger.info("Declined: best span probability %.3f < %.3f", spans[0].score if spans else 0.0, cut)
            return {"no_answer": query, "candidates": candidates}
        best = spans[0].score
        chosen = [0]
        for i, a in enumerate(spans[1:], start=1):
            if len(chosen) >= self.max_evidence:
                break
            if a.score >= self.min_share * best and a.score >= cut / 2:
                chosen.append(i)
        docs: list[Document] = []
        for i in chosen:
            if all(d.id != spans[i].document.id for d in docs):
                docs.append(spans[i].document)
        return {"evidence": [evidence[i] for i in chosen], "documents": docs, "candidates": candidates}

    def _passages(self, query: str, spans: list[ExtractedAnswer], candidates: list[dict],
                  documents: list[Document]) -> dict[str, Any]:
        """The topic sentence of each of the best-reranked chunks the question is about, as evidence records whose
        span is that sentence and whose score is the passage probability; ``no_answer`` when none reaches it."""
        assert self._passage is not None
        docs = documents or list({a.document.id: a.document for a in spans}.values())
        docs = sorted((d for d in docs if (d.content or "").strip()), key=lambda d: -(d.score or 0.0))
        reader_sentence = {}
        for a in spans:  # best first: the reader's best sentence in each chunk breaks topic ties
            reader_sentence.setdefault(a.document.id, (int(a.meta.get("sentence_start", 0)),
                                                       int(a.meta.get("sentence_end", 0))))
        out = []
        for doc in docs[:self.max_passages]:
            p = self._passage.probability(0.0, float(doc.score or 0.0))
            if p < self._passage.threshold:
                break
            text = doc.content or ""
            s0, s1 = topic_sentence(text, query, *reader_sentence.get(doc.id, sentence_bounds(text)[0]))
            if addresses_the_assistant(text[s0:s1]):
                continue  # only an injected instruction to quote from this chunk
            out.append(_record(doc, text[s0:s1], s0, s1, p, s0, s1, None, doc.score))
        if not out:
            logger.info("Declined a passage question: no chunk reaches passage probability %.2f",
                        self._passage.threshold)
            return {"no_answer": query, "candidates": candidates}
        return {"passages": out, "candidates": candidates}
