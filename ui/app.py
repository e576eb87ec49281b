"""docrag's Streamlit app: ``make run`` (``streamlit run ui/app.py``).

Pages (``ui/views/``): Chat (default), Add documents, Library, Analysis. Every page talks to the one
cached ``DocRAG`` (``ui.common.rag()``), the same Python API the CLI uses.

``?q=<question>`` opens the chat page and asks that question once on load (used by the browser test and
handy for bookmarks).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` puts ui/ on sys.path, not the repository root
    sys.path.insert(0, str(ROOT))

import ingest.offline  # noqa: F401 - telemetry off before Streamlit and the libraries load

# isort: split
import streamlit as st

st.set_page_config(page_title="docrag", page_icon=":material/description:", layout="wide")

PAGES = Path(__file__).parent / "views"  # not pages/: Streamlit would list that folder before navigation runs
nav = st.navigation([
    st.Page(PAGES / "chat.py", title="Chat", icon=":material/chat:", url_path="chat", default=True),
    st.Page(PAGES / "add.py", title="Add documents", icon=":material/upload_file:", url_path="add"),
    st.Page(PAGES / "library.py", title="Library", icon=":material/library_books:", url_path="library"),
    st.Page(PAGES / "analysis.py", title="Analysis", icon=":material/insights:", url_path="analysis"),
])
nav.run()
