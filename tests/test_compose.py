"""compose.yaml and the Dockerfile, checked by parsing (no container engine runs in CI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rag.config import Settings

REPO = Path(__file__).resolve().parent.parent
QDRANT_TAG = re.compile(r"^qdrant/qdrant:v1\.\d+\.\d+$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


class TestDefaultStack:
    def test_services(self, services: dict) -> None:
        default = {n for n, s in services.items() if not s.get("profiles")}
        assert default == {"qdrant", "api", "ui"}

    def test_qdrant_pinned_with_volume_and_healthcheck(self, services: dict, compose: dict) -> None:
        q = services["qdrant"]
        assert QDRANT_TAG.match(q["image"]), q["image"]
        assert any(v.endswith(":/qdrant/storage") and v.split(":")[0] in compose["volumes"] for v in q["volumes"])
        assert "6333" in q["healthcheck"]["test"][1] and "readyz" in q["healthcheck"]["test"][1]
        assert any(p.endswith("6333:6333") for p in q["ports"])

    def test_api(self, services: dict) -> None:
        api = services["api"]
        assert api["command"][:3] == ["python", "-m", "rag.service"] and "--host" in api["command"]
        assert "8000:8000" in api["ports"]
        env = _env(api)
        assert env["DOCRAG_QDRANT_URL"] == "http://qdrant:6333"
        assert "DOCRAG_API_KEYS" in env and "DOCRAG_API_KEYS_FILE" in env
        assert api["depends_on"]["qdrant"]["condition"] == "service_healthy"
        assert "/health" in " ".join(api["healthcheck"]["test"])

    def test_ui(self, services: dict) -> None:
        ui = services["ui"]
        assert ui["command"][:3] == ["streamlit", "run", "ui/app.py"]
        assert "8501:8501" in ui["ports"]
        assert _env(ui)["DOCRAG_QDRANT_URL"] == "http://qdrant:6333"

    def test_docrag_services_build_this_repo(self, services: dict) -> None:
        for name in ("api", "ui", "api-cluster"):
            assert services[name]["build"] == "." and services[name]["image"].startswith("docrag:")
        assert (REPO / "Dockerfile").is_file()

    def test_env_values_are_valid_settings(self, services: dict) -> None:
        """Every DOCRAG_* value in the file (defaults of ${VAR:-default} taken) must load as Settings."""
        for name in ("api", "ui", "api-cluster"):
            values = {}
            for k, v in _env(services[name]).items():
                if k.startswith("DOCRAG_"):
                    m = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", v)
                    values[k[len("DOCRAG_"):].lower()] = m.group(1) if m else v
            Settings(**values)


class TestClusterProfile:
    NODES = ("qdrant-node-1", "qdrant-node-2", "qdrant-node-3")

    def test_three_nodes_and_an_api_in_the_profile(self, services: dict) -> None:
        cluster = {n for n, s in services.items() if "cluster" in (s.get("profiles") or [])}
        assert cluster == {*self.NODES, "api-cluster"}

    def test_nodes_are_distributed(self, services: dict, compose: dict) -> None:
        volumes = set()
        for i, name in enumerate(self.NODES, start=1):
            node = services[name]
            assert QDRANT_TAG.match(node["image"])
            assert _env(node)["QDRANT__CLUSTER__ENABLED"] == "true"
            cmd = node["command"]
            assert cmd[cmd.index("--uri") + 1] == f"http://{name}:6335"
            if i == 1:
                assert "--bootstrap" not in cmd
            else:
                assert cmd[cmd.index("--bootstrap") + 1] == "http://qdrant-node-1:6335"
                assert node["depends_on"]["qdrant-node-1"]["condition"] == "service_healthy"
            (vol,) = node["volumes"]
            volumes.add(vol.split(":")[0])
            assert node["healthcheck"]["test"]
        assert len(volumes) == 3 and volumes <= set(compose["volumes"])

    def test_api_replicates(self, services: dict) -> None:
        assert services["api-cluster"]["command"][:3] == ["python", "-m", "rag.service"]
        env = _env(services["api-cluster"])
        assert env["DOCRAG_QDRANT_URL"].startswith("http://qdrant-node-")
        assert int(env["DOCRAG_REPLICATION_FACTOR"]) == 2
        assert int(env["DOCRAG_SHARD_NUMBER"]) >= 2
        assert set(services["api-cluster"]["depends_on"]) == set(self.NODES)

    def test_same_store_code_path(self) -> None:
        """The server URL goes through the one build_document_store used in embedded mode."""
        from ingest.store import build_document_store

        s = Settings(qdrant_url="http://qdrant-node-1:6333", shard_number=3, replication_factor=2)
        store = build_document_store(s.store_config("docrag_team", 384))  # lazy: connects on first use only
        assert store.url == "http://qdrant-node-1:6333"
        assert store.shard_number == 3 and store.replication_factor == 2


class TestDockerfile:
    def test_entrypoint_and_ports(self) -> None:
        text = (REPO / "Dockerfile").read_text()
        assert re.search(r"^FROM python:3\.11", text, re.MULTILINE)
        assert 'CMD ["python", "-m", "rag.service", "--host", "0.0.0.0", "--port", "8000"]' in text
        assert "EXPOSE 8000 8501" in text and "scripts/setup.sh" in text
