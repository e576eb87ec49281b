"""How one finished answer is shown: the text (or "no answer in the documents"), clickable citations that
open the cited chunk with the quote highlighted, the passages read and the timings.
"""

from __future__ import annotations

import streamlit as st

from rag.api import Answer, Hit
from ui.common import guard, page_label, rag


def open_chunk(hit: Hit, quote: str) -> None:
    st.session_state.open_chunk = {"hit": hit, "quote": quote}


def _hit_for(answer: Answer, chunk_id: str, source: str) -> Hit | None:
    for h in answer.documents:
        if h.chunk_id == chunk_id:
            return h
    with guard("Opening the cited chunk"):
        return next((h for h in rag().show(source) if h.chunk_id == chunk_id), None)
    return None


def render_answer(i: int, a: Answer) -> None:
    """One finished answer: text (or 'no answer'), clickable citations, the passages read, timings."""
    if a.declined:
        st.info(f"**No answer in the documents.** {a.text}", icon=":material/search_off:")
    elif not a.text.strip():
        st.warning("The model returned an empty answer. Read the passages below, or rephrase the question.")
    else:
        st.markdown(a.text)
        if not a.citations:
            st.caption("This answer cites no passage; check it against the passages below.")
    if a.citations:
        st.markdown("**Citations**")
        seen: set[tuple[int, str]] = set()
        for j, c in enumerate(a.citations):
            if (c.ref, c.chunk_id) in seen:  # the same reference cited twice: one button
                continue
            seen.add((c.ref, c.chunk_id))
            hit = _hit_for(a, c.chunk_id, c.source)
            label = f"[{c.ref}] {c.file_name} · {page_label(c.page, c.pages)}"
            if hit is not None:
                st.button(label, key=f"cite-{i}-{j}", on_click=open_chunk, args=(hit, c.quote),
                          help=f"“{c.quote[:200]}”" if c.quote else None)
            else:
                st.caption(label + " (chunk no longer stored)")
    if a.documents:
        with st.expander(f"Passages read ({len(a.documents)})", expanded=False):
            for j, h in enumerate(a.documents):
                score = f" · score {h.score:.3f}" if h.score is not None else ""
                st.button(f"{h.file_name} · {page_label(h.page, h.pages)}{score}", key=f"hit-{i}-{j}",
                          on_click=open_chunk, args=(h, ""))
    total = a.timings.get("total_s")
    if total is not None:
        first = a.timings.get("first_token_s")
        st.caption(f"Answered in {total:.1f} s" + (f" (first token {first:.1f} s)" if first else ""))
