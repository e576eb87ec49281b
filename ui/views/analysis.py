"""Analysis of one or several documents: summaries (extractive by default: the document's own central
sentences with their pages; T5 or the GGUF model as options, their unsupported numbers and names flagged), an
entity table with counts and filters (select a row to see where the entity occurs), and insight charts
(entity types, top entities, documents by pages/chunks, co-occurrence, the years real dates name).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from rag.entities import entity_key
from ui import charts
from ui.common import clean_frame, documents_or_empty_state, guard, page_label, rag

MAX_COOCCURRENCE_DOCS = 25  # chunk-level entity reads per selected document; keep the page responsive


def entity_table(sources: list[str], all_selected: bool) -> pd.DataFrame:
    d = rag()
    if all_selected:
        return charts.entity_frame(d.entities())
    return charts.merge_entities(charts.entity_frame(d.entities(src)) for src in sources)


def summary_tab(sources: list[str], names: dict[str, str]) -> None:
    summaries = st.session_state.setdefault("summaries", {})
    configured = rag().settings.summarizer
    st.caption("Extractive summaries: the documents' own most central sentences, with their pages (nothing "
               "is invented)." if not configured or configured == "extractive" else
               f"Abstractive summaries by {configured}: numbers and names missing from the document are flagged.")
    if st.button(f"Summarize {len(sources)} document{'s' if len(sources) != 1 else ''}", key="summarize",
                 type="primary", disabled=not sources):
        for src in sources:
            with guard(f"Summarizing {names[src]}"), st.spinner(f"Summarizing {names[src]}…"):
                summaries[src] = rag().summarize(src)
    for src in sources:
        s = summaries.get(src)
        if s is None:
            continue
        st.markdown(f"#### {names[src]}")
        if s.sentences:
            for sent in s.sentences:
                where = page_label(sent.get("page"), None, src)
                st.markdown(f"- {sent['text']} <span style='color:#888'>({where})</span>", unsafe_allow_html=True)
        else:
            st.write(s.text or "_(empty summary)_")
        if s.unsupported:
            st.warning("Not in the document, check these: " + ", ".join(f"“{u}”" for u in s.unsupported),
                       icon=":material/report:")
        st.caption(f"{s.backend} · {s.model.split('/')[-1]} · {s.parts} part(s) · {s.seconds:.1f} s")


def occurrences(label: str, text: str, sources: list[str], names: dict[str, str]) -> None:
    """Where an entity occurs: each chunk that holds it, with its document and page."""
    key = entity_key(label, text)
    shown = 0
    for src in sources:
        for h in rag().show(src):
            if any(entity_key(e.get("label", ""), e.get("text", "")) == key for e in h.entities):
                snippet = " ".join(h.text.split())
                pos = snippet.lower().find(text.lower())
                start = max(0, pos - 120) if pos >= 0 else 0
                st.markdown(f"**{names.get(src, h.file_name)}** · {page_label(h.page, h.pages, src)}: "
                            f"…{snippet[start:start + 300]}…")
                shown += 1
                if shown >= 20:
                    return
    if not shown:
        st.caption("No stored chunk holds it any more.")


def entities_tab(ents: pd.DataFrame) -> pd.DataFrame:
    """The entity table with filters; returns the filtered frame (the charts use it too)."""
    if ents.empty:
        st.info("No entities stored for these documents (entity extraction may be off: DOCRAG_EXTRACT_ENTITIES).")
        return ents
    c1, c2, c3 = st.columns([2, 2, 1])
    labels = c1.multiselect("Types", sorted(ents["label"].unique()), key="entity_labels", placeholder="All types")
    text = c2.text_input("Text contains", key="entity_text")
    min_count = c3.number_input("Min. count", min_value=1, value=1, step=1, key="entity_min")
    out = ents
    if labels:
        out = out[out["label"].isin(labels)]
    if text.strip():
        out = out[out["text"].str.contains(text.strip(), case=False, regex=False)]
    out = out[out["count"] >= min_count]
    st.caption(f"{len(out)} of {len(ents)} entities · {int(out['count'].sum())} mentions")
    event = st.dataframe(clean_frame(out[["label", "text", "count", "documents"]]), hide_index=True,
                         width="stretch", key="entity_table", on_select="rerun", selection_mode="single-row",
                         column_config={"count": st.column_config.NumberColumn("count"),
                                        "documents": st.column_config.NumberColumn("documents")})
    rows = list(getattr(getattr(event, "selection", None), "rows", None) or [])
    if rows:
        picked = out.iloc[rows[0]]
        st.markdown(f"**Where “{picked['text']}” ({picked['label']}) occurs**")
        occurrences(picked["label"], picked["text"], list(picked["sources"]), st.session_state.get("_names", {}))
    else:
        st.caption("Select a row to see where the entity occurs.")
    return out


def insights_tab(ents: pd.DataFrame, docs: list[dict], sources: list[str]) -> None:
    if st.toggle("Hide numbers (cardinal, ordinal, quantity, percent, money)", value=True, key="hide_numbers") \
            and not ents.empty:
        ents = ents[~ents["label"].isin(charts.NUMERIC_LABELS)]
    left, right = st.columns(2)
    if not ents.empty:
        left.altair_chart(charts.labels_chart(charts.label_counts(ents)), width="stretch")
        right.altair_chart(charts.top_entities_chart(charts.top_entities(ents)), width="stretch")
    else:
        left.info("No entities to chart.")
    left.altair_chart(charts.documents_chart(charts.documents_frame(docs)), width="stretch")
    with guard("Reading chunk entities"):
        chunk_entities = [h.entities for src in sources[:MAX_COOCCURRENCE_DOCS] for h in rag().show(src)]
        keep = {entity_key(lab, text) for lab, text in zip(ents["label"], ents["text"])} if not ents.empty else set()
        chunk_entities = [[e for e in es if entity_key(e.get("label", ""), str(e.get("text", ""))) in keep]
                          for es in chunk_entities]
        pairs = charts.cooccurrence(chunk_entities)
        if pairs.empty:
            right.info("No two entities share a chunk.")
        else:
            right.altair_chart(charts.cooccurrence_chart(pairs), width="stretch")
    timeline = charts.date_timeline(ents)
    if timeline.empty:
        st.caption("No date in these documents names a year, so there is no timeline.")
    else:
        st.altair_chart(charts.timeline_chart(timeline), width="stretch")


def main() -> None:
    st.title("Analysis")
    docs = documents_or_empty_state()
    if docs is None:
        return
    names = {d["source"]: d["file_name"] for d in docs}
    st.session_state["_names"] = names
    chosen = st.multiselect("Documents", list(names), format_func=lambda s: names[s], key="analysis_docs",
                            placeholder="All documents")
    sources = chosen or list(names)
    selected_docs = [d for d in docs if d["source"] in sources]
    ents = charts.entity_frame([])
    with guard("Reading entities"):
        ents = entity_table(sources, all_selected=not chosen)

    t_ins, t_ent, t_sum = st.tabs(["Insights", "Entities", "Summary"])
    with t_ent:
        filtered = entities_tab(ents)
    with t_ins:
        insights_tab(filtered, selected_docs, sources)
    with t_sum:
        summary_tab(sources, names)


main()
