"""ingest.files.expand_paths: folders recurse without ever leaving themselves."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.files import expand_paths
from rag.api import DocRAG


def tree(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.txt").write_text("the secret")
    (outside / "deep" / "more.txt").write_text("more secrets")
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.md").write_text("b")
    (folder / ".hidden.txt").write_text("h")
    return folder, outside


def test_symlinks_out_of_the_folder_are_skipped_and_reported(tmp_path: Path) -> None:
    folder, outside = tree(tmp_path)
    os.symlink(outside / "secret.txt", folder / "link.txt")
    os.symlink(outside / "deep", folder / "sub" / "linked-dir")
    os.symlink(folder / "a.txt", folder / "sub" / "inside-link.txt")  # stays inside: fine, ingested once
    files, failures = expand_paths([folder])
    assert files == [(folder / "a.txt").resolve(), (folder / "sub" / "b.md").resolve()]
    assert not any(f.resolve().is_relative_to(outside.resolve()) for f in files)
    bad = {Path(f["source"]).name: f["error"] for f in failures}
    assert set(bad) == {"link.txt", "linked-dir"}
    assert all("outside the folder" in e and str(outside) in e for e in bad.values())


def test_docrag_expand_paths_uses_it(tmp_path: Path) -> None:
    folder, outside = tree(tmp_path)
    os.symlink(outside, folder / "escape")
    files, failures = DocRAG.expand_paths([folder, tmp_path / "missing.pdf"])
    assert len(files) == 2 and len(failures) == 2
    assert any("no such file" in f["error"] for f in failures)


def test_a_file_named_directly_is_taken(tmp_path: Path) -> None:
    folder, outside = tree(tmp_path)
    os.symlink(outside / "secret.txt", folder / "link.txt")
    files, failures = expand_paths([folder / "link.txt"])
    assert files == [(outside / "secret.txt").resolve()] and not failures


def test_non_utf8_file_name_is_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "latin"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.txt")
    with open(raw, "wb") as f:
        f.write(b"coffee")
    (folder / "ok.txt").write_text("fine")
    files, failures = expand_paths([folder])
    assert [f.name for f in files] == ["ok.txt"]
    assert len(failures) == 1 and "not valid UTF-8" in failures[0]["error"]
    failures[0]["source"].encode("utf-8")  # the report itself is printable / JSON-safe
