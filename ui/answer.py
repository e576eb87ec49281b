"""How one finished answer is shown so that it can be checked: the text with inline ``[n]`` markers, how sure
docrag is (``Answer.confidence``), a plain "not in the documents" / "not sure" state, the citations as
buttons that open the cited passage with the exact evidence span marked, the passages read and the timings.
"""

from __future__ import annotations

import re

import streamlit as st

from rag.api import Answer, Citation, Hit
from ui.common import guard, page_label, rag

LOW_CONFIDENCE = 0.5  # below this an answer is shown as "not sure"
_MARK = re.compile(r"\[(\d{1,3})\]")


def open_chunk(hit: Hit, quote: str, spans: list[tuple[int, int]] | None = None, ref: int | None = None) -> None:
    st.session_state.open_chunk = {"hit": hit, "quote": quote, "spans": list(spans or []), "ref": ref}


def _hit_for(answer: Answer, chunk_id: str, source: str) -> Hit | None:
    for h in answer.documents:
        if h.chunk_id == chunk_id:
            return h
    with guard("Opening the cited chunk"):
        return next((h for h in rag().show(source) if h.chunk_id == chunk_id), None)
    return None


def spans_for(answer: Answer, c: Citation) -> list[tuple[int, int]]:
    """Exact offsets to mark in the cited chunk: the citation's quote, then the evidence spans in that chunk."""
    spans = [(c.start, c.end)] if c.start is not None and c.end is not None else []
    spans += [(e.start, e.end) for e in answer.evidence if e.chunk_id == c.chunk_id]
    return spans


def confidence_state(a: Answer) -> str:
    """``declined``, ``unsure``, ``sure`` or ``unknown`` (no calibrated confidence on this answer)."""
    if a.declined or a.mode == "declined":
        return "declined"
    if not a.evidence and not a.confidence:
        return "unknown"
    return "unsure" if a.confidence < LOW_CONFIDENCE else "sure"


def with_markers(text: str, citations: list[Citation], i: int) -> str:
    """The answer text with every cited ``[n]`` present (appended when the model cited without a marker) and
    linked to its citation button below."""
    refs = sorted({c.ref for c in citations})
    missing = [r for r in refs if f"[{r}]" not in text]
    if missing:
        text = text.rstrip() + " " + "".join(f"[{r}]" for r in missing)
    known = set(refs)
    return _MARK.sub(lambda m: f"[\\[{m.group(1)}\\]](#cite-{i}-{m.group(1)})" if int(m.group(1)) in known
                     else m.group(0), text)


def render_answer(i: int, a: Answer) -> None:
    """One finished answer: state and confidence, text with [n] markers, citations, passages, timings."""
    state = confidence_state(a)
    if state == "declined":
        st.info(f"**Not in the documents.** {a.text}", icon=":material/search_off:")
    elif not a.text.strip():
        st.warning("The model returned an empty answer. Read the passages below, or rephrase the question.")
    else:
        if state == "unsure":
            st.warning(f"**Not sure** (confidence {a.confidence:.0%}): the passages only weakly support this "
                       "answer; check them before relying on it.", icon=":material/help:")
        st.markdown(with_markers(a.text, a.citations, i))
        if state == "sure":
            st.caption(f"Confidence {a.confidence:.0%} · "
                       + ("the answer is the documents' own words" if a.mode == "extractive"
                          else "checked against the evidence"))
        elif state == "unknown":
            st.caption("Confidence not measured for this answer: check it against the cited passages.")
        if not a.citations:
            st.caption("This answer cites no passage; check it against the passages below.")
    if a.citations and state != "declined":
        st.markdown("**Citations**" + (" (weak support)" if state == "unsure" else ""))
        seen: set[tuple[int, str]] = set()
        for j, c in enumerate(a.citations):
            if (c.ref, c.chunk_id) in seen:  # the same reference cited twice: one button
                continue
            seen.add((c.ref, c.chunk_id))
            hit = _hit_for(a, c.chunk_id, c.source)
            label = f"[{c.ref}] {c.file_name} · {page_label(c.page, c.pages, c.source)}"
            st.html(f'<span id="cite-{i}-{c.ref}"></span>')
            if hit is not None:
                st.button(label, key=f"cite-{i}-{j}", on_click=open_chunk,
                          args=(hit, c.quote, spans_for(a, c), c.ref),
                          help=f"“{c.quote[:200]}”" if c.quote else None)
            else:
                st.caption(label + " (chunk no longer stored)")
    if a.documents:
        with st.expander(f"Passages read ({len(a.documents)})", expanded=False):
            for j, h in enumerate(a.documents):
                score = f" · score {h.score:.3f}" if h.score is not None else ""
                st.button(f"{h.file_name} · {page_label(h.page, h.pages, h.source)}{score}", key=f"hit-{i}-{j}",
                          on_click=open_chunk, args=(h, ""))
    t = a.timings
    if t.get("total_s") is not None:
        parts = [f"Answered in {t['total_s']:.1f} s"]
        if t.get("first_token_s"):
            parts.append(f"first token {t['first_token_s']:.1f} s")
        if t.get("wait_s", 0) >= 0.5:
            parts.append(f"{t['wait_s']:.1f} s of it waiting for another answer")
        st.caption(" · ".join(parts))
        with st.expander("Where the time went", expanded=False):
            st.caption(time_breakdown(t))


TIME_STAGES = (("wait", "waiting for another answer"), ("embed", "embed"), ("retrieve", "retrieve"),
               ("rerank", "rerank"), ("read", "read"), ("gate", "evidence check"), ("prompt", "prompt"),
               ("generate", "generate"), ("answer", "citations"), ("other", "other"),
               ("first_token", "first token at"), ("total", "total"))


def time_breakdown(timings: dict[str, float]) -> str:
    """``Answer.timings`` as one line, stage by stage in graph order: ``embed 0.02 s · retrieve 0.31 s · ...``."""
    return " · ".join(f"{label} {timings[f'{key}_s']:.2f} s" for key, label in TIME_STAGES
                      if timings.get(f"{key}_s") is not None)
