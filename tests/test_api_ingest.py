"""Incremental, crash-safe ingestion into the real embedded Qdrant store, through the DocRAG API and CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from rag import DocRAG

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent
GOOD = ["fake-memo.pdf", "handbook-1p.docx", "simple-table.md", "stanley-cups.csv", "fake-email-attachment.eml",
        "layout-parser-paper-fast.pdf"]


def chunk_counts(d: DocRAG) -> Counter:
    return Counter(doc.meta["source"] for doc in d.store.filter_documents())


def assert_consistent(d: DocRAG) -> None:
    """Every stored source has exactly chunk_count chunks, all of one version, with distinct indexes."""
    by_src: dict[str, list] = {}
    for doc in d.store.filter_documents():
        by_src.setdefault(doc.meta["source"], []).append(doc)
    for src, docs in by_src.items():
        assert len({x.meta["index_key"] for x in docs}) == 1, src
        assert sorted(x.meta["chunk_index"] for x in docs) == list(range(docs[0].meta["chunk_count"])), src


def _children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields after the name: state, ppid, ...
            out.add(int(stat.parent.name))
    return out


@pytest.fixture()
def corpus(tmp_path: Path, docs_dir: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(GOOD):
        shutil.copy(docs_dir / name, folder / ("sub" if i % 2 else "") / name)
    shutil.copy(docs_dir / "bad" / "password.pdf", folder / "password.pdf")
    shutil.copy(docs_dir / "bad" / "zero-bytes.pdf", folder / "zero-bytes.pdf")
    (folder / ".hidden.txt").write_text("hidden files are skipped")
    return folder


class TestIngest:
    def test_report_unchanged_changed_and_delete(self, tmp_path: Path, corpus: Path) -> None:
        with DocRAG(home=tmp_path / "home", extract_entities=False) as d:
            r1 = d.ingest([corpus])
            assert {Path(i["source"]).name for i in r1.ingested} == set(GOOD)
            assert {Path(f["source"]).name for f in r1.failed} == {"password.pdf", "zero-bytes.pdf"}
            assert all(i["chunks"] >= 1 and i["pages"] >= 1 for i in r1.ingested)
            total = d.store.count_documents()
            assert total == sum(i["chunks"] for i in r1.ingested)
            assert_consistent(d)

            r2 = d.ingest([corpus])  # nothing changed: nothing written
            assert not r2.ingested and len(r2.unchanged) == len(GOOD)
            assert d.store.count_documents() == total

            md = corpus / "simple-table.md"
            md.write_text("# Prices\n\n| Item | Price |\n|---|---|\n| Durian | 9.99 |\n")
            r3 = d.ingest([corpus])
            assert [Path(i["source"]).name for i in r3.ingested] == ["simple-table.md"]
            chunks = d.show(str(md))
            assert any("Durian" in h.text for h in chunks) and not any("Juicy" in h.text for h in chunks)
            assert_consistent(d)

            listed = {x["file_name"]: x for x in d.list_documents()}
            assert set(listed) == set(GOOD)
            assert listed["layout-parser-paper-fast.pdf"]["pages"] == 2
            n = d.delete("fake-memo.pdf")
            assert n == listed["fake-memo.pdf"]["chunks"]
            assert "fake-memo.pdf" not in {x["file_name"] for x in d.list_documents()}

    def test_pages_and_metadata_of_chunks(self, tmp_path: Path, docs_dir: Path) -> None:
        with DocRAG(home=tmp_path / "home", extract_entities=True) as d:
            d.ingest([docs_dir / "layout-parser-paper-fast.pdf"])
            hits = d.show("layout-parser-paper-fast.pdf")
            assert {p for h in hits for p in h.pages} == {1, 2}
            m = d.store.filter_documents()[0].meta
            for key in ("source", "file_hash", "page_numbers", "element_types", "title_path", "chunk_index",
                        "entities", "entity_keys"):
                assert key in m, key
            assert any(h.entities for h in hits)
            # a chunk over two pages says where each page starts: the words there are on that page of the PDF
            import pypdfium2

            pdf = pypdfium2.PdfDocument(str(docs_dir / "layout-parser-paper-fast.pdf"))
            page_words = {i + 1: set(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf))}
            pdf.close()
            spanning = [x for x in d.store.filter_documents() if x.meta.get("page_offsets")]
            assert spanning
            for x in spanning:
                offsets = x.meta["page_offsets"]
                assert [a for a, _ in offsets] == sorted({a for a, _ in offsets}) and offsets[0][0] == 0
                for at, page in offsets:
                    words = [w for w in x.content[at:].split()[:6] if w.isalpha() and len(w) > 3]
                    assert words and all(w in page_words[page] for w in words), (page, words)

    def test_kill_9_mid_batch_then_rerun(self, tmp_path: Path, docs_dir: Path) -> None:
        """A crash in the middle of a batch loses nothing and duplicates nothing after a re-run."""
        folder = tmp_path / "many"
        folder.mkdir()
        for name in ["GSA2022.pdf", "multi-column.pdf", "reliance.pdf", "ntsb-20071229X02007.pdf", "fake-memo.pdf",
                     "handbook-1p.docx", "norwich-city.txt"]:
            shutil.copy(docs_dir / name, folder / name)
        home = tmp_path / "home"
        env = {**os.environ, "DOCRAG_EXTRACT_ENTITIES": "0"}
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "--home", str(home), "ingest", str(folder), "-q"],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until something is stored, then kill -9 in the middle of the batch
        deadline = time.time() + 240
        records = home / "qdrant" / "edge" / "docrag.records"  # made when the first document is committed
        while time.time() < deadline and proc.poll() is None:
            if records.exists():
                break
            time.sleep(0.2)
        time.sleep(1.0)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with DocRAG(home=home, extract_entities=False) as d:
            report = d.ingest([folder])
            assert not report.failed
            assert len(report.ingested) + len(report.unchanged) == 7
            assert_consistent(d)
            assert len(chunk_counts(d)) == 7
            again = d.ingest([folder])
            assert len(again.unchanged) == 7

    def test_kill_9_mid_pipelined_batch_with_the_pool(self, tmp_path: Path, docs_dir: Path) -> None:
        """Two parse workers run ahead while chunks of several files are embedded and written together: a kill -9
        mid-batch leaves no worker behind, and a re-run loses nothing and duplicates nothing; a file over the
        parse time budget is reported by name and never holds up the others."""
        folder = tmp_path / "many"
        folder.mkdir()
        names = ["GSA2022.pdf", "multi-column.pdf", "reliance.pdf", "ntsb-20071229X02007.pdf", "fake-memo.pdf",
                 "handbook-1p.docx", "norwich-city.txt"]
        for name in names:
            shutil.copy(docs_dir / name, folder / name)
        (folder / "slow.txt").write_bytes(b"word " * 4_000_000)  # one 20 MB line: the partitioner takes minutes
        budget = {"parse_workers": 2, "ingest_batch_chunks": 40, "parse_timeout_s": 20, "max_text_mb": 100}
        home = tmp_path / "home"
        env = {**os.environ, "DOCRAG_EXTRACT_ENTITIES": "0", **{f"DOCRAG_{k.upper()}": str(v) for k, v in budget.items()}}
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "--home", str(home), "ingest", str(folder)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        progress = []  # the CLI's per-file progress bar on stderr: "ingest: ... 2/8"
        threading.Thread(target=lambda: progress.extend(iter(lambda: proc.stderr.read1(4096).decode(errors="replace"),
                                                             "")), daemon=True).start()
        deadline = time.time() + 240
        # two files done: at least one of them committed (only slow.txt can fail), then kill mid-way through the rest
        while time.time() < deadline and proc.poll() is None and not re.search(r"\b[2-7]/8\b", "".join(progress)):
            time.sleep(0.1)
        time.sleep(0.5)
        workers = _children(proc.pid)
        assert proc.poll() is None, "the ingest finished before it could be killed mid-batch"
        assert workers, "no parse worker was running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.2)
        assert not [w for w in workers if Path(f"/proc/{w}").exists()], "a parse worker outlived its parent"
        with DocRAG(home=home, extract_entities=False, **budget) as d:
            report = d.ingest([folder])
            # whichever limit of the parse budget it hits first on this machine: time or the worker's memory
            assert [Path(f["source"]).name for f in report.failed] == ["slow.txt"], report.failed
            assert report.failed[0]["error"] in {"parsing took over 20 s (raise DOCRAG_PARSE_TIMEOUT_S)",
                                                 "parsing needed over 3072 MB of memory (raise DOCRAG_PARSE_MEMORY_MB)"}
            assert len(report.ingested) + len(report.unchanged) == len(names)
            assert report.unchanged, "the killed run committed nothing"
            assert_consistent(d)
            assert len(chunk_counts(d)) == len(names)
            assert d.store.count_documents_by_filter({"field": "meta.state", "operator": "==", "value": "pending"}) == 0
            again = d.ingest([folder / n for n in names])
            assert len(again.unchanged) == len(names)

    def test_batches_across_files_store_what_one_file_at_a_time_stores(self, tmp_path: Path, docs_dir: Path) -> None:
        """The same chunks (places, texts, pages, context) whether files are indexed one per graph run or together;
        progress is reported once per file either way."""
        files = [docs_dir / n for n in ["fake-memo.pdf", "handbook-1p.docx", "simple-table.md", "norwich-city.txt",
                                        "layout-parser-paper-fast.pdf"]]
        stored, calls = {}, {}
        for batch in (1, 10_000):
            seen: list[tuple[int, int, str]] = []
            with DocRAG(home=tmp_path / f"home-{batch}", extract_entities=False, ingest_batch_chunks=batch) as d:
                report = d.ingest(files, progress=lambda done, total, src, s=seen: s.append((done, total, src)))
                assert not report.failed and len(report.ingested) == len(files)
                # chunk ids carry the ingest's version (a fresh one per run), so chunks are keyed by place
                stored[batch] = {(doc.meta["source"], doc.meta["chunk_index"]): (
                    doc.content, doc.meta["page_numbers"], doc.meta.get("context"))
                                 for doc in d.store.filter_documents()}
            calls[batch] = seen
        assert stored[1] == stored[10_000] and len(stored[1]) > len(files)
        for seen in calls.values():
            assert [(done, total) for done, total, _ in seen] == [(i + 1, len(files)) for i in range(len(files))]
            assert sorted(src for _, _, src in seen) == sorted(str(f) for f in files)


class TestCli:
    def run(self, *args: str, home: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCRAG_EXTRACT_ENTITIES": "0"}
        return subprocess.run([sys.executable, "-m", "rag.cli", "--home", str(home), *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600, check=False)

    def test_ingest_json_contract_and_exit_codes(self, tmp_path: Path, corpus: Path) -> None:
        home = tmp_path / "home"
        r = self.run("ingest", str(corpus), "--json", "-q", home=home)
        assert r.returncode == 3, r.stderr
        out = json.loads(r.stdout)
        assert set(out) >= {"ingested", "unchanged", "failed"}
        assert all(set(i) >= {"source", "chunks", "pages"} for i in out["ingested"])
        assert {Path(f["source"]).name for f in out["failed"]} == {"password.pdf", "zero-bytes.pdf"}
        assert all(set(f) == {"source", "error"} for f in out["failed"])

        good = corpus / "fake-memo.pdf"
        r = self.run("ingest", str(good), "--json", "-q", home=home)
        assert r.returncode == 0 and json.loads(r.stdout)["unchanged"] == [str(good.resolve())]

        r = self.run("list", "--json", home=home)
        docs = json.loads(r.stdout)
        assert r.returncode == 0 and {Path(x["source"]).name for x in docs} == set(GOOD)
        r = self.run("show", "fake-memo.pdf", "--json", home=home)
        chunks = json.loads(r.stdout)
        assert chunks and all(c["page"] == 1 for c in chunks)
        r = self.run("delete", "fake-memo.pdf", home=home)
        assert r.returncode == 0 and "deleted" in r.stdout
        r = self.run("show", "fake-memo.pdf", home=home)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no stored document" in r.stderr

    def test_search_names_pages_in_words(self, tmp_path: Path, corpus: Path) -> None:
        home = tmp_path / "home"
        note = tmp_path / "note.txt"
        note.write_text("The memo about bottled water was sent to every office in May.\n")
        r = self.run("ingest", str(note), str(corpus / "fake-memo.pdf"), "-q", home=home)
        assert r.returncode == 0, r.stderr
        r = self.run("search", "memo bottled water", "--no-rerank", home=home)
        assert r.returncode == 0, r.stderr
        assert "note.txt (no page)" in r.stdout and "fake-memo.pdf (page 1)" in r.stdout
        assert "None" not in r.stdout

    def test_usage_error_exit_2(self, tmp_path: Path) -> None:
        r = self.run("ingest", home=tmp_path)
        assert r.returncode == 2
