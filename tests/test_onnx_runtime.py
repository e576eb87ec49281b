"""The ONNX Runtime path (rag/onnx_runtime.py): export cache, the embeddings' quality gate, graph wiring, NER.

The default models are exported once by ``scripts/setup.sh`` (``python -m rag.onnx_runtime``); a test that finds
no cached export makes it (about a minute on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag import graph, models
from rag.config import Settings
from rag.errors import ModelNotFoundError
from rag.onnx_runtime import META_FILE, MODEL_FILE, ORT_TRANSFORMER_TYPE, OrtModel, export_onnx, is_ort_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def squad_chunks(data_dir: Path) -> list[str]:
    """200 real passages of chunk size (SQuAD dev paragraphs, ~120 words each)."""
    data = json.loads((data_dir / "squad" / "dev-v2.0.json").read_text())["data"]
    return [p["context"] for a in data for p in a["paragraphs"]][:200]


class TestExport:
    def test_init_rejects_unknown_task_and_variant(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="task must be one of"):
            export_onnx(tmp_path, "summarization")
        with pytest.raises(ValueError, match="variant must be one of"):
            export_onnx(tmp_path, "feature-extraction", "int4")

    def test_not_a_model_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ModelNotFoundError, match="no config.json"):
            export_onnx(tmp_path, "feature-extraction")

    def test_default_exports_are_cached_and_reused(self) -> None:
        for kind in ("embedder", "reranker", "ner"):
            rt = models.runtime_model(kind, models.resolve_default(kind), "onnx")
            assert rt.backend == "onnx" and rt.variant == models.ONNX_VARIANTS[kind]
            folder = Path(rt.path)
            assert is_ort_folder(folder) and json.loads((folder / META_FILE).read_text())["variant"] == rt.variant
            stamp = (folder / MODEL_FILE).stat().st_mtime_ns
            again = models.runtime_model(kind, models.resolve_default(kind), "onnx")
            assert again.path == rt.path and (folder / MODEL_FILE).stat().st_mtime_ns == stamp

    def test_sentence_transformers_folders_name_our_module(self) -> None:
        for kind in ("embedder", "reranker"):
            folder = Path(models.runtime_model(kind, models.resolve_default(kind), "onnx").path)
            types = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
            assert types[0] == ORT_TRANSFORMER_TYPE


class TestQualityGate:
    def test_int8_embeddings_cosine_to_fp32_torch(self, squad_chunks: list[str]) -> None:
        """The gate of the embedder's int8 variant: cosine >= 0.99 to fp32 torch on every real chunk."""
        from sentence_transformers import SentenceTransformer

        torch_path = models.resolve_embedder().path
        onnx_path = models.runtime_model("embedder", models.resolve_embedder(), "onnx").path
        ref = SentenceTransformer(torch_path, device="cpu").encode(squad_chunks, batch_size=64,
                                                                   normalize_embeddings=True)
        ours = SentenceTransformer(onnx_path, device="cpu", trust_remote_code=True).encode(
            squad_chunks, batch_size=64, normalize_embeddings=True)
        cos = (ref * ours).sum(1)
        assert ours.shape == ref.shape == (200, 384)
        assert cos.min() >= 0.99, f"min cosine {cos.min():.4f}"
        assert cos.mean() >= 0.993, f"mean cosine {cos.mean():.4f}"

    def test_reranker_orders_like_torch(self, squad_chunks: list[str]) -> None:
        from sentence_transformers import CrossEncoder

        rr = models.resolve_reranker()
        onnx_path = models.runtime_model("reranker", rr, "onnx").path
        query = "What is the name of the region in France the Normans gave their name to?"
        pairs = [(query, c) for c in squad_chunks[:20]]
        ref = CrossEncoder(rr.path, device="cpu").predict(pairs, activation_fn=None)
        ours = CrossEncoder(onnx_path, device="cpu", trust_remote_code=True).predict(pairs, activation_fn=None)
        assert int(np.argmax(ours)) == int(np.argmax(ref))
        assert np.corrcoef(ref, ours)[0, 1] > 0.97


