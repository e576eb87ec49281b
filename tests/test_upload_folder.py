"""rag.uploads: the one sanitiser and the upload folder (unique names, replaced, quota, no leftovers)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag.uploads import MAX_NAME_CHARS, UploadFolder, sanitize_filename


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class TestSanitize:
    def test_long_names_keep_their_extension(self) -> None:
        name = sanitize_filename("quarterly report " * 30 + ".docx")
        assert len(name) == MAX_NAME_CHARS and name.endswith(".docx")

    def test_non_utf8_names_become_text(self) -> None:
        from_fs = b"caf\xe9 menu.txt".decode("utf-8", "surrogateescape")  # how os.listdir shows it
        assert sanitize_filename(from_fs) == "caf\ufffd menu.txt".replace("\ufffd", "_")
        assert sanitize_filename(b"r\xc3\xa9sum\xe9.pdf").endswith(".pdf")
        sanitize_filename(from_fs).encode("utf-8")  # storable and printable


class TestUploadFolder:
    def test_same_name_twice_in_one_batch_gets_unique_names(self, tmp_path: Path) -> None:
        up = UploadFolder(tmp_path / "u", quota_mb=10)
        staged, refused = up.stage([("a/x.txt", b"first"), ("b/x.txt", io.BytesIO(b"second"))], max_mb=1)
        assert not refused and [s.name for s in staged] == ["x.txt", "x-2.txt"]
        assert [s.path.read_bytes() for s in staged] == [b"first", b"second"]
        up.settle(staged, failed=set())
        assert names(up.folder) == ["x-2.txt", "x.txt"]

    def test_an_update_says_replaced_and_a_rejected_update_restores_the_old_file(self, tmp_path: Path) -> None:
        up = UploadFolder(tmp_path / "u", quota_mb=10)
        first, _ = up.stage([("memo.txt", b"version one")], max_mb=1)
        up.settle(first, failed=set())
        same, _ = up.stage([("memo.txt", b"version one")], max_mb=1)
        assert not same[0].replaced
        up.settle(same, failed=set())
        new, _ = up.stage([("memo.txt", b"version two")], max_mb=1)
        assert new[0].replaced and new[0].path.read_bytes() == b"version two"
        up.settle(new, failed={str(new[0].path)})  # the parser refused version two
        assert new[0].path.read_bytes() == b"version one" and names(up.folder) == ["memo.txt"]
        newer, _ = up.stage([("memo.txt", b"version three")], max_mb=1)
        up.settle(newer, failed=set())
        assert newer[0].replaced and newer[0].path.read_bytes() == b"version three"
        assert names(up.folder) == ["memo.txt"]  # no backups or temp files left

    def test_rejected_new_uploads_are_removed(self, tmp_path: Path) -> None:
        up = UploadFolder(tmp_path / "u", quota_mb=10)
        staged, refused = up.stage([("bomb.docx", b"PK\x03\x04junk"), ("tool.exe", b"MZ"), ("e.txt", b"")], 1)
        assert [r["file_name"] for r in refused] == ["tool.exe", "e.txt"]
        up.settle(staged, failed={str(staged[0].path)})
        assert names(up.folder) == []

    def test_oversize_stream_is_cut_and_refused(self, tmp_path: Path) -> None:
        up = UploadFolder(tmp_path / "u", quota_mb=10)
        staged, refused = up.stage([("big.txt", io.BytesIO(b"x" * (3 << 20)))], max_mb=1)
        assert not staged and "upload limit (DOCRAG_MAX_UPLOAD_MB)" in refused[0]["error"]
        up.settle(staged, set())
        assert names(up.folder) == []

    def test_quota_per_folder(self, tmp_path: Path) -> None:
        up = UploadFolder(tmp_path / "u", quota_mb=1)
        ok, _ = up.stage([("a.txt", b"a" * 600_000)], max_mb=1)
        up.settle(ok, set())
        staged, refused = up.stage([("b.txt", b"b" * 600_000), ("a.txt", b"c" * 700_000)], max_mb=1)
        assert [s.name for s in staged] == ["a.txt"]  # replacing a.txt frees its old size
        assert refused[0]["file_name"] == "b.txt"
        assert "over the 1 MB quota (delete documents or raise DOCRAG_UPLOAD_QUOTA_MB)" in refused[0]["error"]
        up.settle(staged, set())

    def test_remove_only_inside_the_folder(self, tmp_path: Path) -> None:
        up = UploadFolder(tmp_path / "u", quota_mb=1)
        staged, _ = up.stage([("a.txt", b"a")], max_mb=1)
        up.settle(staged, set())
        outside = tmp_path / "keep.txt"
        outside.write_text("keep")
        assert not up.remove(outside) and outside.exists()
        assert up.remove(staged[0].path) and names(up.folder) == []

    def test_quota_must_be_positive(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="quota_mb"):
            UploadFolder(tmp_path, quota_mb=0)
