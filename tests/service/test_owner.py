"""One process owns the embedded store, the others go through it: `docrag serve` (or the Streamlit app, `make
run`) running, the CLI ingests and lists, the owner has the document (the CLI finds the store locked and talks to
the owner over HTTP)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENV = {"DOCRAG_EXTRACT_ENTITIES": "0", "DOCRAG_RERANK": "0", "DOCRAG_CHUNK_SIZE": "60", "DOCRAG_CHUNK_OVERLAP": "10"}


def _wait_for_owner(home: Path, proc: subprocess.Popen) -> dict:
    """The owner file the process writes once it holds the store and serves HTTP (its /health answering)."""
    from rag.server.client import DocRAGClient

    owner_file = home / "qdrant" / "owner.json"
    deadline = time.time() + 180
    while time.time() < deadline and not owner_file.exists() and proc.poll() is None:
        time.sleep(0.3)
    assert owner_file.exists(), proc.stderr.read() if proc.poll() is not None else "no owner file"
    owner = json.loads(owner_file.read_text())
    client = DocRAGClient(owner["url"], key=owner["key"])
    while time.time() < deadline:
        try:
            client.health()
            break
        except Exception:  # noqa: BLE001 - uvicorn still starting
            time.sleep(0.3)
    return owner


def _cli_ingest_and_list(tmp_path: Path, home: Path, env: dict, owner: dict) -> list[dict]:
    """``docrag ingest`` + ``docrag list --json`` from another process; returns what the owner itself lists."""
    from rag.server.client import DocRAGClient

    note = tmp_path / "lighthouse.txt"
    note.write_text("The Quillon Lighthouse stands on Gannet Point. It was first lit in 1903.\n")
    run = subprocess.run([sys.executable, "-m", "rag.cli", "--home", str(home), "ingest", str(note), "--json",
                          "-q"], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert f"held by `{owner['by']}`" in run.stderr and "going through" in run.stderr
    assert json.loads(run.stdout)["summary"]["ingested"] == 1
    listed = subprocess.run([sys.executable, "-m", "rag.cli", "--home", str(home), "list", "--json"], check=False,
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr
    assert [Path(d["source"]).name for d in json.loads(listed.stdout)] == ["lighthouse.txt"]
    return DocRAGClient(owner["url"], key=owner["key"]).list_documents()


def test_cli_goes_through_the_running_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "DOCRAG_API_KEYS": "alpha:" + "a" * 32, **ENV}
    server = subprocess.Popen([sys.executable, "-m", "rag.service", "--home", str(home), "--port", str(_port()),
                               "--log-level", "warning"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        owner = _wait_for_owner(home, server)
        assert owner["by"] == "docrag serve"
        served = _cli_ingest_and_list(tmp_path, home, env, owner)
        assert [Path(d["source"]).name for d in served] == ["lighthouse.txt"]  # the server has it
    finally:
        server.terminate()
        server.wait(timeout=60)
    from rag.config import Settings
    from rag.server import owner as owner_mod

    assert owner_mod.read(Settings(home=home)) is None  # a stopped owner is never used (its pid is gone)


def test_cli_goes_through_the_running_app(tmp_path: Path) -> None:
    """`make run`'s command on a temp home: the app holds the store from its start and serves the CLI; the
    document the CLI ingested is in the app's own library (the registry its pages and its service share)."""
    import httpx

    home = tmp_path / "home"
    env = {**os.environ, "DOCRAG_HOME": str(home), **ENV}
    port = _port()
    app = subprocess.Popen([sys.executable, "-m", "ui.run", "--server.headless", "true", "--server.port", str(port),
                            "--browser.gatherUsageStats", "false"], cwd=REPO, env=env, stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, text=True)
    try:
        owner = _wait_for_owner(home, app)
        assert owner["by"] == "docrag app" and owner["pid"] == app.pid
        served = _cli_ingest_and_list(tmp_path, home, env, owner)
        assert [Path(d["source"]).name for d in served] == ["lighthouse.txt"]  # the app's library has it
        deadline = time.time() + 60
        while time.time() < deadline:  # and the process is the Streamlit app itself
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("the Streamlit app did not answer on its port")
    finally:
        app.terminate()
        app.wait(timeout=60)
    assert not (home / "qdrant" / "owner.json").exists()  # removed on exit
