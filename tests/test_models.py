from pathlib import Path

import pytest

from rag import models
from rag.errors import ModelNotFoundError


class TestResolver:
    def test_default_embedder_from_package(self) -> None:
        r = models.resolve_embedder()
        assert r.origin == "package"
        assert (Path(r.path) / "config.json").is_file() and (Path(r.path) / "model.safetensors").is_file()

    def test_default_generator_is_gguf_from_package(self) -> None:
        r = models.resolve_generator()
        assert r.path.endswith(".gguf") and Path(r.path).stat().st_size > 10_000_000
        with open(r.path, "rb") as f:
            assert f.read(4) == b"GGUF"

    def test_local_path_wins(self, tmp_path: Path) -> None:
        gguf = tmp_path / "m.gguf"
        gguf.write_bytes(b"GGUF")
        assert models.resolve_generator(str(gguf)).path == str(gguf.resolve())
        assert models.resolve_generator(str(tmp_path)).path == str(gguf.resolve())

    def test_missing_path_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(ModelNotFoundError, match="does not exist"):
            models.resolve_generator(str(tmp_path / "missing.gguf"))

    def test_unknown_hub_id_fails_fast_offline(self) -> None:
        with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
            models.resolve_embedder("nobody/no-such-model-xyz")

    def test_reranker_can_be_disabled(self) -> None:
        assert models.resolve_reranker("none") is None

    def test_spacy_model_under_its_usual_name(self) -> None:
        import spacy

        nlp = spacy.load("en_core_web_sm")
        assert "ner" in nlp.pipe_names
        assert models.resolve_spacy().path == "en_core_web_sm"

    def test_summarizer_falls_back_to_generator(self) -> None:
        assert models.resolve_summarizer("") is None


class TestGeneratorFormat:
    def test_non_gguf_file_is_one_clear_error(self, tmp_path: Path) -> None:
        from rag.errors import ModelFormatError

        notes = tmp_path / "notes.txt"
        notes.write_text("not a model")
        fake = tmp_path / "fake.gguf"
        fake.write_bytes(b"<html>404</html>")
        for path in (notes, fake):
            with pytest.raises(ModelFormatError, match=r"is not a GGUF model \(it starts with b'.{1,16}', not b'GGUF'\)"):
                models.resolve_generator(str(path))
        folder = tmp_path / "folder"
        folder.mkdir()
        (folder / "m.gguf").write_bytes(b"PK\x03\x04")
        with pytest.raises(ModelFormatError, match="not a GGUF model"):
            models.resolve_generator(str(folder))

    def test_cli_prints_one_line_not_a_traceback(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
        from rag.cli import EXIT_ERROR, main

        notes = tmp_path / "notes.txt"
        notes.write_text("not a model")
        monkeypatch.setenv("DOCRAG_GENERATOR", str(notes))
        assert main(["--home", str(tmp_path / "home"), "ask", "What is in the notes?"]) == EXIT_ERROR
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is not a GGUF model" in err and "Traceback" not in err
