"""ui.uploads: file names are sanitised, bad uploads refused, saves never leave the uploads folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.uploads import MAX_NAME_CHARS, sanitize_filename, save, validate


class TestSanitizeFilename:
    @pytest.mark.parametrize(("raw", "expected"), [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\system.ini.TXT", "system.ini.txt"),
        ("/abs/path/memo.PDF", "memo.pdf"),
        ("..", "upload"),
        ("", "upload"),
        (".bashrc", "bashrc"),
        ("...hidden.md", "hidden.md"),
        ("a\x00b\x1fc.txt", "abc.txt"),
        ("name with  spaces .docx", "name with spaces.docx"),
        ("rm -rf $(x);`y`.txt", "rm -rf _(x)_y.txt"),
        ("CON.txt", "_CON.txt"),
        ("ＦＵＬＬ.txt", "FULL.txt"),
        ("résumé.pdf", "résumé.pdf"),
    ])
    def test_run_cleans_names(self, raw: str, expected: str) -> None:
        assert sanitize_filename(raw) == expected

    def test_run_never_returns_a_path_or_hidden_name(self) -> None:
        for raw in ["a/b/c", "../", "./.", "~/x", "\\\\server\\share\\f.pdf", "\u202egnp.exe"]:
            name = sanitize_filename(raw)
            assert name and "/" not in name and "\\" not in name and not name.startswith(".")

    def test_run_limits_length_and_keeps_extension(self) -> None:
        name = sanitize_filename("x" * 500 + ".pdf")
        assert len(name) == MAX_NAME_CHARS and name.endswith(".pdf")


class TestValidate:
    def test_run_accepts_supported_file(self) -> None:
        assert validate("memo.pdf", 1000, max_mb=50) is None

    @pytest.mark.parametrize(("name", "size", "needle"), [
        ("tool.exe", 10, "not supported"),
        ("README", 10, "no file extension"),
        ("empty.pdf", 0, "empty"),
        ("big.pdf", 51 * 1024 * 1024, "over the 50 MB upload limit"),
    ])
    def test_run_refuses_with_a_reason(self, name: str, size: int, needle: str) -> None:
        assert needle in validate(name, size, max_mb=50)


class TestSave:
    def test_run_writes_inside_the_folder(self, tmp_path: Path) -> None:
        folder = tmp_path / "home" / "uploads"
        path = save("../../escape.txt", b"hello", folder)
        assert path == (folder / "escape.txt").resolve()
        assert path.read_bytes() == b"hello"
        assert not (tmp_path / "escape.txt").exists()
        assert [p.name for p in folder.iterdir()] == ["escape.txt"]  # no temp file left behind

    def test_run_replaces_same_name(self, tmp_path: Path) -> None:
        save("a.txt", b"one", tmp_path)
        path = save("a.txt", b"two", tmp_path)
        assert path.read_bytes() == b"two"
