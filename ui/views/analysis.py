"""Analysis of one or several documents: summaries (T5 or the GGUF model), an entity table with counts and
filters, and insight charts (entity types, top entities, documents by pages/chunks, co-occurrence, DATE
timeline).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui import charts
from ui.common import documents, guard, rag

MAX_COOCCURRENCE_DOCS = 25  # chunk-level entity reads per selected document; keep the page responsive


def entity_table(sources: list[str], all_selected: bool) -> pd.DataFrame:
    d = rag()
    if all_selected:
        return charts.entity_frame(d.entities())
    return charts.merge_entities(charts.entity_frame(d.entities(src)) for src in sources)


def summary_tab(sources: list[str], names: dict[str, str]) -> None:
    summaries = st.session_state.setdefault("summaries", {})
    st.caption(f"Summaries use {'the configured T5 summarizer' if rag().settings.summarizer else 'the GGUF model'}; "
               "a long document takes a while on CPU.")
    if st.button(f"Summarize {len(sources)} document{'s' if len(sources) != 1 else ''}", key="summarize",
                 type="primary", disabled=not sources):
        for src in sources:
            with guard(f"Summarizing {names[src]}"), st.spinner(f"Summarizing {names[src]}…"):
                summaries[src] = rag().summarize(src)
    for src in sources:
        s = summaries.get(src)
        if s is not None:
            st.markdown(f"#### {names[src]}")
            st.write(s.text or "_(empty summary)_")
            st.caption(f"{s.backend} · {s.model.split('/')[-1]} · {s.parts} part(s) · {s.seconds:.1f} s")


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
    st.dataframe(out[["label", "text", "count", "documents"]], hide_index=True, width="stretch",
                 column_config={"count": st.column_config.NumberColumn("count"),
                                "documents": st.column_config.NumberColumn("documents")})
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
        keep = set(zip(ents["label"], ents["text"])) if not ents.empty else set()
        chunk_entities = [[e for e in es if (e.get("label"), " ".join(str(e.get("text", "")).split())) in keep]
                          for es in chunk_entities]
        pairs = charts.cooccurrence(chunk_entities)
        if pairs.empty:
            right.info("No two entities share a chunk.")
        else:
            right.altair_chart(charts.cooccurrence_chart(pairs), width="stretch")
    timeline = charts.date_timeline(ents)
    if timeline.empty:
        st.caption("No DATE entity names a year, so there is no timeline.")
    else:
        st.altair_chart(charts.timeline_chart(timeline), width="stretch")


def main() -> None:
    st.title("Analysis")
    docs = documents()
    if docs is None:
        return
    if not docs:
        st.info("No documents yet.", icon=":material/upload_file:")
        st.page_link("views/add.py", label="Add documents", icon=":material/upload_file:")
        return
    names = {d["source"]: d["file_name"] for d in docs}
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
