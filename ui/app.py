"""docrag's Streamlit app: ``make run`` (``python -m ui.run``: holds the store, then ``streamlit run ui/app.py``).

Pages (``ui/views/``): Chat (the default, also served at ``/chat``), Add documents, Library, Analysis, Models.
Every page talks to the cached ``DocRAG`` of the session's collection (``ui.common.rag()``), the same Python API
the CLI uses. The sidebar picks the collection (workspace) for every page.

``?q=<question>`` opens the chat page and asks that question once on load (used by the browser test and
handy for bookmarks); ``?c=<id>`` opens a stored conversation (the chat page keeps it in the URL, so a
reload returns to it).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` puts ui/ on sys.path, not the repository root
    sys.path.insert(0, str(ROOT))

import ingest.offline  # noqa: F401 - telemetry off before Streamlit and the libraries load

# isort: split
import streamlit as st

from ui.common import COLLECTION_NAME, DEFAULT_COLLECTION, collections, home

st.set_page_config(page_title="docrag", page_icon=":material/description:", layout="wide")
# no "Deploy" button: this is an offline app, whatever flags it was started with; an older Streamlit that
# cannot set it at run time raises, and the CSS below hides the button
with contextlib.suppress(Exception):
    st.set_option("client.toolbarMode", "viewer")
st.html("<style>[data-testid='stAppDeployButton'],[data-testid='stDeployButton']{display:none!important}</style>")


def collection_picker() -> None:
    """The session's collection (workspace) and a field to create one."""
    names = collections()
    current = st.session_state.get("collection") or DEFAULT_COLLECTION
    if current not in names:
        names.append(current)
    with st.sidebar:
        st.selectbox("Collection", names, index=names.index(current), key="collection_choice",
                     help="Collections keep unrelated document sets apart; each has its own library and chats.")
        if st.session_state.collection_choice != current:
            st.session_state.collection = st.session_state.collection_choice
            for key in ("conversation", "open_chunk", "doc_filter", "analysis_docs"):
                st.session_state.pop(key, None)
            st.query_params.pop("c", None)
            st.rerun()
        with st.popover("New collection", icon=":material/add:"):
            name = st.text_input("Name", key="new_collection", placeholder="letters, digits, - and _")
            if st.button("Create", key="create_collection"):
                if not COLLECTION_NAME.match(name or ""):
                    st.error("Use 1-64 letters, digits, '-' or '_'.")
                else:
                    (Path(home()) / "collections" / name).mkdir(parents=True, exist_ok=True)
                    st.session_state.collection = name
                    st.session_state.pop("conversation", None)
                    st.session_state.pop("collection_choice", None)
                    st.query_params.pop("c", None)
                    st.rerun()


PAGES = Path(__file__).parent / "views"  # not pages/: Streamlit would list that folder before navigation runs
chat = st.Page(PAGES / "chat.py", title="Chat", icon=":material/chat:", url_path="chat")


def start() -> None:
    """``/``: the default page goes to the chat, which has its own address (``/chat``) for bookmarks."""
    st.switch_page(chat, query_params=dict(st.query_params))


nav = st.navigation([
    st.Page(start, title="Start", url_path="start", default=True, visibility="hidden"),
    chat,
    st.Page(PAGES / "add.py", title="Add documents", icon=":material/upload_file:", url_path="add"),
    st.Page(PAGES / "library.py", title="Library", icon=":material/library_books:", url_path="library"),
    st.Page(PAGES / "analysis.py", title="Analysis", icon=":material/insights:", url_path="analysis"),
    st.Page(PAGES / "models.py", title="Models", icon=":material/memory:", url_path="models"),
])
collection_picker()
nav.run()
