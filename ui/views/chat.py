"""Chat: ask questions, watch the answer stream in, open each citation on its highlighted chunk.

Settings in the sidebar: top-k, rerank, model (GGUF), temperature and a document filter. ``?q=...`` in the
URL asks that question once when the page loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from rag.api import Hit
from ui.answer import render_answer
from ui.common import ROOT_MODELS, documents, guard, home, rag, set_generation, show_chunk

DEFAULT_MODEL_LABEL = "SmolLM2-135M-Instruct (packaged default)"


def gguf_choices(current: str) -> list[str]:
    """Generator choices: the packaged default (``""``), GGUF files under ``<home>/models`` and ``models/``."""
    found: list[str] = []
    for folder in (Path(home()) / "models", ROOT_MODELS):
        if folder.is_dir():
            found += sorted(str(p) for p in folder.rglob("*.gguf"))
    choices = ["", *dict.fromkeys(found)]
    if current and current not in choices:
        choices.append(current)
    return choices


def sidebar(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer settings; returns the keyword arguments for ``DocRAG.ask``."""
    d = rag()
    s = d.settings
    with st.sidebar:
        st.subheader("Answer settings")
        top_k = st.slider("Passages (top-k)", 1, 20, min(s.top_k, 20), key="top_k",
                          help="How many retrieved chunks the model reads.")
        rerank = st.toggle("Rerank with the cross-encoder", value=s.rerank, key="rerank")
        choices = gguf_choices(s.generator)
        model = st.selectbox("Model", choices, index=choices.index(s.generator) if s.generator in choices else 0,
                             format_func=lambda p: DEFAULT_MODEL_LABEL if not p else Path(p).name, key="model",
                             help="GGUF files in <home>/models or models/ are listed here.")
        temperature = st.slider("Temperature", 0.0, 1.5, float(s.temperature), 0.05, key="temperature",
                                help="0 = deterministic; higher = more varied wording.")
        by_source = {doc["source"]: doc["file_name"] for doc in docs}
        chosen = st.multiselect("Only these documents", list(by_source), format_func=lambda x: by_source.get(x, x),
                                key="doc_filter", placeholder="All documents")
        if st.button("Clear chat", key="clear_chat"):
            st.session_state.messages = []
            st.session_state.pop("open_chunk", None)
    with guard("Changing the model settings"):
        set_generation(d, temperature, model)
    return {"top_k": top_k, "rerank": rerank, "filters": {"source": chosen} if chosen else None}


def ask(question: str, kwargs: dict[str, Any]) -> None:
    """Ask and stream the answer into an assistant message; the finished Answer joins the history."""
    st.session_state.messages.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"), guard("Answering"):
        box = st.empty()
        box.markdown("_Searching your documents…_")
        stream = rag().ask(question, stream=True, **kwargs)
        text = ""
        for token in stream:
            text += token
            box.markdown(text + "▌")
        box.empty()
        answer = stream.answer
        st.session_state.messages.append({"role": "assistant", "answer": answer})
        render_answer(len(st.session_state.messages) - 1, answer)


def main() -> None:
    st.session_state.setdefault("messages", [])
    docs = documents() or []
    kwargs = sidebar(docs)

    st.title("Ask your documents")
    if not docs:
        st.info("The library is empty: add documents first.", icon=":material/upload_file:")
        st.page_link("views/add.py", label="Add documents", icon=":material/upload_file:")

    chunk = st.session_state.get("open_chunk")
    chat_col, chunk_col = st.columns([3, 2]) if chunk else (st.container(), None)
    with chat_col:
        for i, m in enumerate(st.session_state.messages):
            with st.chat_message(m["role"]):
                if m["role"] == "user":
                    st.markdown(m["text"])
                else:
                    render_answer(i, m["answer"])
    if chunk_col is not None:
        with chunk_col:
            st.subheader("Cited passage")
            h: Hit = chunk["hit"]
            show_chunk(h.source, h.file_name, h.page, h.pages, h.text, chunk["quote"], h.title_path)
            if st.button("Close", key="close_chunk"):
                st.session_state.pop("open_chunk", None)
                st.rerun()

    question = st.chat_input("Ask a question about your documents", key="question")
    from_url = st.query_params.get("q")
    if not question and from_url and st.session_state.get("asked_from_url") != from_url:
        st.session_state.asked_from_url = from_url
        question = from_url
    if question and question.strip():
        with chat_col:
            ask(question.strip(), kwargs)


main()
