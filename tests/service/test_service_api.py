"""The HTTP service end to end on real small models and an embedded Qdrant store (``integration``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from svc_helpers import AUTH_A, AUTH_B, KEY_A, KEY_B

pytestmark = pytest.mark.integration


class TestKeyA:
    def test_ingest_reports_the_upload(self, ingested: dict) -> None:
        assert ingested["summary"]["ingested"] == 1 and not ingested["failed"]
        assert ingested["ingested"][0]["file_name"] == "zephyr-bridge.txt"

    def test_reupload_is_unchanged(self, client, ingested: dict, docs: dict[str, Path]) -> None:
        with open(docs["bridge"], "rb") as f:
            r = client.post("/documents", headers=AUTH_A, files=[("files", ("zephyr-bridge.txt", f))])
        assert r.json()["summary"]["unchanged"] == 1

    def test_list(self, client, ingested: dict) -> None:
        docs = client.get("/documents", headers=AUTH_A).json()
        assert [d["file_name"] for d in docs] == ["zephyr-bridge.txt"]
        assert docs[0]["chunks"] >= 1

    def test_show_by_file_name(self, client, ingested: dict) -> None:
        chunks = client.get("/documents/zephyr-bridge.txt", headers=AUTH_A).json()
        assert "Margaret Hollis" in " ".join(c["text"] for c in chunks)

    def test_search(self, client, ingested: dict) -> None:
        hits = client.post("/search", headers=AUTH_A, json={"query": "who designed the bridge", "top_k": 2}).json()
        assert hits and hits[0]["file_name"] == "zephyr-bridge.txt"

    def test_ask(self, client, ingested: dict) -> None:
        r = client.post("/ask", headers=AUTH_A, json={"question": "Who designed the Zephyr Bridge?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answer"] and body["documents"]
        assert body["documents"][0]["file_name"] == "zephyr-bridge.txt"

    def test_ask_streams_server_sent_events(self, client, ingested: dict) -> None:
        payload = {"question": "When did the Zephyr Bridge open?", "stream": True}
        with client.stream("POST", "/ask", headers=AUTH_A, json=payload) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            text = "".join(r.iter_text())
        events = [block.split("\n", 1) for block in text.strip().split("\n\n")]
        names = [e[0].removeprefix("event: ") for e in events]
        assert names[-1] == "answer" and "token" in names, names
        final = json.loads(events[-1][1].removeprefix("data: "))
        tokens = "".join(json.loads(e[1].removeprefix("data: "))["text"] for e in events if e[0] == "event: token")
        assert final["documents"] and tokens.strip()

    def test_summarize(self, client, ingested: dict) -> None:
        r = client.post("/summarize", headers=AUTH_A, json={"source": "zephyr-bridge.txt"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["source"].endswith("zephyr-bridge.txt") and body["text"].strip()

    def test_entities(self, client, ingested: dict) -> None:
        r = client.get("/entities", headers=AUTH_A)
        assert r.status_code == 200 and isinstance(r.json(), list)

    def test_unknown_document_is_404(self, client, ingested: dict) -> None:
        assert client.get("/documents/absent.pdf", headers=AUTH_A).status_code == 404
        assert client.delete("/documents/absent.pdf", headers=AUTH_A).status_code == 404


class TestIsolation:
    """Key B never sees key A's documents, whatever route it uses."""

    def test_list(self, client, ingested: dict) -> None:
        assert client.get("/documents", headers=AUTH_B).json() == []

    def test_search(self, client, ingested: dict) -> None:
        r = client.post("/search", headers=AUTH_B, json={"query": "Zephyr Bridge Margaret Hollis"})
        assert r.status_code == 200 and r.json() == []

    def test_ask(self, client, ingested: dict) -> None:
        body = client.post("/ask", headers=AUTH_B, json={"question": "Who designed the Zephyr Bridge?"}).json()
        assert body["documents"] == [] and body["citations"] == []
        assert "Hollis" not in body["answer"]

    def test_show_summarize_entities_delete(self, client, ingested: dict) -> None:
        source = ingested["ingested"][0]["source"]
        for ref in ("zephyr-bridge.txt", source):
            assert client.get(f"/documents/{ref}", headers=AUTH_B).status_code == 404
            assert client.delete(f"/documents/{ref}", headers=AUTH_B).status_code == 404
            assert client.post("/summarize", headers=AUTH_B, json={"source": ref}).status_code == 404
            assert client.get("/entities", headers=AUTH_B, params={"source": ref}).status_code == 404
        assert client.get("/entities", headers=AUTH_B).json() == []
        # A's document survived B's attempts
        assert [d["file_name"] for d in client.get("/documents", headers=AUTH_A).json()] == ["zephyr-bridge.txt"]

    def test_collections_are_separate_stores(self, client, registry, ingested: dict) -> None:
        a, b = registry.get("docrag_alpha"), registry.get("docrag_beta")
        # one home, one store (the CLI's and the app's too), one shard per collection
        assert a.settings.store_path == b.settings.store_path == registry.settings.store_path
        assert a.rag.collection == "docrag_alpha" and b.rag.collection == "docrag_beta"
        assert a.rag.store.shard_path != b.rag.store.shard_path

    def test_tenants_share_one_model_pool(self, client, registry, ingested: dict) -> None:
        a, b = registry.get("docrag_alpha"), registry.get("docrag_beta")
        assert a.rag.engine.pool is b.rag.engine.pool
        for svc in (a, b):
            svc.search("bridge", top_k=1, rerank=False, filters=None)
        emb = [g.get_component("query_embedder") for g in (a.rag._pipelines["retrieval:[('rerank', False)]"],
                                                           b.rag._pipelines["retrieval:[('rerank', False)]"])]
        assert emb[0] is not emb[1] and emb[0].embedding_backend is emb[1].embedding_backend  # one loaded model


