"""Nothing leaves the machine: ingest, ask, the app and the service run under a socket guard.

The guard records every attempt to connect to (or resolve) a non-loopback address from Python sockets in
this process; the test fails on any. The parse workers are separate processes: they get the same
environment (telemetry off) and the subprocess test below checks what each entry point switches off.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTE = ("The Ostrava Archive\n\nThe Ostrava Archive keeps the city's maps from 1620 onwards. Its reading room "
        "opens on Tuesdays, and the archivist is Dana Kubica.\n")


def _loopback(host: object) -> bool:
    if host in (None, "", "localhost", "ip6-localhost", "testserver"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class SocketGuard:
    """Records non-loopback connects and name lookups; loopback and Unix sockets pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[str] = []
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def check(sock: socket.socket, address: object) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
                guard.attempts.append(f"connect {address}")
                raise ConnectionRefusedError(f"socket guard: no connections off the machine ({address})")

        def connect(sock: socket.socket, address: object) -> None:
            check(sock, address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: object) -> int:
            check(sock, address)
            return real_connect_ex(sock, address)

        def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
            if not _loopback(host.decode() if isinstance(host, bytes) else host):
                guard.attempts.append(f"resolve {host}")
                raise socket.gaierror(f"socket guard: no name lookups ({host})")
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketGuard]:
    g = SocketGuard(monkeypatch)
    yield g
    assert g.attempts == [], g.attempts


def test_the_guard_catches_an_outbound_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    g = SocketGuard(monkeypatch)
    with pytest.raises(OSError), socket.create_connection(("93.184.215.14", 443), timeout=1):
        pass
    with pytest.raises(OSError):
        socket.getaddrinfo("telemetry.example.com", 443)
    assert len(g.attempts) == 2


@pytest.mark.parametrize("entry", ["rag", "ingest"])  # every rag.* and ingest.* import runs these first
def test_every_entry_point_switches_telemetry_off(entry: str) -> None:
    code = (f"import json, os, {entry}\n"
            "import haystack.telemetry._telemetry as ht\n"
            "keys = ['HAYSTACK_TELEMETRY_ENABLED', 'SCARF_NO_ANALYTICS', 'DO_NOT_TRACK', 'HF_HUB_DISABLE_TELEMETRY',"
            " 'HF_HUB_OFFLINE', 'STREAMLIT_BROWSER_GATHER_USAGE_STATS']\n"
            "print(json.dumps({'haystack': ht.telemetry is None, **{k: os.environ.get(k) for k in keys}}))\n")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("HAYSTACK_TELEMETRY_ENABLED", "SCARF_NO_ANALYTICS", "DO_NOT_TRACK", "HF_HUB_OFFLINE",
                        "HF_HUB_DISABLE_TELEMETRY", "STREAMLIT_BROWSER_GATHER_USAGE_STATS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"haystack": True, "HAYSTACK_TELEMETRY_ENABLED": "False", "SCARF_NO_ANALYTICS": "true",
                   "DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
                   "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}


def test_streamlit_config_keeps_usage_stats_off() -> None:
    import tomllib

    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False


@pytest.mark.integration
def test_ingest_ask_app_and_service_make_no_outbound_connection(guard: SocketGuard, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient
    from streamlit.testing.v1 import AppTest

    from rag import DocRAG
    from rag.config import Settings
    from rag.server import create_app
    from rag.server.collection_service import CollectionRegistry

    note = tmp_path / "ostrava.txt"
    note.write_text(NOTE)
    fast = {"chunk_size": 60, "chunk_overlap": 10, "top_k": 2, "retrieve_k": 4, "max_tokens": 16, "n_ctx": 1024,
            "rerank": False, "extract_entities": False, "device": "cpu"}
    with DocRAG(home=tmp_path / "api", **fast) as d:
        assert d.ingest([note]).ingested
        assert d.ask("Who is the archivist of the Ostrava Archive?").documents

    monkeypatch.setenv("DOCRAG_HOME", str(tmp_path / "api"))
    for key, value in {"DOCRAG_MAX_TOKENS": "16", "DOCRAG_RERANK": "false", "DOCRAG_EXTRACT_ENTITIES": "false"}.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    from ui.common import get_rag

    get_rag.clear()  # close the app's store before the service opens its own

    settings = Settings(home=tmp_path / "svc", api_keys="t:key-offline-0123456789", **fast)
    registry = CollectionRegistry(settings)
    auth = {"Authorization": "Bearer key-offline-0123456789"}
    try:
        with TestClient(create_app(settings, registry=registry)) as c:
            r = c.post("/documents", headers=auth, files=[("files", ("ostrava.txt", NOTE.encode(), "text/plain"))])
            assert r.status_code == 200 and r.json()["ingested"], r.text
            r = c.post("/ask", headers=auth, json={"question": "When does the reading room open?"})
            assert r.status_code == 200, r.text
    finally:
        registry.close()
