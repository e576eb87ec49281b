"""What every page shares: the cached ``DocRAG`` of each collection, error messages instead of tracebacks,
small renderers (highlighted chunks, page labels, clean table cells) and what hides internal paths.

The embedded Qdrant store is a folder that one process locks, so the app holds exactly ONE ``DocRAG`` per
collection per process (``st.cache_resource`` keyed on the home folder and the collection) and every page and
session goes through it. Per-session choices (temperature, model, top-k) live in ``st.session_state`` and are
passed to each call; nothing a session picks changes the shared service.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from rag.api import DocRAG
from rag.config import Settings
from rag.errors import ConfigError, DocragError, ModelNotFoundError, StoreError
from rag.types import page_label, page_unit  # noqa: F401 (re-exported for the views)

logger = logging.getLogger(__name__)

DEFAULT_HOME = ".docrag"
ROOT_MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT_COLLECTION = "docrag"
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
GENERATOR_CHOICE = "generator_choice"  # session key: this tab's generator ("" = packaged default; Chat, Models)


def home() -> str:
    """The docrag home folder: ``DOCRAG_HOME`` or ``.docrag`` (made absolute)."""
    return str(Settings.load().home.expanduser().resolve())  # Settings is the only reader of DOCRAG_HOME


APP_OWNER = "docrag app"


@st.cache_resource(show_spinner=False)
def get_rag(home_dir: str, collection: str | None = None) -> DocRAG:
    """The process-wide service of one collection: the ``DocRAG`` of this process's collection registry
    (:func:`rag.server.owner.hold_in_process`), the same objects the app's local HTTP service answers the CLI
    with, so the CLI's ``ingest``/``list`` while the app holds the embedded store land in this library.
    Every collection is a shard of the home's one store (``<home>/qdrant``), as for the CLI and ``docrag serve``.
    """
    from rag.server import owner

    registry = owner.hold_in_process(Settings.load(home=home_dir), by=APP_OWNER)
    return registry.get(collection or registry.settings.collection).rag


def collection() -> str:
    """This session's collection (workspace); the sidebar switches it."""
    return st.session_state.get("collection") or DEFAULT_COLLECTION


def collections() -> list[str]:
    """The default collection plus every workspace created in the app (folders under ``<home>/collections``)
    and every collection of the home's embedded store (made by the CLI's ``--collection`` or ``docrag serve``)."""
    from ingest.store import embedded_collections

    folder = Path(home()) / "collections"
    found = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
    found |= {c for c in embedded_collections(Settings.load().store_path) if COLLECTION_NAME.match(c)}
    return [DEFAULT_COLLECTION, *sorted(c for c in found if c != DEFAULT_COLLECTION)]


def rag() -> DocRAG:
    c = collection()
    return get_rag(home()) if c == DEFAULT_COLLECTION else get_rag(home(), c)  # one cache entry for the default


def uploads_dir() -> Path:
    """Where the app saves uploads: ``<home>/uploads`` (default collection) or ``<home>/uploads/<collection>``."""
    base = Path(home()) / "uploads"
    return base if collection() == DEFAULT_COLLECTION else base / collection()


def is_upload(source: str) -> bool:
    """True when the app itself saved this file (under ``<home>/uploads``): its path is internal."""
    try:
        return Path(source).resolve().is_relative_to((Path(home()) / "uploads").resolve())
    except (OSError, ValueError):
        return False


def location(source: str) -> str:
    """Where a document came from, for people: "uploaded" for the app's own copies, else its folder."""
    return "uploaded" if is_upload(source) else str(Path(source).parent)


def remove_upload(source: str) -> bool:
    """Delete the app's uploaded copy of a deleted document (never a file the user ingested by path)."""
    p = Path(source)
    if is_upload(source) and p.is_file():
        p.unlink()
        return True
    return False


