"""Chat: conversations with your documents that you can check, stop, redo and come back to.

- Each answer streams in; **Stop** (or closing the tab) stops the generator at its next token.
- Follow-ups are made standalone before retrieval (``DocRAG.condense``); the searched question is shown.
- Answers show their confidence, a plain "not in the documents" / "not sure" state, ``[n]`` markers and
  citation buttons that open the passage (evidence span marked) beside the chat, with the PDF page itself.
- Conversations are saved under ``<home>/conversations/<collection>/``; the URL holds the open one (``?c=``),
  so a reload returns to it; the sidebar lists past chats and exports one as Markdown or JSON.
- Settings (top-k, rerank, model, temperature) are this session's own and go with each question; they never
  change the shared service or another tab.

``?q=...`` in the URL asks that question once when the page loads.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from rag import model_registry as reg
from rag.api import Hit
from ui import conversations as convs
from ui.answer import render_answer
from ui.common import (
    GENERATOR_CHOICE,
    ROOT_MODELS,
    collection,
    documents,
    guard,
    home,
    page_label,
    rag,
    show_chunk,
)
from ui.page_view import marked_phrases, render_page

DEFAULT_MODEL_LABEL = "SmolLM2-135M-Instruct (packaged default)"
PANEL_CSS = """<style>
[data-testid="stColumn"]:has(.st-key-passage_panel){position:sticky;top:3.75rem;align-self:flex-start;
 max-height:calc(100vh - 4.5rem);overflow-y:auto}
</style>"""


def gguf_choices(current: str) -> list[str]:
    """Generator choices: the packaged default (``""``), the installed generators of ``docrag models install``
    (by short name) and GGUF files under ``<home>/models`` and ``models/``."""
    found = [r["name"] for r in reg.list_models() if r["installed"] and not r["default"]]
    for folder in (Path(home()) / "models", ROOT_MODELS):
        if folder.is_dir():
            found += sorted(str(p) for p in folder.rglob("*.gguf"))
    choices = ["", *dict.fromkeys(found)]
    if current and current not in choices:
        choices.append(current)
    return choices


def model_label(path: str) -> str:
    if not path:
        return DEFAULT_MODEL_LABEL
    return reg.REGISTRY[path].title if path in reg.REGISTRY else Path(path).name


def _chose_model() -> None:
    st.session_state[GENERATOR_CHOICE] = st.session_state.model


# --- the conversation ----------------------------------------------------------------------------------------
def conversation() -> dict[str, Any]:
    """This session's open conversation: the one in the URL (``?c=``) after a reload, else a new one."""
    conv = st.session_state.get("conversation")
    if conv is None:
        cid = st.query_params.get("c")
        conv = convs.load(home(), collection(), cid) if cid else None
        conv = conv or convs.new_conversation()
        st.session_state.conversation = conv
    return conv


def persist(conv: dict[str, Any]) -> None:
    with guard("Saving the conversation"):
        convs.save(home(), collection(), conv)
        if st.query_params.get("c") != conv["id"]:
            st.query_params["c"] = conv["id"]


def open_conversation(cid: str | None) -> None:
    st.session_state.conversation = (convs.load(home(), collection(), cid) if cid else None) or \
        convs.new_conversation()
    st.session_state.pop("open_chunk", None)
    st.session_state.pop("editing", None)
    if cid:
        st.query_params["c"] = cid
    else:
        st.query_params.pop("c", None)


def regenerate(index: int) -> None:
    """Drop the answer at ``index`` (and anything after) and ask its question again."""
    msgs = st.session_state.conversation["messages"]
    question = msgs[index - 1]["text"] if index > 0 and msgs[index - 1]["role"] == "user" else None
    if question:
        del msgs[index - 1:]
        st.session_state.pending = question


def start_edit(index: int) -> None:
    st.session_state.editing = index


def finish_edit(index: int) -> None:
    text = (st.session_state.get(f"edit-{index}") or "").strip()
    st.session_state.pop("editing", None)
    if text:
        del st.session_state.conversation["messages"][index:]
        st.session_state.pending = text


