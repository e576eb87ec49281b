from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import ConfigError


class TestSettings:
    def test_defaults(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        s = Settings.load()
        assert s.home == Path(".docrag")
        assert s.embedded and s.store_path == Path(".docrag") / "qdrant"
        assert s.chunk_overlap < s.chunk_size

    def test_priority_toml_env_override(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        home = tmp_path / "h"
        home.mkdir()
        (home / "docrag.toml").write_text('[docrag]\nchunk_size = 300\ntop_k = 7\ncollection = "toml"\n')
        monkeypatch.setenv("DOCRAG_TOP_K", "9")
        s = Settings.load(home=str(home), collection="kw")
        assert s.chunk_size == 300  # from TOML
        assert s.top_k == 9  # env beats TOML
        assert s.collection == "kw"  # keyword beats env and TOML

    def test_qdrant_url_from_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DOCRAG_QDRANT_URL", "http://qdrant:6333")
        s = Settings.load()
        assert not s.embedded and s.qdrant_url == "http://qdrant:6333"

    def test_unknown_toml_key_fails(self, tmp_path: Path) -> None:
        f = tmp_path / "c.toml"
        f.write_text("chunk_sise = 10\n")
        with pytest.raises(ConfigError, match="chunk_sise"):
            Settings.load(config_file=f)

    def test_invalid_value_names_the_field(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DOCRAG_CHUNK_SIZE", "-5")
        with pytest.raises(ConfigError, match="chunk_size"):
            Settings.load()

    def test_overlap_must_be_smaller(self) -> None:
        with pytest.raises(ConfigError, match="chunk_overlap"):
            Settings.load(chunk_size=50, chunk_overlap=50)

    def test_public_dict_hides_secrets(self) -> None:
        s = Settings.load(api_keys="secret1,secret2", qdrant_api_key="k")
        d = s.public_dict()
        assert d["api_keys"] == "***" and d["qdrant_api_key"] == "***"

    def test_missing_config_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            Settings.load(config_file=tmp_path / "nope.toml")
