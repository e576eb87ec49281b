"""T5DocumentSummarizer with a tiny randomly initialised T5 and a tokenizer trained here on SQuAD text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from haystack import Document
from haystack.core.errors import ComponentError

from evals.datasets import data_dir
from rag.components.t5_summarizer import T5DocumentSummarizer, pack_windows

DATA = data_dir()
SQUAD_DEV = DATA / "squad" / "dev-v2.0.json"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def squad_paragraphs() -> list[list[str]]:
    """Paragraph texts of each SQuAD dev article."""
    data = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))["data"]
    return [[p["context"] for p in article["paragraphs"]] for article in data]


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    """A 2-layer T5 (d_model 32, random weights) and a 2,000-piece Unigram tokenizer trained on SQuAD contexts."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    corpus = [p for article in squad_paragraphs()[:4] for p in article]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    special = ["<pad>", "</s>", "<unk>"]
    tok.train_from_iterator(
        corpus, trainers.UnigramTrainer(vocab_size=2000, special_tokens=special, unk_token="<unk>")
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )
    config = T5Config(
        vocab_size=tok.get_vocab_size(),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    out = tmp_path_factory.mktemp("tiny-t5")
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(out)
    return out


class TestT5DocumentSummarizer:
    def test_init_default(self):
        summarizer = T5DocumentSummarizer(model="google/flan-t5-small")
        assert (summarizer.max_input_tokens, summarizer.max_summary_tokens, summarizer.num_beams) == (
            512,
            128,
            2,
        )
        assert summarizer.prefix == "summarize: "
        assert summarizer._model is None  # nothing loaded before warm_up

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"model": ""}, "model"),
            ({"model": "m", "max_input_tokens": 8}, "max_input_tokens"),
            ({"model": "m", "max_input_tokens": 100, "max_summary_tokens": 100}, "max_summary_tokens"),
            ({"model": "m", "max_summary_tokens": 0}, "max_summary_tokens"),
            ({"model": "m", "num_beams": 0}, "num_beams"),
            ({"model": "m", "max_depth": -1}, "max_depth"),
        ],
    )
    def test_init_rejects_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            T5DocumentSummarizer(**kwargs)

    def test_to_dict(self):
        summarizer = T5DocumentSummarizer(model="models/t5", max_input_tokens=256, prefix="")
        assert summarizer.to_dict() == {
            "type": "rag.components.t5_summarizer.T5DocumentSummarizer",
            "init_parameters": {
                "model": "models/t5",
                "max_input_tokens": 256,
                "max_summary_tokens": 128,
                "num_beams": 2,
                "prefix": "",
                "device": "cpu",
                "max_depth": 3,
                "batch_size": 4,
            },
        }

    def test_from_dict(self):
        summarizer = T5DocumentSummarizer(model="models/t5", num_beams=1, max_depth=1)
        restored = T5DocumentSummarizer.from_dict(summarizer.to_dict())
        assert restored.to_dict() == summarizer.to_dict()

    def test_pack_windows(self):
        pieces = [("a", 3), ("b", 3), ("c", 9), ("d", 2), ("e", 2)]
        assert pack_windows(pieces, budget=8) == [["a", "b"], ["c"], ["d", "e"]]
        assert pack_windows([], budget=8) == []

    def test_load_failure_is_component_error(self, tmp_path):
        summarizer = T5DocumentSummarizer(model=str(tmp_path / "no-model"))
        with pytest.raises(ComponentError, match="no-model"):
            summarizer.run(documents=[Document(content="Some text.")])

    def test_run_without_text(self, tmp_path):
        summarizer = T5DocumentSummarizer(model=str(tmp_path / "never-loaded"))
        result = summarizer.run(documents=[Document(content=""), Document(content=None)])
        assert result == {"summary": "", "backend": "t5", "model": str(tmp_path / "never-loaded"), "parts": 0}

    def test_windows_fit_the_encoder(self, tiny_t5_dir):
        summarizer = T5DocumentSummarizer(model=str(tiny_t5_dir), max_input_tokens=64, max_summary_tokens=8)
        summarizer.warm_up()
        chunks = squad_paragraphs()[0][:12]
        windows = summarizer._windows(chunks + [" ".join(chunks)], budget=60)  # one chunk far over budget
        encoded = summarizer._tokenizer([summarizer.prefix + "\n".join(w) for w in windows])["input_ids"]
        assert len(windows) > 10
        assert max(len(ids) for ids in encoded) <= 64 + 4  # word-level packing is exact up to a few tokens
        assert (
            " ".join(" ".join(w) for w in windows).split()
            == (" ".join(chunks) + " " + " ".join(chunks)).split()
        )

    def test_run_map_reduce_on_long_document(self, tiny_t5_dir):
        summarizer = T5DocumentSummarizer(
            model=str(tiny_t5_dir), max_input_tokens=64, max_summary_tokens=8, num_beams=2
        )
        chunks = [Document(content=p, meta={"chunk": i}) for i, p in enumerate(squad_paragraphs()[1][:4])]
        before = [d.to_dict() for d in chunks]

        result = summarizer.run(documents=chunks)

        assert set(result) == {"summary", "backend", "model", "parts"}
        assert result["backend"] == "t5" and result["model"] == str(tiny_t5_dir)
        assert result["parts"] > 1
        assert isinstance(result["summary"], str)
        assert len(result["summary"].split()) <= 8  # one generate() of at most 8 tokens
        assert [d.to_dict() for d in chunks] == before

    def test_run_stops_at_max_depth(self, tiny_t5_dir):
        summarizer = T5DocumentSummarizer(
            model=str(tiny_t5_dir), max_input_tokens=32, max_summary_tokens=15, num_beams=1, max_depth=0
        )
        result = summarizer.run(documents=[Document(content=p) for p in squad_paragraphs()[2][:2]])
        assert result["parts"] > 1 and isinstance(result["summary"], str)

    def test_round_trip_summarizes_the_same(self, tiny_t5_dir):
        summarizer = T5DocumentSummarizer(model=str(tiny_t5_dir), max_input_tokens=64, max_summary_tokens=8)
        restored = T5DocumentSummarizer.from_dict(summarizer.to_dict())
        docs = [Document(content=squad_paragraphs()[3][0])]
        assert restored.run(documents=docs) == summarizer.run(documents=docs)