class TestAnswerCache:
    def test_repeat_hits_then_ingest_and_delete_invalidate(self, client, ingested: dict,
                                                           docs: dict[str, Path]) -> None:
        q = {"question": "How long is the Zephyr Bridge?"}
        first = client.post("/ask", headers=AUTH_A, json=q).json()
        again = client.post("/ask", headers=AUTH_A, json=q).json()
        assert first["cached"] is False and again["cached"] is True
        assert again["answer"] == first["answer"]
        # B asking the same question never gets A's cached answer
        assert client.post("/ask", headers=AUTH_B, json=q).json()["cached"] is False

        with open(docs["lighthouse"], "rb") as f:
            r = client.post("/documents", headers=AUTH_A, files=[("files", ("quillon-lighthouse.txt", f))])
        assert r.json()["summary"]["ingested"] == 1
        assert client.post("/ask", headers=AUTH_A, json=q).json()["cached"] is False
        assert client.post("/ask", headers=AUTH_A, json=q).json()["cached"] is True

        deleted = client.delete("/documents/quillon-lighthouse.txt", headers=AUTH_A).json()
        assert deleted["deleted_chunks"] >= 1
        assert client.post("/ask", headers=AUTH_A, json=q).json()["cached"] is False
        names = [d["file_name"] for d in client.get("/documents", headers=AUTH_A).json()]
        assert names == ["zephyr-bridge.txt"]

    def test_options_are_part_of_the_key(self, client, ingested: dict) -> None:
        q = "Which river does the Zephyr Bridge cross?"
        assert client.post("/ask", headers=AUTH_A, json={"question": q, "top_k": 1}).json()["cached"] is False
        assert client.post("/ask", headers=AUTH_A, json={"question": q, "top_k": 1}).json()["cached"] is True
        assert client.post("/ask", headers=AUTH_A, json={"question": q, "top_k": 2}).json()["cached"] is False


def test_python_client_round_trip(client, ingested: dict) -> None:
    from rag.server.client import DocRAGClient, ServiceError

    c = DocRAGClient(client=client, key=KEY_A)
    assert [d["file_name"] for d in c.list_documents()] == ["zephyr-bridge.txt"]
    assert c.search("Margaret Hollis", top_k=1)[0]["file_name"] == "zephyr-bridge.txt"
    tokens = "".join(c.ask_stream("Who designed the Zephyr Bridge?"))
    assert tokens.strip() and c.last_answer["documents"]
    with pytest.raises(ServiceError) as e:
        DocRAGClient(client=client, key=KEY_B).show("zephyr-bridge.txt")
    assert e.value.status == 404
