"""Service fixtures: one registry (real small models, embedded Qdrant in a tmp home) shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from svc_helpers import AUTH_A, BRIDGE, LIGHTHOUSE, service_settings


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("service-docs")
    (d / "zephyr-bridge.txt").write_text(BRIDGE)
    (d / "quillon-lighthouse.txt").write_text(LIGHTHOUSE)
    return {"bridge": d / "zephyr-bridge.txt", "lighthouse": d / "quillon-lighthouse.txt"}


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Real DocRAGs per collection; shared by every app of the session so models load once."""
    from rag.server.collection_service import CollectionRegistry

    reg = CollectionRegistry(service_settings(tmp_path_factory.mktemp("service-home")))
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def client(registry: object) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from rag.server import create_app

    with TestClient(create_app(registry.settings, registry=registry)) as c:
        yield c


@pytest.fixture(scope="session")
def ingested(client: object, docs: dict[str, Path]) -> dict:
    """Key A's collection holds the bridge document."""
    with open(docs["bridge"], "rb") as f:
        r = client.post("/documents", headers=AUTH_A, files=[("files", ("zephyr-bridge.txt", f, "text/plain"))])
    assert r.status_code == 200, r.text
    return r.json()
