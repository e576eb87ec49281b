"""Add documents: upload several files (drag and drop) or ingest a folder path; a progress bar and a result
per file (chunks, pages, unchanged, failed in red with the whole reason). Uploads are sanitised and validated
(``ui.uploads``) before anything is written under ``<home>/uploads/``. A password field opens encrypted PDFs.
Adding from a URL is out of scope: docrag runs offline.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ingest.filetypes import SUPPORTED_EXTENSIONS
from rag.api import DocRAG, IngestReport
from ui.common import clean_frame, guard, rag
from ui.uploads import UploadError, UploadFolder

RESULT_COLUMNS = ["file", "status", "chunks", "pages", "details"]


def result_rows(report: IngestReport, names: dict[str, str]) -> list[dict[str, Any]]:
    """One row per file of an ingest report; ``names`` maps a source to the name the user knows."""
    warn: dict[str, list[str]] = {}
    for w in report.warnings:
        warn.setdefault(w.get("source", ""), []).append(w.get("warning", ""))

    def name(src: str) -> str:
        return names.get(src, Path(src).name)

    rows = [{"file": name(i["source"]), "status": "ingested", "chunks": i["chunks"], "pages": i["pages"],
             "details": "; ".join(warn.get(i["source"], []))} for i in report.ingested]
    rows += [{"file": name(s), "status": "unchanged", "chunks": None, "pages": None,
              "details": "already in the library (tick 'Re-ingest' to force)"} for s in report.unchanged]
    rows += [{"file": name(f["source"]), "status": "failed", "chunks": None, "pages": None,
              "details": for_the_app(f["error"])} for f in report.failed]
    return rows


def for_the_app(error: str) -> str:
    """An ingest error worded for the app: the CLI's ``--password`` hint becomes the password field."""
    if "password" in error.lower():
        cli_hint = error.lower().find("pass it with")
        error = (error[:cli_hint].rstrip(" ;,(") if cli_hint > 0 else error.rstrip(". "))
        return error + ". Enter it under 'Password for encrypted PDFs' and ingest the file again."
    return error


def run_ingest(paths: list[Path], names: dict[str, str], force: bool,
               password: str = "") -> tuple[list[dict[str, Any]], str, list[dict[str, str]]] | None:
    """Ingest ``paths`` with a progress bar per file; returns the result rows, a summary line, the failures."""
    d = rag()
    files, _ = DocRAG.expand_paths([str(p) for p in paths])
    if not files and all(Path(p).exists() for p in paths):
        st.warning("Nothing to ingest: the folder holds no files.")
        return None
    slots = {str(f): st.empty() for f in files}
    bars = {src: slot.progress(0.0, text=f"{names.get(src, Path(src).name)} · waiting") for src, slot in slots.items()}
    order = list(bars)
    if order:
        bars[order[0]].progress(0.1, text=f"{names.get(order[0], Path(order[0]).name)} · reading…")

    def progress(done: int, total: int, src: str) -> None:
        if src in bars:
            bars[src].progress(1.0, text=f"{names.get(src, Path(src).name)} · done ({done}/{total})")
        if done < len(order):
            nxt = order[done]
            bars[nxt].progress(0.1, text=f"{names.get(nxt, Path(nxt).name)} · reading…")

    report = None
    with guard("Ingesting"):
        report = d.ingest([str(p) for p in paths], progress=progress, force=force,
                          passwords={"*": password} if password else None)
    if report is None:
        return None
    for f in report.failed:  # a failed file is red, not a full (blue) bar
        if f["source"] in slots:
            slots[f["source"]].error(f"{names.get(f['source'], Path(f['source']).name)} · failed: "
                                     f"{for_the_app(f['error'])}", icon=":material/error:")
    s = report.to_dict()["summary"]
    summary = (f"{s['ingested']} ingested ({s['chunks']} chunks, {s['pages']} pages), {s['unchanged']} unchanged, "
               f"{s['failed']} failed in {s['seconds']:.1f} s")
    return result_rows(report, names), summary, report.failed


