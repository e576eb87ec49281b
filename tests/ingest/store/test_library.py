"""Document records and atomic versioned replace over the embedded store (synthetic chunks, no models)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from haystack import Document
from haystack.dataclasses import SparseEmbedding

from ingest.errors import StoreError, StoreFullError
from ingest.store import StoreConfig, open_library
from ingest.store.library import Library
from ingest.store.schema import VISIBLE

DIM = 8


def chunks(source: str, version: str, n: int, word: str = "alpha", state: str = "pending") -> list[Document]:
    out = []
    for i in range(n):
        out.append(Document(id=f"{source}:{version}:{i}", content=f"{word} {i}",
                            embedding=[math.cos(i + j) for j in range(DIM)],
                            sparse_embedding=SparseEmbedding(indices=[i], values=[1.0]),
                            meta={"source": source, "file_name": Path(source).name, "file_type": "txt",
                                  "index_key": version.split("-")[0], "version": version, "state": state,
                                  "chunk_index": i, "page_numbers": [1 + i % 2],
                                  "entities": [{"label": "ORG", "text": "Acme  Corp"}]}))
    return out


def write_version(lib: Library, source: str, n: int, word: str = "alpha", key: str = "k1") -> str:
    v = lib.new_version(key)
    docs = chunks(source, v, n, word)
    lib.chunks.write_documents(docs)
    lib.commit(source, v, docs, docs[0].meta)
    return v


def visible(lib: Library, source: str) -> list[Document]:
    return lib.chunks.filter_documents({"operator": "AND", "conditions": [
        {"field": "meta.source", "operator": "==", "value": source}, VISIBLE]})


@pytest.fixture
def cfg(tmp_path: Path) -> StoreConfig:
    return StoreConfig(collection="c", embedding_dim=DIM, path=tmp_path / "qdrant")


class TestRecords:
    def test_commit_writes_one_record_read_by_list(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        write_version(lib, "/d/a.txt", 3)
        write_version(lib, "/d/b.txt", 2)
        recs = {r.source: r for r in lib.records()}
        assert set(recs) == {"/d/a.txt", "/d/b.txt"}
        a = recs["/d/a.txt"]
        assert (a.chunks, a.pages, a.state, a.file_name) == (3, 2, "live", "a.txt")
        assert a.entities == {"ORG\tAcme Corp": 3} and a.ingested_at > 0
        assert lib.unchanged("/d/a.txt", "k1") and not lib.unchanged("/d/a.txt", "k2")
        lib.close()

    def test_replace_keeps_only_the_new_version(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        write_version(lib, "/d/a.txt", 5, "old")
        v2 = write_version(lib, "/d/a.txt", 2, "new", key="k2")
        docs = lib.chunks.filter_documents()
        assert len(docs) == 2 and {d.meta["version"] for d in docs} == {v2}
        assert all(d.meta["state"] == "live" for d in docs)
        assert lib.record("/d/a.txt").chunks == 2
        lib.close()

    def test_delete_removes_chunks_and_record(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        write_version(lib, "/d/a.txt", 3)
        assert lib.delete("/d/a.txt") == 3
        assert lib.records() == [] and lib.chunks.count_documents() == 0
        lib.close()

    def test_records_are_built_for_a_store_without_them(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        lib.chunks.write_documents(chunks("/d/a.txt", "k1-x", 4, state="live"))
        lib.close()
        shutil.rmtree(Path(cfg.path) / "edge" / "c.records")
        lib = open_library(cfg)
        assert [(r.source, r.chunks) for r in lib.records()] == [("/d/a.txt", 4)]
        lib.close()


class TestAtomicity:
    def test_interrupted_write_leaves_previous_version(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        v1 = write_version(lib, "/d/a.txt", 3, "old")
        v2 = lib.new_version("k2")
        lib.chunks.write_documents(chunks("/d/a.txt", v2, 2, "new")[:1])  # then the process dies
        assert {d.content for d in visible(lib, "/d/a.txt")} == {"old 0", "old 1", "old 2"}
        lib.close()
        lib = open_library(cfg)  # recovery drops the orphaned pending chunk
        assert {d.meta["version"] for d in lib.chunks.filter_documents()} == {v1}
        assert lib.record("/d/a.txt").version == v1
        lib.close()

    def test_short_write_is_refused_and_dropped(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        v = lib.new_version("k1")
        docs = chunks("/d/a.txt", v, 3)
        lib.chunks.write_documents(docs[:2])
        with pytest.raises(StoreError, match="wrote 2 of 3"):
            lib.commit("/d/a.txt", v, docs, docs[0].meta)
        assert lib.chunks.count_documents() == 0 and lib.records() == []
        lib.close()

    def test_commit_cut_after_the_flip_is_finished_at_open(self, cfg: StoreConfig) -> None:
        lib = open_library(cfg)
        write_version(lib, "/d/a.txt", 3, "old")
        v2 = lib.new_version("k2")
        docs = chunks("/d/a.txt", v2, 2, "new")
        lib.chunks.write_documents(docs)
        lib._finish_commit = lambda rec: None  # the process dies right after the record flip
        lib.commit("/d/a.txt", v2, docs, docs[0].meta)
        lib.close()
        lib = open_library(cfg)
        assert {d.content for d in visible(lib, "/d/a.txt")} == {"new 0", "new 1"}
        assert lib.chunks.count_documents() == 2 and lib.record("/d/a.txt").state == "live"
        lib.close()

    @pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a tmpfs")
    def test_disk_full_is_one_line_and_store_reopens_intact(self, tmp_path: Path) -> None:
        mnt = tmp_path / "small"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", str(mnt)],
                           capture_output=True, check=False)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        try:
            cfg = StoreConfig(collection="c", embedding_dim=384, path=mnt / "qdrant")
            lib = open_library(cfg)
            v1 = lib.new_version("k1")
            small = [Document(id=f"a{i}", content="old text", embedding=[0.1] * 384,
                              meta={"source": "/d/a.txt", "version": v1, "state": "pending", "chunk_index": i})
                     for i in range(5)]
            lib.chunks.write_documents(small)
            lib.commit("/d/a.txt", v1, small, small[0].meta)
            filler = mnt / "filler"  # the rest of the disk is taken by something else
            filler.write_bytes(b"\0" * (shutil.disk_usage(mnt).free - (170 << 20)))
            v2 = lib.new_version("k2")
            big = [Document(id=f"b{i}", content="x" * 2000, embedding=[0.2] * 384,
                            meta={"source": "/d/a.txt", "version": v2, "state": "pending", "chunk_index": i})
                   for i in range(20_000)]
            with pytest.raises(StoreFullError) as err:
                lib.chunks.write_documents(big)
                lib.commit("/d/a.txt", v2, big, big[0].meta)
            assert "\n" not in str(err.value) and "full" in str(err.value)
            assert {d.meta["version"] for d in visible(lib, "/d/a.txt")} == {v1}  # 0 partially visible
            with contextlib.suppress(Exception):  # the flush may still hit the full disk
                lib.close()
            with pytest.raises(StoreFullError):  # still full: refused in one line, not a crash (Edge maps files)
                open_library(cfg)
            filler.unlink()  # the user frees space, as the message says
            lib = open_library(cfg)  # reopens; the unfinished version is gone, the previous one intact
            assert {d.meta["version"] for d in visible(lib, "/d/a.txt")} == {v1}
            assert lib.record("/d/a.txt").version == v1
            lib.close()
        finally:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


class TestMigration:
    def test_local_mode_store_is_migrated_once(self, tmp_path: Path) -> None:
        from ingest.store.server import ServerDocumentStore

        path = tmp_path / "qdrant"
        old = ServerDocumentStore(path=str(path), index="c", embedding_dim=DIM, use_sparse_embeddings=True,
                                  sparse_idf=True, progress_bar=False)
        docs = chunks("/d/a.txt", "k1-x", 3, state="live")
        for d in docs:
            d.meta.pop("state"), d.meta.pop("version")
        old.write_documents(docs)
        old.close()
        lines: list[str] = []
        lib = open_library(StoreConfig(collection="c", embedding_dim=DIM, path=path), progress=lines.append)
        assert lib.chunks.count_documents() == 3 and [r.chunks for r in lib.records()] == [3]
        assert any("migrating c: 3/3" in x for x in lines)
        hits = lib.chunks._query_hybrid(docs[1].embedding, SparseEmbedding(indices=[1], values=[1.0]), top_k=1)
        assert hits[0].id == docs[1].id and hits[0].content == docs[1].content
        lib.close()
        assert (path / "collection" / "c" / "storage.sqlite").is_file()  # the old folder is kept

    def test_refuses_with_the_command_when_asked(self, tmp_path: Path) -> None:
        from ingest.store.server import ServerDocumentStore

        path = tmp_path / "qdrant"
        old = ServerDocumentStore(path=str(path), index="c", embedding_dim=DIM, use_sparse_embeddings=True,
                                  progress_bar=False)
        old.write_documents(chunks("/d/a.txt", "k1-x", 1, state="live"))
        old.close()
        with pytest.raises(StoreError, match="docrag migrate --collection c"):
            open_library(StoreConfig(collection="c", embedding_dim=DIM, path=path), migrate=False)


def test_embedded_collections_lists_the_shards_not_their_records(tmp_path: Path) -> None:
    """What the app's collection picker shows: every collection any process made in the home's store."""
    from ingest.store import embedded_collections

    assert embedded_collections(tmp_path) == []
    for name in ("docrag", "docrag_alpha"):
        lib = open_library(StoreConfig(collection=name, embedding_dim=DIM, path=tmp_path))
        write_version(lib, f"/docs/{name}.txt", 2)
        lib.close()
    assert embedded_collections(tmp_path) == ["docrag", "docrag_alpha"]
