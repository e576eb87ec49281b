"""Library: the stored documents, search by name, re-ingest, delete (after a confirmation; an uploaded copy is
removed with it), browse chunks. Internal paths (``<home>/uploads/...``) are never shown: uploads say
"uploaded"; spreadsheets count sheets and presentations slides, not pages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ui.common import (
    clean_frame,
    documents_or_empty_state,
    guard,
    is_upload,
    location,
    page_label,
    page_unit,
    rag,
    remove_upload,
    show_chunk,
)


def flash(message: str, kind: str = "success") -> None:
    """A message shown once on the next run (survives the rerun that refreshes the list)."""
    st.session_state.library_flash = (kind, message)


def length(doc: dict) -> str:
    """``3 pages``, ``2 sheets``, ``12 slides``: the unit the document has."""
    unit = page_unit(doc["source"])
    n = doc["pages"]
    return f"{n} {unit}{'s' if n != 1 else ''}"


def main() -> None:
    st.title("Library")
    kind, message = st.session_state.pop("library_flash", (None, None))
    if message:
        getattr(st, kind)(message)
    docs = documents_or_empty_state()
    if docs is None:
        return

    query = st.text_input("Search by name", key="library_search", placeholder="part of a file name or path")
    q = query.strip().lower()
    shown = [d for d in docs if q in d["file_name"].lower() or (not is_upload(d["source"]) and q in d["source"].lower())]
    st.caption(f"{len(shown)} of {len(docs)} documents · {sum(d['chunks'] for d in docs)} chunks in all")
    if not shown:
        st.info(f"No document name contains “{query}”.")
        return
    table = pd.DataFrame([{"file_name": d["file_name"], "file_type": d["file_type"], "length": length(d),
                           "chunks": d["chunks"], "location": location(d["source"])} for d in shown])
    st.dataframe(clean_frame(table), hide_index=True, width="stretch", key="library_table",
                 column_config={"file_name": st.column_config.TextColumn("name", width="large"),
                                "file_type": "type", "location": st.column_config.TextColumn("from", width="medium")})

    by_source = {d["source"]: d for d in shown}
    src = st.selectbox("Document", list(by_source), key="library_doc",
                       format_func=lambda s: f"{by_source[s]['file_name']} ({location(s)})")
    doc = by_source[src]
    c1, c2, c3 = st.columns(3)
    if c1.button("Re-ingest", key="reingest", help="Parse, chunk and embed the file again from its path"):
        if not Path(src).is_file():
            st.error(f"Cannot re-ingest: {doc['file_name']} is no longer on disk (upload it again instead).")
        else:
            with guard("Re-ingesting"), st.spinner(f"Re-ingesting {doc['file_name']}…"):
                report = rag().ingest([src], force=True)
                if report.failed:
                    st.error(f"Re-ingesting {doc['file_name']} failed: {report.failed[0]['error']}")
                else:
                    i = report.ingested[0]
                    flash(f"Re-ingested {doc['file_name']}: {i['chunks']} chunks, {i['pages']} pages.")
                    st.rerun()
    if c2.button("Delete…", key="delete", help="Remove this document's chunks from the store"):
        st.session_state.confirm_delete = src
    show = c3.toggle("Show chunks", key="show_chunks")

    if st.session_state.get("confirm_delete") == src:
        st.warning(f"Delete **{doc['file_name']}** and its {doc['chunks']} chunks from the library? "
                   + ("Its uploaded copy is removed too." if is_upload(src) else "The file on disk is not touched."))
        y, n = st.columns(2)
        if y.button("Yes, delete", type="primary", key="confirm_delete_yes"):
            st.session_state.pop("confirm_delete", None)
            with guard("Deleting"):
                removed = rag().delete(src)
                copy = remove_upload(src)
                flash(f"Deleted {doc['file_name']} ({removed} chunks{', and its uploaded copy' if copy else ''}).")
                st.rerun()
        if n.button("Cancel", key="confirm_delete_no"):
            st.session_state.pop("confirm_delete", None)
            st.rerun()

    if show:
        with guard("Reading the chunks"):
            for h in rag().show(src):
                with st.expander(f"#{h.chunk_index} · {page_label(h.page, h.pages, h.source)} · {h.title_path or ''}"):
                    show_chunk(h.source, h.file_name, h.page, h.pages, h.text, title_path=h.title_path)


main()