def show_results() -> None:
    last = st.session_state.get("ingest_results")
    if not last:
        return
    rows, summary = last
    failed = sum(r["status"] in ("failed", "refused") for r in rows)
    (st.warning if failed else st.success)(summary)
    st.dataframe(clean_frame(pd.DataFrame(rows, columns=RESULT_COLUMNS)), hide_index=True, width="stretch",
                 key="ingest_table", column_config={"details": st.column_config.TextColumn("details", width="large")})
    for r in rows:  # the whole reason, never cut off by the table
        if r["status"] in ("failed", "refused") and len(str(r["details"])) > 60:
            st.caption(f"**{r['file']}** {r['status']}: {r['details']}")


def upload_tab() -> None:
    d = rag()
    max_mb = d.settings.max_upload_mb
    n = st.session_state.setdefault("uploader_gen", 0)
    files = st.file_uploader("Drop files here, several at once", accept_multiple_files=True, key=f"uploader-{n}",
                             max_upload_size=max(1, math.ceil(max_mb)),
                             help=f"Up to {max_mb:g} MB each (DOCRAG_MAX_UPLOAD_MB). Supported: "
                                  + ", ".join(sorted(SUPPORTED_EXTENSIONS)))
    force = st.checkbox("Re-ingest even if unchanged", key="force_upload")
    password = st.text_input("Password for encrypted PDFs", type="password", key="upload_password",
                             help="Used for every encrypted PDF of this batch; never stored.")
    if st.button("Ingest uploaded files", type="primary", disabled=not files, key="ingest_uploads"):
        folder = UploadFolder(Path(d.settings.home) / "uploads", d.settings.upload_quota_mb)
        rows: list[dict[str, Any]] = []
        with folder.lock:
            try:
                staged, bad = folder.stage([(f.name, f.getvalue()) for f in files or []], max_mb)
            except (UploadError, OSError) as e:
                staged, bad = [], [{"file_name": f.name, "error": f"could not be saved: {e}"} for f in files]
            refused = [{"file": b["file_name"], "status": "refused", "chunks": None, "pages": None,
                        "details": b["error"]} for b in bad]
            for r in refused:
                st.error(f"{r['file']}: refused, {r['details']}")
            summary = f"{len(refused)} refused"
            names = {str(s.path): s.original_name for s in staged}
            out = run_ingest([s.path for s in staged], names, force, password) if staged else None
            failed = {r["source"] for r in out[2]} if out else {str(s.path) for s in staged}
            folder.settle(staged, failed)
            if out:
                rows, summary = out[0], out[1]
                replaced = {s.original_name for s in staged if s.replaced}
                for row in rows:
                    if row["file"] in replaced and row["status"] == "ingested":
                        row["details"] = "; ".join(x for x in ("replaced the earlier upload", row["details"]) if x)
                summary += f", {len(refused)} refused" if refused else ""
        st.session_state.ingest_results = (rows + refused, summary)
        st.session_state.uploader_gen = n + 1  # a fresh, empty uploader for the next batch


def path_tab() -> None:
    path = st.text_input("Folder or file path on this machine", key="ingest_path",
                         placeholder="/data/contracts or ~/Documents/report.pdf")
    force = st.checkbox("Re-ingest even if unchanged", key="force_path")
    password = st.text_input("Password for encrypted PDFs", type="password", key="path_password")
    if st.button("Ingest path", type="primary", key="ingest_path_button"):
        p = Path(path.strip()).expanduser() if path.strip() else None
        if p is None:
            st.error("Enter a folder or file path first.")
        elif not p.exists():
            st.error(f"{p} does not exist (check the path; it is read on the machine running the app).")
        else:
            out = run_ingest([p.resolve()], {}, force, password)
            if out:
                st.session_state.ingest_results = out[:2]


def main() -> None:
    st.title("Add documents")
    st.caption("Upload files or give a folder on this machine. Adding from a URL is out of scope: docrag runs "
               "offline and never fetches anything from the network.")
    up, folder = st.tabs(["Upload files", "Folder path"])
    with up:
        upload_tab()
    with folder:
        path_tab()
    show_results()


main()
