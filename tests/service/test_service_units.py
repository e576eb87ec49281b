"""Fast tests of the service's parts: keys, rate limiter, cache, size limit, auth. No models are loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from svc_helpers import AUTH_A, AUTH_B, KEY_A, service_settings

from rag.errors import ConfigError
from rag.server import create_app
from rag.server.cache import AnswerCache
from rag.server.collection_service import CollectionRegistry, safe_file_name
from rag.server.keys import KeyRing, hash_key
from rag.server.limits import RateLimiter


class TestKeyRing:
    def test_init_named_plain_and_hashed_entries(self) -> None:
        ring = KeyRing(["alpha:k1", f"beta:{hash_key('k2')}", "k3", "# comment", ""], collection_prefix="dr")
        assert len(ring) == 3
        assert ring.lookup("k1").collection == "dr_alpha"
        assert ring.lookup("k2").name == "beta"
        unnamed = ring.lookup("k3")
        assert unnamed.name.startswith("k") and unnamed.collection == f"dr_{unnamed.name}"
        assert ring.lookup("nope") is None and ring.lookup("") is None

    def test_keys_are_hashed_at_rest(self) -> None:
        ring = KeyRing(["alpha:super-secret-key"])
        assert "super-secret-key" not in repr(vars(ring))
        assert all(len(p.key_hash) == 64 for p in ring.principals())

    def test_init_hashed_key_needs_a_name(self) -> None:
        with pytest.raises(ConfigError, match="NAME:sha256"):
            KeyRing([hash_key("x")])

    def test_from_settings_reads_keys_file(self, tmp_path: Path) -> None:
        f = tmp_path / "keys"
        f.write_text(f"# teams\nalpha:{hash_key('a-key')}\nbeta:b-key\n")
        ring = KeyRing.from_settings("gamma:g-key", f, "docrag")
        assert {p.name for p in ring.principals()} == {"alpha", "beta", "gamma"}
        assert ring.lookup("a-key").collection == "docrag_alpha"

    def test_from_settings_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="API keys file"):
            KeyRing.from_settings("", tmp_path / "absent", "docrag")


class TestRateLimiter:
    def test_init_rejects_zero(self) -> None:
        with pytest.raises(ValueError, match="per_minute"):
            RateLimiter(0)

    def test_burst_then_refill(self) -> None:
        now = [0.0]
        lim = RateLimiter(3, clock=lambda: now[0])
        assert [lim.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
        wait = lim.acquire("k")
        assert wait == pytest.approx(20.0)
        assert lim.acquire("other") == 0.0  # buckets are per key
        now[0] = 20.0
        assert lim.acquire("k") == 0.0


class TestAnswerCache:
    def test_hit_and_invalidate(self) -> None:
        cache = AnswerCache()
        key = cache.key("c", "What  is X?", {"top_k": 2}, "fp")
        assert cache.key("c", "what is x?", {"top_k": 2}, "fp") == key  # whitespace/case-insensitive
        assert cache.key("c", "what is x?", {"top_k": 3}, "fp") != key
        cache.put(key, {"answer": "x"}, version=0)
        assert cache.get(key) == {"answer": "x"}
        cache.invalidate("c")
        assert cache.get(key) is None
        assert cache.key("c", "What is X?", {"top_k": 2}, "fp") != key  # the version is part of the key

    def test_put_after_invalidation_is_dropped(self) -> None:
        cache = AnswerCache()
        v = cache.version("c")
        key = cache.key("c", "q", {}, "fp")
        cache.invalidate("c")  # an ingest finished while the answer was computed
        cache.put(key, {"answer": "stale"}, version=v)
        assert cache.stats()["entries"] == 0

    def test_lru_bound(self) -> None:
        cache = AnswerCache(max_entries=2)
        keys = [cache.key("c", f"q{i}", {}, "fp") for i in range(3)]
        for k in keys:
            cache.put(k, {"answer": k[1]}, version=0)
        assert cache.get(keys[0]) is None and cache.get(keys[2]) is not None


def test_safe_file_name() -> None:
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\temp\\a b.pdf") == "a b.pdf"
    assert safe_file_name(".hidden") == "hidden"
    assert safe_file_name("") == "upload"


@pytest.fixture
def light_client(tmp_path: Path):
    """An app whose routes are never reached past auth/limits: no model or store is opened."""
    settings = service_settings(tmp_path, rate_limit_per_minute=3, max_upload_mb=0.01)
    app = create_app(settings, registry=CollectionRegistry(settings))
    with TestClient(app) as c:
        yield c


class TestAuthAndLimits:
    def test_health_is_open(self, light_client: TestClient) -> None:
        r = light_client.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"

    @pytest.mark.parametrize("method,path", [("get", "/documents"), ("post", "/search"), ("post", "/ask"),
                                             ("get", "/entities"), ("delete", "/documents/x.txt"),
                                             ("get", "/documents/x.txt"), ("post", "/summarize")])
    def test_401_without_key(self, light_client: TestClient, method: str, path: str) -> None:
        r = getattr(light_client, method)(path)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"

    def test_401_with_unknown_key(self, light_client: TestClient) -> None:
        assert light_client.get("/documents", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert light_client.get("/documents", headers={"Authorization": f"Basic {KEY_A}"}).status_code == 401

    def test_whoami(self, light_client: TestClient) -> None:
        assert light_client.get("/whoami", headers=AUTH_A).json() == {"name": "alpha", "collection": "docrag_alpha"}

    def test_429_with_retry_after_per_key(self, light_client: TestClient) -> None:
        codes = [light_client.get("/whoami", headers=AUTH_A).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = light_client.get("/whoami", headers=AUTH_A)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert light_client.get("/whoami", headers=AUTH_B).status_code == 200  # B has its own bucket

    def test_413_on_large_upload(self, light_client: TestClient) -> None:
        big = b"x" * (20 * 1024)
        r = light_client.post("/documents", headers=AUTH_A, files={"files": ("big.txt", big, "text/plain")})
        assert r.status_code == 413
        assert "DOCRAG_MAX_UPLOAD_MB" in r.json()["detail"]

    def test_413_on_chunked_body(self, light_client: TestClient) -> None:
        def body():
            for _ in range(20):
                yield b"y" * 1024

        r = light_client.post("/search", headers={**AUTH_A, "Content-Type": "application/json"}, content=body())
        assert r.status_code == 413

    def test_openapi_lists_the_routes(self, light_client: TestClient) -> None:
        paths = light_client.get("/openapi.json").json()["paths"]
        for p in ("/health", "/documents", "/documents/{source}", "/search", "/ask", "/summarize", "/entities"):
            assert p in paths


def test_service_main_hash_key(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.service import main

    assert main(["--hash-key", "abc"]) == 0
    assert capsys.readouterr().out.strip() == hash_key("abc")


def test_service_main_refuses_without_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.service import main

    assert main(["--home", str(tmp_path), "--port", "0"]) == 2
    assert "no API keys" in capsys.readouterr().err


class TestDocRAGClient:
    def test_client_maps_errors(self, light_client: TestClient) -> None:
        from rag.server.client import DocRAGClient, ServiceError

        assert DocRAGClient(client=light_client).health()["status"] == "ok"
        with pytest.raises(ServiceError) as e:
            DocRAGClient(client=light_client, key="wrong").list_documents()
        assert e.value.status == 401
        assert DocRAGClient(client=light_client, key=KEY_A).whoami()["name"] == "alpha"


class TestStatusByType:
    @pytest.mark.parametrize(("error", "status"), [
        ("NotFoundError('x')", 404), ("AmbiguousSourceError('x', ['a', 'b'])", 409), ("FilterError('x')", 400),
        ("UsageError('x')", 400), ("StoreLockedError('x')", 503), ("StoreFullError('x')", 507),
        ("StoreError('x')", 503), ("ConfigError('x')", 500), ("DocragError('x')", 400)])
    def test_status_is_chosen_by_type(self, error: str, status: int) -> None:
        from rag import errors
        from rag.server.app import status_for

        assert status_for(eval(error, vars(errors))) == status

    def test_unknown_filter_operator_is_400(self, tmp_path: Path) -> None:
        app = create_app(service_settings(tmp_path), registry=CollectionRegistry(service_settings(tmp_path)))
        with TestClient(app) as c:
            r = c.post("/search", headers=AUTH_A, json={"query": "x", "filters": {
                "field": "meta.source", "operator": "regex", "value": "a"}})
            assert r.status_code == 400 and "unknown filter operator 'regex'" in r.json()["detail"]
            r = c.post("/ask", headers=AUTH_A, json={"question": "x", "stream": True, "filters": {"nope": 1}})
            assert r.status_code == 400 and "unknown filter 'nope'" in r.json()["detail"]