class TestWiring:
    @pytest.mark.parametrize(("bf16", "backend", "dtype"), [(None, "onnx", "fp32"), ("avx512", "torch", "bf16"),
                                                           ("amx", "torch", "bf16")])
    def test_cpu_default_follows_the_bf16_unit(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               bf16: str | None, backend: str, dtype: str) -> None:
        """auto: torch bf16 on CPUs with native bf16, ONNX Runtime on the others; torch stays available everywhere."""
        monkeypatch.setattr(models, "cpu_bf16", lambda: bf16)
        assert models.inference_backend("auto", "cpu") == backend
        assert models.inference_backend("auto", "cuda") == "torch"
        assert all(models.torch_dtype("auto", "cpu", k) == dtype for k in models.BF16_CPU_KINDS)
        assert models.torch_dtype("fp32", "cpu", "embedder") == "fp32"
        auto = graph.embedder_kwargs(Settings(home=tmp_path))
        assert is_ort_folder(auto["model"]) == (backend == "onnx")
        torch_kw = graph.embedder_kwargs(Settings(home=tmp_path, inference_backend="torch"))
        assert torch_kw["model"] == models.resolve_embedder().path and "trust_remote_code" not in torch_kw
        assert torch_kw["model_kwargs"] == ({"dtype": "bfloat16"} if dtype == "bf16" else None)
        ner = graph.entity_extractor(Settings(home=tmp_path, inference_backend="torch"))
        reader = graph.reader_component(Settings(home=tmp_path, inference_backend="torch"))
        assert ner.dtype == reader.dtype == dtype
        assert type(reader).from_dict(reader.to_dict()).dtype == dtype

    def test_cpu_bf16_reads_the_flags(self) -> None:
        flags = Path("/proc/cpuinfo").read_text().split()
        want = "amx" if "amx_bf16" in flags else ("avx512" if "avx512_bf16" in flags else None)
        assert models.cpu_bf16() == want

    def test_entity_extractor_on_onnx_matches_torch(self, tmp_path: Path) -> None:
        texts = ["Angela Merkel met Emmanuel Macron in Paris on behalf of the European Union.",
                 "Shares of Apple Inc. fell in New York after the report from Reuters."]
        onnx_ext = graph.entity_extractor(Settings(home=tmp_path, inference_backend="onnx"))
        torch_ext = graph.entity_extractor(Settings(home=tmp_path, inference_backend="torch", model_dtype="fp32"))
        assert onnx_ext.runtime == "onnx" and torch_ext.runtime == "torch"
        assert type(onnx_ext).from_dict(onnx_ext.to_dict()).runtime == "onnx"
        got = [[(e["label"], e["text"]) for e in ents] for ents in onnx_ext.extract(texts)]
        want = [[(e["label"], e["text"]) for e in ents] for ents in torch_ext.extract(texts)]
        assert got == want
        assert ("PERSON", "Angela Merkel") in got[0]

    def test_ort_model_is_a_drop_in_for_the_transformers_call(self) -> None:
        from transformers import AutoTokenizer

        folder = models.runtime_model("ner", models.resolve_ner(), "onnx").path
        tok = AutoTokenizer.from_pretrained(folder)
        out = OrtModel.from_folder(folder)(**tok(["Paris is in France.", "Hi"], padding=True, return_tensors="pt"))
        assert out.logits.shape[:2] == (2, tok(["Paris is in France."])["input_ids"][0].__len__())
        assert out["logits"] is out.logits
        with pytest.raises(AttributeError):
            _ = out.start_logits


class TestBf16:
    """torch in bf16, the CPU default on AMX machines (``rag.models.BF16_CPU_KINDS``): the fast side of its gate."""

    def test_bf16_embeddings_cosine_to_fp32(self, squad_chunks: list[str]) -> None:
        from sentence_transformers import SentenceTransformer

        path = models.resolve_embedder().path
        ref = SentenceTransformer(path, device="cpu").encode(squad_chunks, batch_size=64, normalize_embeddings=True)
        ours = SentenceTransformer(path, device="cpu", model_kwargs={"dtype": "bfloat16"}).encode(
            squad_chunks, batch_size=64, normalize_embeddings=True)
        cos = (ref * ours).sum(1)
        assert cos.min() >= 0.99, f"min cosine {cos.min():.4f}"

    def test_bf16_entities_and_answers_match_fp32(self, tmp_path: Path, squad_chunks: list[str]) -> None:
        from haystack import Document

        texts = ["Angela Merkel met Emmanuel Macron in Paris on behalf of the European Union.",
                 "Shares of Apple Inc. fell in New York after the report from Reuters."]
        runs = {}
        for dtype in ("fp32", "bf16"):
            settings = Settings(home=tmp_path, inference_backend="torch", model_dtype=dtype)
            ner, reader = graph.entity_extractor(settings), graph.reader_component(settings)
            assert ner.dtype == reader.dtype == dtype
            ner.warm_up()
            reader.warm_up()
            assert next(reader._model.parameters()).dtype == models.torch_dtype_of(dtype)
            ents = [[(e["label"], e["text"]) for e in row] for row in ner.extract(texts)]
            answers = [reader.run(query=q, documents=[Document(content=squad_chunks[0])])["answers"][0]
                       for q in ("In what country is Normandy located?", "When were the Normans in Normandy?")]
            runs[dtype] = (ents, [a.data for a in answers], [a.meta["margin"] for a in answers])
        assert runs["bf16"][0] == runs["fp32"][0] and ("PERSON", "Angela Merkel") in runs["bf16"][0][0]
        assert runs["bf16"][1] == runs["fp32"][1] and runs["bf16"][1][0] == "France"
        assert np.allclose(runs["bf16"][2], runs["fp32"][2], atol=0.5)
