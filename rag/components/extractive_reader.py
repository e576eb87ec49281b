"""Extractive reader: scores answer spans in the retrieved chunks with our fine-tuned BERT QA model."""

from __future__ import annotations

import logging
import re
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ExtractedAnswer

from ingest.tables import RowPassage, is_table_chunk, row_passages
from rag.components.question_condenser import content_words
from rag.models import check_dtype
from rag.span_decode import Calibrator, window_spans
from rag.text import addresses_the_assistant, first_sentence_end

logger = logging.getLogger(__name__)

# a sentence ends at . ! ? before a capital or digit, and at every line break: in docrag's chunks a line break is an
# element boundary (a heading, a list item, a table row, a form's "label: value" line), as in rag.text
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*")


def sentence_around(text: str, start: int, end: int, max_chars: int = 400) -> tuple[int, int]:
    """Character bounds ``(s, e)`` of the sentence(s) of ``text`` holding ``text[start:end]``.

    Bounds are exact offsets into ``text`` (``text[s:e]`` is the quote), trimmed of surrounding whitespace;
    a sentence longer than ``max_chars`` is cut to a window around the span.
    """
    s = 0
    for m in _SENT_END.finditer(text, 0, min(len(text), start + 1)):  # + 1: the lookahead sees the span's first
        if m.end() <= start:                                             # letter, so a sentence it starts ends here
            s = m.end()
    m = _SENT_END.search(text, end)
    e = m.start() if m else len(text)
    while s < start and text[s].isspace():
        s += 1
    while e > end and text[e - 1].isspace():
        e -= 1
    if e - s > max_chars:
        half = max(0, (max_chars - (end - start)) // 2)
        s, e = max(s, start - half), min(e, end + half)
        while s > 0 and s < start and not text[s - 1].isspace():  # do not cut a word at the front
            s += 1
        while e < len(text) and e > end and not text[e].isspace():
            e -= 1
    return s, e


def sentence_bounds(text: str, max_chars: int = 400) -> list[tuple[int, int]]:
    """Every sentence of ``text`` as :func:`sentence_around` bounds it, in order."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        s, e = sentence_around(text, pos, pos + 1, max_chars)
        out.append((s, e))
        pos = max(e, pos + 1)
    return out


@component
class ExtractiveReader:
    """Finds the answer span in each document, with a calibrated probability that it answers the query.

    Same contract as Haystack's ``ExtractiveReader`` (``answers``: ``ExtractedAnswer`` with ``document``,
    ``document_offset`` and ``score``; the last answer has ``data=None`` and scores "no answer"), but the
    no-answer decision comes from the model's own ``[CLS]`` score, as it was trained on SQuAD 2.0-style data:
    ``margin = best span logit - null logit`` per document window, mapped to a probability by a Platt
    calibrator fitted on the SQuAD 2.0 course split (``models/reader/calibration.json``).

    Usage::

        reader = ExtractiveReader(model="models/reader-materialized")
        reader.warm_up()
        reader.run(query="Who?", documents=[Document(content="...")])["answers"]
    """

    def __init__(self, model: str, device: str = "cpu", top_k: int = 3, max_seq_length: int = 384,
                 stride: int = 128, max_answer_tokens: int = 30, batch_size: int = 16,
                 calibration: dict[str, float] | None = None, spans_per_window: int = 3, dtype: str = "fp32",
                 table_calibration: dict[str, float] | None = None, sentence_switch: float = 2.0,
                 rerank_weight: float = 0.0) -> None:
        """
        :param model: folder of a Hugging Face ``AutoModelForQuestionAnswering``.
        :param device: ``cpu``, ``cuda`` or ``cuda:N``.
        :param top_k: answers returned (best first), besides the trailing no-answer entry.
        :param max_seq_length: tokens per window (question + context).
        :param stride: overlap in tokens between windows of a long document.
        :param max_answer_tokens: longest span.
        :param batch_size: windows per forward pass.
        :param calibration: ``{"a", "b", "c", "threshold"}`` of :class:`rag.span_decode.Calibrator`.
        :param spans_per_window: candidate spans kept per window.
        :param dtype: torch precision, ``fp32``, ``bf16`` or ``fp16`` (an ONNX folder runs at its own).
        :param table_calibration: ``{"a", "c"}`` of the margin's Platt scaling on table rows (fitted on synthetic
            table questions); a row's margin is mapped to the margin ``calibration`` scores alike, so one
            probability and one threshold serve prose and tables. None: table rows are scored as prose.
        :param sentence_switch: the best prose span moves to the best span of another sentence of its window that
            holds more of the question's content words, when that span's margin is at most this much lower (0 = never);
            the answer keeps the best span's probability. Chosen on the calibration articles (see ``_switch``).
        :param rerank_weight: spans are ranked by margin + this x their document's incoming (cross-encoder) score,
            so which chunk answers weighs the reranker's judgement too; 0 = the margin alone. Each span keeps its
            own probability.
        :raises ValueError: on a non-positive size, a negative ``sentence_switch`` or ``rerank_weight``, or an unknown
            dtype.
        """
        for name, v in (("top_k", top_k), ("max_seq_length", max_seq_length), ("max_answer_tokens", max_answer_tokens),
                        ("batch_size", batch_size), ("spans_per_window", spans_per_window)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, not {v}")
        if not 0 <= stride < max_seq_length:
            raise ValueError(f"stride must be in [0, max_seq_length), not {stride}")
        if sentence_switch < 0:
            raise ValueError(f"sentence_switch must be >= 0, not {sentence_switch}")
        if rerank_weight < 0:
            raise ValueError(f"rerank_weight must be >= 0, not {rerank_weight}")
        check_dtype(dtype)
        self.model = model
        self.device = device
        self.top_k = top_k
        self.max_seq_length = max_seq_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
        self.calibration = dict(calibration) if calibration else None
        self.spans_per_window = spans_per_window
        self.dtype = dtype
        self._calibrator = Calibrator.from_dict(calibration) if calibration else Calibrator()
        self.table_calibration = dict(table_calibration) if table_calibration else None
        self._table = Calibrator.from_dict(table_calibration) if table_calibration else None
        self.sentence_switch = sentence_switch
        self.rerank_weight = rerank_weight
        self._model: Any = None
        self._tokenizer: Any = None

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model=self.model, device=self.device, top_k=self.top_k,
                               max_seq_length=self.max_seq_length, stride=self.stride,
                               max_answer_tokens=self.max_answer_tokens, batch_size=self.batch_size,
                               calibration=self.calibration, spans_per_window=self.spans_per_window,
                               dtype=self.dtype, table_calibration=self.table_calibration,
                               sentence_switch=self.sentence_switch, rerank_weight=self.rerank_weight)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveReader:
        return default_from_dict(cls, data)

    @property
    def threshold(self) -> float:
        """The calibrated probability under which the answer should be declined."""
        return self._calibrator.threshold

    def _in_prose_units(self, margin: float) -> float:
        """A table row's margin as the prose margin of equal calibrated probability (before the rerank term)."""
        if self._table is None or not self._calibrator.a:
            return margin
        return (self._table.a * margin + self._table.c - self._calibrator.c) / self._calibrator.a

    def warm_up(self) -> None:
        if self._model is not None:
            return
        from rag.models import load_qa_model

        self._tokenizer, self._model = load_qa_model(self.model, self.device, self.dtype)

    def _windows(self, query: str, texts: list[str]) -> tuple[Any, list[list[float]], list[list[float]]]:
        import torch

        enc = self._tokenizer([query] * len(texts), texts, truncation="only_second", max_length=self.max_seq_length,
                              stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                              padding="longest", return_tensors="pt")
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        starts, ends = [], []
        with torch.inference_mode():
            for s in range(0, enc["input_ids"].shape[0], self.batch_size):
                batch = {k: enc[k][s:s + self.batch_size].to(self.device) for k in names}
                longest = int(batch["attention_mask"].sum(1).max())
                out = self._model(**{k: v[:, :longest] for k, v in batch.items()})
                pad = enc["input_ids"].shape[1] - longest
                for row_s, row_e in zip(out.start_logits.float().cpu(), out.end_logits.float().cpu()):
                    starts.append(row_s.tolist() + [-1e4] * pad)
                    ends.append(row_e.tolist() + [-1e4] * pad)
        return enc, starts, ends

    def _switch(self, query: str, text: str, best: tuple, start_logits: Any, end_logits: Any,
                offsets: list[tuple[int, int]], mask: Any) -> tuple:
        """``best`` (a prose candidate) moved to the best span of another sentence of its window that holds more of
        the question's content words, when that span's margin is within ``sentence_switch`` of ``best``'s; else
        ``best``. "Which port is used for metrics?" read "The web interface listens on port 8443 (HTTPS). The
        internal API uses port 9090, and metrics are exported on port 9464." and answered 8443. On the 1,027
        answerable calibration-article questions (gold paragraph) a 2.0 margin moves 24 answers (16 better, 7
        worse): has-answer F1 0.806 -> 0.812; 1.0: 0.810, 3.0: 0.812, 5.0: 0.812. The answer keeps ``best``'s
        margin, so whether to answer or decline is unchanged."""
        margin, di, start, end, row, sp, f = best
        asked = {w.lower() for w in content_words(query)}

        def held(bounds: tuple[int, int]) -> int:
            return len(asked & {w.lower() for w in content_words(text[bounds[0]:bounds[1]])})

        own = sentence_around(text, start, end)
        need = held(own) + 1
        for alt in window_spans(start_logits, end_logits, offsets, mask, self.max_answer_tokens, 40):
            if alt.margin < sp.margin - self.sentence_switch:
                break  # best first
            a, b = alt.start, first_sentence_end(text, alt.start, alt.end)
            bounds = sentence_around(text, a, b)
            if bounds[0] < own[1] and own[0] < bounds[1]:
                continue  # the same sentence
            if held(bounds) >= need and text[a:b].strip():
                return margin, di, a, b, row, sp, f
        return best

    @component.output_types(answers=list[ExtractedAnswer])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, Any]:
        """Best spans over all documents, best first, then a ``data=None`` answer scoring "no answer".

        Each answer's ``meta`` holds ``margin`` (span logit minus the window's null logit), ``logit`` and
        ``rerank_score`` (the document's incoming score); ``score`` is the calibrated probability.
        """
        import numpy as np

        top_k = top_k or self.top_k
        docs = [d for d in documents if (d.content or "").strip()]
        if not docs or not query.strip():
            return {"answers": [ExtractedAnswer(query=query, score=1.0, data=None, document=None)]}
        if self._model is None:
            self.warm_up()
        texts = [d.content or "" for d in docs]
        # what the model reads: a prose chunk whole (row None), a table chunk row by row, only the rows the question
        # names when it names some (ingest.tables.row_passages)
        passages: list[tuple[int, RowPassage | None]] = [
            (di, row) for di, d in enumerate(docs)
            for row in (row_passages(texts[di], query) if is_table_chunk(d.meta) else [None])]
        enc, starts, ends = self._windows(query, [row.text(texts[di]) if row else texts[di] for di, row in passages])
        def window(f: int) -> tuple[Any, Any, list[tuple[int, int]], Any]:
            """Start and end logits, token offsets and context mask of window ``f``."""
            return (np.array(starts[f]), np.array(ends[f]), enc["offset_mapping"][f].tolist(),
                    np.array([sid == 1 for sid in enc.sequence_ids(f)]))

        # margin, doc, start, end, table row, span, window
        cands: list[tuple[float, int, int, int, RowPassage | None, Any, int]] = []
        for f, pi in enumerate(enc["overflow_to_sample_mapping"].tolist()):
            di, row = passages[pi]
            start_logits, end_logits, offsets, mask = window(f)
            if row is not None:  # a table row: the answer is a cell value or the row label, not a header or caption
                at = [row.locate(a, b) for a, b in offsets]
                mask &= np.array([w is not None and row.answerable(w) for w in at])
            for sp in window_spans(start_logits, end_logits, offsets, mask, self.max_answer_tokens,
                                   self.spans_per_window):
                where = row.locate(sp.start, sp.end) if row is not None else (sp.start, sp.end)
                if where is None or (row is not None and not row.answerable(where)):
                    continue  # across two pieces or two cells: no quote of the chunk
                if row is None:  # prose: the answer ends with its sentence
                    where = (where[0], first_sentence_end(texts[di], where[0], where[1]))
                cands.append((sp.margin if row is None else self._in_prose_units(sp.margin), di, where[0], where[1],
                              row, sp, f))
        # best first: the span's margin, plus the reranker's judgement of its document when RERANK_WEIGHT > 0
        cands.sort(key=lambda c: -(c[0] + self.rerank_weight * float(docs[c[1]].score or 0.0)))
        moved: dict[tuple, list[int]] = {}  # (doc, start, end) of the best span moved to another sentence -> its own
        if cands and cands[0][4] is None and self.sentence_switch > 0:
            top = cands[0]
            cands[0] = self._switch(query, texts[top[1]], top, *window(top[6]))
            if cands[0] is not top:
                moved[cands[0][1:4]] = list(top[2:4])
        answers: list[ExtractedAnswer] = []
        taken: list[tuple[int, int, int]] = []
        for margin, di, start, end, row, sp, _ in cands:
            if any(di == t[0] and start < t[2] and t[1] < end for t in taken):
                continue  # overlaps a better span of the same document
            doc = docs[di]
            text = texts[di][start:end]
            if not text.strip():
                continue
            rerank = float(doc.score) if doc.score is not None else 0.0
            p = self._calibrator.probability(margin, rerank)
            s0, s1 = row.row if row is not None else sentence_around(texts[di], start, end)
            if addresses_the_assistant(texts[di][s0:s1]):
                continue  # an instruction hidden in the document is data, never the evidence of an answer
            answers.append(ExtractedAnswer(
                query=query, score=p, data=text, document=doc, context=texts[di][s0:s1],
                document_offset=ExtractedAnswer.Span(start, end),
                context_offset=ExtractedAnswer.Span(start - s0, end - s0),
                meta={"margin": round(sp.margin, 4), "logit": round(sp.score, 4), "null_logit": round(sp.null_score, 4),
                      "rerank_score": rerank, "sentence_start": s0, "sentence_end": s1,
                      **({"moved_from": moved[(di, start, end)]} if (di, start, end) in moved else {})}))
            taken.append((di, start, end))
            if len(answers) >= top_k:
                break
        best = answers[0].score if answers else 0.0
        answers.append(ExtractedAnswer(query=query, score=1.0 - best, data=None, document=None))
        return {"answers": answers}
