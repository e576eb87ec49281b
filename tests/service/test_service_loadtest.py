"""Loopback load test: 8 concurrent askers for a bounded time against uvicorn on 127.0.0.1 (``integration``).

``DOCRAG_LOADTEST_SECONDS`` / ``DOCRAG_LOADTEST_CONCURRENCY`` change the defaults (20 s, 8 askers);
``DOCRAG_LOADTEST_UNIQUE=1`` never repeats a question (every ask misses the answer cache). The result is
printed (run with ``-s``) and written to ``test-artifacts/loadtest.json``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from svc_helpers import KEY_A

pytestmark = pytest.mark.integration

# read at import: the suite's autouse fixture clears DOCRAG_* variables before each test runs
SECONDS = float(os.environ.get("DOCRAG_LOADTEST_SECONDS", "20"))
CONCURRENCY = int(os.environ.get("DOCRAG_LOADTEST_CONCURRENCY", "8"))
UNIQUE = os.environ.get("DOCRAG_LOADTEST_UNIQUE") == "1"
ARTIFACTS = Path(os.environ.get("DOCRAG_ARTIFACTS", "test-artifacts"))

QUESTIONS = ["Who designed the Zephyr Bridge?", "When did the Zephyr Bridge open?",
             "How many arches does the bridge have?", "Who maintains the bridge today?"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(registry, ingested: dict):
    import uvicorn

    from rag.server import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(registry.settings, registry=registry), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_concurrent_askers_have_no_errors(live_server: str) -> None:
    from rag.server import loadtest

    result = loadtest.run(live_server, KEY_A, QUESTIONS, concurrency=CONCURRENCY, seconds=SECONDS, unique=UNIQUE)
    print("\nloadtest:", json.dumps(result))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ("loadtest-unique.json" if UNIQUE else "loadtest.json")).write_text(json.dumps(result, indent=2))
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] >= CONCURRENCY
    assert result["p95_s"] >= result["p50_s"] > 0
