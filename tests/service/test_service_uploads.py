"""Uploads over HTTP (``integration``): unique names, "replaced", rejected uploads removed, no server paths."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from svc_helpers import AUTH_C

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ingest"))
from test_hostile import docx_bomb  # the hostile-file builders

pytestmark = pytest.mark.integration

NOTE_1 = "The Harrow Canal was dug in 1791 to carry coal from the Fenwick pits to the river port.\n"
NOTE_2 = "The Harrow Canal was closed in 1938 and its locks were filled in by the county council.\n"


def uploads_dir(registry: object) -> Path:
    return registry.get("docrag_gamma").uploads.folder


def post(client: object, *files: tuple[str, bytes]) -> dict:
    r = client.post("/documents", headers=AUTH_C, files=[("files", (n, d, "text/plain")) for n, d in files])
    assert r.status_code == 200, r.text
    return r.json()


def test_same_name_in_one_batch_is_kept_apart(client: object, registry: object) -> None:
    body = post(client, ("a/canal.txt", NOTE_1.encode()), ("b/canal.txt", NOTE_2.encode()))
    assert sorted(i["file_name"] for i in body["ingested"]) == ["canal-2.txt", "canal.txt"]
    assert {i["uploaded_as"] for i in body["ingested"]} == {"a/canal.txt", "b/canal.txt"}
    home = str(registry.settings.home.resolve())
    assert home not in str(body) and str(registry.settings.home) not in str(body)


def test_an_update_says_replaced(client: object, registry: object) -> None:
    post(client, ("harrow.txt", NOTE_1.encode()))
    body = post(client, ("harrow.txt", NOTE_2.encode()))
    assert body["ingested"][0]["replaced"] is True
    assert post(client, ("harrow.txt", NOTE_2.encode()))["summary"]["unchanged"] == 1


def test_rejected_uploads_are_removed_and_the_old_version_stays(client: object, registry: object) -> None:
    post(client, ("kept.txt", NOTE_1.encode()))
    body = post(client, ("kept.txt", b"%PDF-1.7 truncated"), ("junk.pdf", b"not a pdf at all"), ("tool.exe", b"MZ"))
    assert body["summary"]["failed"] == 3 and not body["ingested"]
    assert all("/" not in f["source"] for f in body["failed"])
    files = sorted(p.name for p in uploads_dir(registry).iterdir())
    assert "junk.pdf" not in files and "tool.exe" not in files
    assert (uploads_dir(registry) / "kept.txt").read_text() == NOTE_1
    chunks = client.get("/documents/kept.txt", headers=AUTH_C).json()
    assert "1791" in " ".join(c["text"] for c in chunks)


def test_zip_bomb_upload_is_refused_and_deleted(client: object, registry: object, tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "bomb.docx", inflated_mb=48)
    body = post(client, ("bomb.docx", bomb.read_bytes()))
    assert body["failed"][0]["file_name"] == "bomb.docx"
    assert "over the 16 MB limit for zip containers (raise DOCRAG_MAX_ZIP_MB)" in body["failed"][0]["error"]
    assert not (uploads_dir(registry) / "bomb.docx").exists()


def test_delete_removes_the_upload(client: object, registry: object) -> None:
    post(client, ("gone.txt", NOTE_2.encode()))
    assert (uploads_dir(registry) / "gone.txt").is_file()
    r = client.delete("/documents/gone.txt", headers=AUTH_C)
    assert r.status_code == 200 and r.json()["source"] == "gone.txt"
    assert not (uploads_dir(registry) / "gone.txt").exists()


def test_parsing_does_not_hold_the_collection_lock(client: object, registry: object) -> None:
    svc = registry.get("docrag_gamma")
    post(client, ("lockcheck.txt", NOTE_1.encode()))
    held: list[bool] = []
    real_parse = svc.rag.parse

    def parse_and_look(paths: list) -> dict:
        held.append(svc.lock.locked())
        time.sleep(0.5)
        return real_parse(paths)

    svc.rag.parse = parse_and_look
    try:
        t = threading.Thread(target=post, args=(client, ("slow.txt", NOTE_2.encode())))
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        assert client.get("/documents", headers=AUTH_C).status_code == 200
        waited = time.monotonic() - t0
        t.join()
    finally:
        del svc.rag.parse
    assert held == [False] and waited < 5