# --- sidebar -------------------------------------------------------------------------------------------------
def chats_sidebar(conv: dict[str, Any]) -> None:
    with st.sidebar:
        st.subheader("Chats")
        st.button("New chat", key="new_chat", icon=":material/add_comment:", on_click=open_conversation,
                  args=(None,))
        past = convs.list_conversations(home(), collection())
        for c in past[:20]:
            current = c["id"] == conv["id"]
            st.button(("▸ " if current else "") + c["title"][:48], key=f"conv-{c['id']}", disabled=current,
                      on_click=open_conversation, args=(c["id"],), help=f"{c['messages']} messages")
        if conv["messages"]:
            a, b = st.columns(2)
            a.download_button("Markdown", convs.to_markdown(conv), file_name=f"chat-{conv['id']}.md",
                              mime="text/markdown", key="export_md", icon=":material/download:")
            b.download_button("JSON", convs.to_json(conv), file_name=f"chat-{conv['id']}.json",
                              mime="application/json", key="export_json", icon=":material/download:")
            if st.button("Delete this chat", key="delete_chat"):
                convs.delete(home(), collection(), conv["id"])
                open_conversation(None)
                st.rerun()


def settings_sidebar(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """This session's answer settings (session state only); returns the keyword arguments for ``DocRAG.ask``."""
    s = rag().settings
    with st.sidebar:
        st.subheader("Answer settings")
        top_k = st.slider("Passages (top-k)", 1, 20, min(s.top_k, 20), key="top_k",
                          help="How many retrieved chunks the model reads.")
        rerank = st.toggle("Rerank with the cross-encoder", value=s.rerank, key="rerank")
        current = st.session_state.get(GENERATOR_CHOICE, s.generator)  # the Models page may have set it
        choices = gguf_choices(current)
        if st.session_state.get("model") != current:
            st.session_state.model = current
        model = st.selectbox("Model", choices, format_func=model_label, key="model", on_change=_chose_model,
                             help="Installed generators (the Models page) and GGUF files in <home>/models or "
                                  "models/. This tab only.")
        st.caption(f"Model: **{model_label(model)}**")
        temperature = st.slider("Temperature", 0.0, 1.5, float(s.temperature), 0.05, key="temperature",
                                help="0 = deterministic; higher = more varied wording. This tab only.")
        by_source = {doc["source"]: doc["file_name"] for doc in docs}
        chosen = st.multiselect("Only these documents", list(by_source), format_func=lambda x: by_source.get(x, x),
                                key="doc_filter", placeholder="All documents")
    return {"top_k": top_k, "rerank": rerank, "filters": {"source": chosen} if chosen else None,
            "temperature": temperature, "generator": model}


# --- answering -----------------------------------------------------------------------------------------------
ANSWERING = "answer_in_progress"  # session key: an Event set once the running answer has been recorded


def wait_for_interrupted_answer(timeout_s: float = 15.0) -> None:
    """With fast reruns Streamlit starts the next run while the interrupted one is still unwinding: wait until
    that one has recorded its answer as stopped, so this run shows it."""
    running = st.session_state.get(ANSWERING)
    if running is not None and not running.is_set():
        running.wait(timeout_s)


def ask(conv: dict[str, Any], question: str, kwargs: dict[str, Any]) -> None:
    """Ask and stream the answer; a Stop click, a rerun or a closed tab stops it (``AnswerStream.stop``)."""
    done = st.session_state[ANSWERING] = threading.Event()
    try:
        _ask(conv, question, kwargs)
    finally:
        done.set()


def _ask(conv: dict[str, Any], question: str, kwargs: dict[str, Any]) -> None:
    msgs = conv["messages"]
    history = [m["text"] for m in msgs if m["role"] == "user"]
    msgs.append({"role": "user", "text": question})
    persist(conv)
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        stream, text, interrupted = None, "", False
        with guard("Answering"):
            try:  # from the first widget on: a Stop that lands before the search has begun also stops it
                standalone = rag().condense(question, history)
                if standalone != question:
                    st.caption(f"Searched for: {standalone}")
                stop_slot = st.empty()
                stop_slot.button("Stop", key="stop_answer", icon=":material/stop_circle:",
                                 help="Stop this answer (it is kept as stopped; Regenerate asks again)")
                box = st.empty()
                box.markdown("_Searching your documents…_")
                stream = rag().ask(standalone, stream=True, **kwargs)
                for token in stream:
                    text += token
                    box.markdown(text + "▌")
            except BaseException as e:
                interrupted = not isinstance(e, Exception)  # Streamlit's stop/rerun: Stop, a reload, a new click
                raise
            finally:
                if interrupted:  # keep the question answered as "stopped", also when it was still searching
                    if stream is not None:
                        stream.stop()
                    msgs.append({"role": "assistant", "answer": None, "text": text, "stopped": True})
                    persist(conv)
            stop_slot.empty()
            box.empty()
            answer = stream.answer
            if answer is None:  # stopped from elsewhere
                msgs.append({"role": "assistant", "answer": None, "text": text, "stopped": True})
                persist(conv)
                return
            answer.question = question
            msgs.append({"role": "assistant", "answer": answer, "standalone": standalone})
            persist(conv)
            render_answer(len(msgs) - 1, answer)
            message_actions(len(msgs) - 1, last=True)


def message_actions(i: int, last: bool) -> None:
    if last:
        st.button("Regenerate", key=f"regen-{i}", icon=":material/refresh:", on_click=regenerate, args=(i,),
                  type="tertiary")


def show_message(i: int, m: dict[str, Any], last: bool) -> None:
    with st.chat_message(m["role"]):
        if m["role"] == "user":
            if st.session_state.get("editing") == i:
                st.text_area("Edit the question", m["text"], key=f"edit-{i}")
                st.button("Send", key=f"send-{i}", on_click=finish_edit, args=(i,))
            else:
                st.markdown(m["text"])
                st.button("Edit", key=f"editbtn-{i}", icon=":material/edit:", on_click=start_edit, args=(i,),
                          type="tertiary")
            return
        if m.get("answer") is None:
            st.markdown((m.get("text") or "").strip() or "_(no text yet)_")
            st.caption("Stopped before the answer was finished.")
        else:
            if m.get("standalone") and m["standalone"] != m["answer"].question:
                st.caption(f"Searched for: {m['standalone']}")
            render_answer(i, m["answer"])
        message_actions(i, last)


# --- the cited passage ---------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def page_png(source: str, page: int, phrases: tuple[str, ...]) -> bytes:
    img = render_page(source, page, list(phrases))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def passage_panel(chunk: dict[str, Any]) -> None:
    h: Hit = chunk["hit"]
    with st.container(key="passage_panel"):
        head, close = st.columns([4, 1])
        head.subheader("Cited passage" + (f" [{chunk['ref']}]" if chunk.get("ref") else ""))
        if close.button("Close", key="close_chunk"):
            st.session_state.pop("open_chunk", None)
            st.rerun()
        spans = [tuple(s) for s in chunk.get("spans") or []]
        show_chunk(h.source, h.file_name, h.page, h.pages, h.text, chunk["quote"], h.title_path, spans)
        if h.source.lower().endswith(".pdf") and h.page and Path(h.source).is_file():
            with guard("Showing the page"):
                png = page_png(h.source, int(h.page), tuple(marked_phrases(h.text, spans, chunk["quote"])))
                st.html(f'<img class="docrag-page" alt="{h.file_name} page {h.page}" style="width:100%;'
                        f'border:1px solid #ddd" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
                st.caption(f"{h.file_name} · {page_label(h.page, h.pages, h.source)}, the passage marked")
        else:
            with guard("Reading the context"), st.expander("In context", expanded=True):
                chunks = rag().show(h.source)
                idx = next((k for k, c in enumerate(chunks) if c.chunk_id == h.chunk_id), None)
                for c in chunks[max(0, (idx or 0) - 1): (idx or 0) + 2] if idx is not None else []:
                    if c.chunk_id == h.chunk_id:
                        st.markdown("**▸ the cited element**")
                    else:
                        st.caption(" ".join(c.text.split())[:600])


def main() -> None:
    wait_for_interrupted_answer()
    conv = conversation()
    docs = documents() or []
    chats_sidebar(conv)
    kwargs = settings_sidebar(docs)
    st.html(PANEL_CSS)

    st.title("Ask your documents")
    if not docs:
        st.info("The library is empty: add documents first.", icon=":material/upload_file:")
        st.page_link("views/add.py", label="Add documents", icon=":material/upload_file:")

    chunk = st.session_state.get("open_chunk")
    chat_col, chunk_col = st.columns([3, 2]) if chunk else (st.container(), None)
    msgs = conv["messages"]
    with chat_col:
        for i, m in enumerate(msgs):
            show_message(i, m, last=i == len(msgs) - 1)
    if chunk_col is not None:
        with chunk_col:
            passage_panel(chunk)

    limit = rag().settings.max_question_chars
    question = st.chat_input(f"Ask a question about your documents (up to {limit:,} characters)", key="question",
                             max_chars=limit)
    from_url = st.query_params.get("q")
    if not question and from_url and st.session_state.get("asked_from_url") != from_url:
        st.session_state.asked_from_url = from_url
        st.query_params.pop("q", None)  # asked once: a reload must not ask it again
        question = from_url
    if not question:
        question = st.session_state.pop("pending", None)
    if question and question.strip():
        with chat_col:
            ask(conv, question.strip(), kwargs)


main()
