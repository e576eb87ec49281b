"""One process owns the embedded store, the others go through it: `docrag serve` running, the CLI ingests and
lists, the server has the document (the CLI finds the store locked and talks to the owner over HTTP)."""

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


def test_cli_goes_through_the_running_server(tmp_path: Path) -> None:
    from rag.server.client import DocRAGClient

    home = tmp_path / "home"
    env = {**os.environ, "DOCRAG_API_KEYS": "alpha:" + "a" * 32, "DOCRAG_EXTRACT_ENTITIES": "0",
           "DOCRAG_RERANK": "0", "DOCRAG_CHUNK_SIZE": "60", "DOCRAG_CHUNK_OVERLAP": "10"}
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "rag.service", "--home", str(home), "--port", str(port),
                               "--log-level", "warning"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        owner_file = home / "qdrant" / "owner.json"
        deadline = time.time() + 180
        while time.time() < deadline and not owner_file.exists() and server.poll() is None:
            time.sleep(0.3)
        assert owner_file.exists(), server.stderr.read() if server.poll() is not None else "no owner file"
        owner = json.loads(owner_file.read_text())
        client = DocRAGClient(owner["url"], key=owner["key"])
        while time.time() < deadline:
            try:
                client.health()
                break
            except Exception:  # noqa: BLE001 - uvicorn still starting
                time.sleep(0.3)
        note = tmp_path / "lighthouse.txt"
        note.write_text("The Quillon Lighthouse stands on Gannet Point. It was first lit in 1903.\n")
        run = subprocess.run([sys.executable, "-m", "rag.cli", "--home", str(home), "ingest", str(note), "--json",
                              "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        assert "going through" in run.stderr and json.loads(run.stdout)["summary"]["ingested"] == 1
        listed = subprocess.run([sys.executable, "-m", "rag.cli", "--home", str(home), "list", "--json"], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=600)
        assert listed.returncode == 0, listed.stderr
        assert [Path(d["source"]).name for d in json.loads(listed.stdout)] == ["lighthouse.txt"]
        assert [Path(d["source"]).name for d in client.list_documents()] == ["lighthouse.txt"]  # the server has it
    finally:
        server.terminate()
        server.wait(timeout=60)
    from rag.config import Settings
    from rag.server import owner as owner_mod

    assert owner_mod.read(Settings(home=home)) is None  # a stopped owner is never used (its pid is gone)
