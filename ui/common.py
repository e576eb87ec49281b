"""What every page shares: the one cached ``DocRAG``, error messages instead of tracebacks, small renderers.

The embedded Qdrant store is a folder that one process locks, so the app holds exactly ONE ``DocRAG`` per
process (``st.cache_resource`` keyed on the home folder) and every page and session goes through it.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from rag.api import DocRAG
from rag.config import Settings
from rag.errors import ConfigError, DocragError, ModelNotFoundError, StoreError

logger = logging.getLogger(__name__)

DEFAULT_HOME = ".docrag"
ROOT_MODELS = Path(__file__).resolve().parents[1] / "models"


def home() -> str:
    """The docrag home folder: ``DOCRAG_HOME`` or ``.docrag`` (made absolute)."""
    return str(Settings.load().home.expanduser().resolve())  # Settings is the only reader of DOCRAG_HOME


@st.cache_resource(show_spinner=False)
def get_rag(home_dir: str) -> DocRAG:
    """The process-wide service. Building it loads nothing; the store opens on first use."""
    return DocRAG(home=home_dir)


def rag() -> DocRAG:
    return get_rag(home())


def set_generation(d: DocRAG, temperature: float, generator: str) -> bool:
    """Apply generation settings chosen in the app to the shared service; returns True when they changed.

    The query graph bakes temperature and the GGUF file into its generator, so changing them drops the
    cached ``query`` graphs and the LLM summarizer (rebuilt on next use). Retrieval graphs and the store
    are kept: all sessions share one embedded store. The change applies to every session of this process
    (there is one service), which is what a single-user desktop app wants.
    """
    s = d.settings
    if s.temperature == temperature and s.generator == generator:
        return False
    d.update_settings(temperature=temperature, generator=generator)
    return True


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


def _norm_ws(s: str) -> str:
    return " ".join(s.split())


def highlight(text: str, quote: str) -> str:
    """HTML for a chunk with ``quote`` marked (``<mark>``), matched case- and whitespace-insensitively.

    Everything is escaped; only the ``<mark>`` tags and line breaks are HTML. When the quote is not
    found verbatim, its longest sentence-like part that is found is marked instead.
    """
    if not quote or not quote.strip():
        return html.escape(text).replace("\n", "<br>")
    candidates = [quote] + sorted(re.split(r"(?<=[.!?;])\s+|\s*\.\.\.\s*|…", quote), key=len, reverse=True)
    for cand in candidates:
        words = cand.split()
        if len(words) < 2 and cand is not quote:
            continue
        if not words:
            continue
        pattern = r"\s+".join(re.escape(w) for w in words)
        m = re.search(pattern, text, flags=re.IGNORECASE)
        if m:
            before, hit, after = text[: m.start()], text[m.start(): m.end()], text[m.end():]
            out = f"{html.escape(before)}<mark>{html.escape(hit)}</mark>{html.escape(after)}"
            return out.replace("\n", "<br>")
    return html.escape(text).replace("\n", "<br>")


def page_label(page: int | None, pages: list[int] | None = None) -> str:
    pages = sorted(set(pages or ([page] if page else [])))
    if not pages:
        return "no page"
    if len(pages) == 1:
        return f"page {pages[0]}"
    return f"pages {pages[0]}–{pages[-1]}"


def show_chunk(source: str, file_name: str, page: int | None, pages: list[int], text: str, quote: str = "",
               title_path: str = "") -> None:
    """The cited chunk: its source and page, then the text with the quoted span highlighted."""
    st.markdown(f"**{file_name or Path(source).name}** · {page_label(page, pages)}")
    st.caption(source + (f" · {title_path}" if title_path else ""))
    st.html(f'<div class="docrag-chunk" style="font-size:0.95rem;line-height:1.5;'
            f'border-left:3px solid #f0b429;padding-left:0.75rem">{highlight(text, quote)}</div>')