def clean_cell(value: Any) -> Any:
    """A table cell without ``None``/``nan`` and without line breaks (headers from PDFs and sheets hold them)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return " ".join(value.replace("\\n", " ").split())
    return value


def clean_frame(df: Any) -> Any:
    """A DataFrame for display: clean column names and text cells (see :func:`clean_cell`)."""
    df = df.rename(columns=lambda c: clean_cell(str(c)))
    return df.apply(lambda col: col.map(clean_cell) if col.dtype == object else col)


def error_message(e: BaseException, action: str) -> str:
    """A user-facing message for an exception: what failed and, for our errors, how to fix it."""
    if isinstance(e, StoreError):
        return f"The document store is unavailable. {e}"
    if isinstance(e, ModelNotFoundError):
        return f"A model is unavailable. {e}"
    if isinstance(e, ConfigError):
        return f"The configuration is invalid. {e}"
    if isinstance(e, DocragError):
        return f"{action} failed: {e}"
    return f"{action} failed unexpectedly ({type(e).__name__}: {e}). See the server log for details."


@contextmanager
def guard(action: str) -> Iterator[None]:
    """Show errors as an ``st.error`` message, never a traceback. Streamlit's stop/rerun pass through."""
    try:
        yield
    except Exception as e:
        if not isinstance(e, DocragError):
            logger.exception("%s failed", action)
        st.error(error_message(e, action), icon=":material/error:")


def documents() -> list[dict[str, Any]] | None:
    """The stored documents, or None (with an error shown) when the store cannot be read."""
    with guard("Listing documents"):
        return rag().list_documents()
    return None


def documents_or_empty_state() -> list[dict[str, Any]] | None:
    """The stored documents; None when there are none (a link to Add documents is shown) or the store cannot be
    read (the error is shown)."""
    docs = documents()
    if docs is None:
        return None
    if not docs:
        st.info("No documents yet.", icon=":material/upload_file:")
        st.page_link("views/add.py", label="Add documents", icon=":material/upload_file:")
        return None
    return docs


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``[start, end)`` so it neither starts nor stops inside a word (no "Total, a" highlights)."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    while 0 < start < len(text) and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while 0 < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end


def _marked(text: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for s, e in sorted(spans):
        if s < pos or e <= s:
            continue
        out += [html.escape(text[pos:s]), "<mark>", html.escape(text[s:e]), "</mark>"]
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Offsets of ``quote`` in ``text``, case- and whitespace-insensitively; else of its longest sentence-like
    part that is found (at least two words); None when nothing matches."""
    if not quote or not quote.strip():
        return None
    candidates = [quote] + sorted(re.split(r"(?<=[.!?;])\s+|\s*\.\.\.\s*|…", quote), key=len, reverse=True)
    for cand in candidates:
        words = cand.split()
        if not words or (len(words) < 2 and cand is not quote):
            continue
        m = re.search(r"\s+".join(re.escape(w) for w in words), text, flags=re.IGNORECASE)
        if m:
            return m.start(), m.end()
    return None


def highlight(text: str, quote: str = "", spans: list[tuple[int, int]] | None = None) -> str:
    """HTML for a chunk with the evidence marked (``<mark>``). Everything is escaped; only the marks and line
    breaks are HTML.

    :param spans: exact ``(start, end)`` character offsets (``Evidence.start/end``, ``Citation.start/end``);
        used when given and valid, widened to whole words.
    :param quote: else the quoted text, matched case- and whitespace-insensitively (see :func:`find_quote`).
    """
    valid = [snap_to_words(text, s, e) for s, e in (spans or []) if 0 <= s < e <= len(text)]
    if not valid:
        found = find_quote(text, quote)
        valid = [found] if found else []
    return _marked(text, valid)


def show_chunk(source: str, file_name: str, page: int | None, pages: list[int], text: str, quote: str = "",
               title_path: str = "", spans: list[tuple[int, int]] | None = None) -> None:
    """The cited chunk: its file and page (never an internal path), then the text with the evidence marked."""
    st.markdown(f"**{file_name or Path(source).name}** · {page_label(page, pages, source)}")
    where = "" if is_upload(source) else source
    caption = " · ".join(x for x in (where, title_path) if x)
    if caption:
        st.caption(caption)
    st.html(f'<div class="docrag-chunk" style="font-size:0.95rem;line-height:1.5;'
            f'border-left:3px solid #f0b429;padding-left:0.75rem">{highlight(text, quote, spans)}</div>')
