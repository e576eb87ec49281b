"""The transformers generator backend with the real packaged SmolLM2 GGUF (de-quantized by transformers), on CPU."""

from __future__ import annotations

import pytest
from haystack.dataclasses import ChatMessage

from rag import models
from rag.components.transformers_chat_generator import TransformersChatGenerator, _CallbackStreamer
from rag.config import Settings
from rag.graph import build_generator, generator_backend

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gen() -> TransformersChatGenerator:
    g = TransformersChatGenerator(model=models.resolve_generator().path, device="cpu",
                                  generation_kwargs={"temperature": 0.0, "max_tokens": 24})
    g.warm_up()
    return g


def test_loads_gguf_and_answers(gen: TransformersChatGenerator) -> None:
    assert gen.loaded == {"device": "cpu", "dtype": "float32", "attention": "sdpa", "quantization": "none",
                          "static_cache": False}
    reply = gen.run([ChatMessage.from_user("What is the capital city of France? Answer in one word.")])["replies"][0]
    assert "paris" in reply.text.lower()
    assert reply.meta["usage"]["completion_tokens"] <= 24
    assert reply.meta["usage"]["prompt_tokens"] > 5


def test_streaming_matches_reply_and_stops(gen: TransformersChatGenerator) -> None:
    chunks: list[str] = []
    msgs = [ChatMessage.from_user("Count from 1 to 20, separated by commas.")]
    reply = gen.run(msgs, generation_kwargs={"stop": ["7"], "max_tokens": 60},
                    streaming_callback=lambda c: chunks.append(c.content))["replies"][0]
    assert "7" not in reply.text and reply.text.strip().startswith("1")
    assert reply.meta["finish_reason"] == "stop"
    assert "".join(chunks) == reply.text
    assert len(chunks) > 2  # streamed piece by piece, not in one go


def test_stop_event_ends_the_reply_at_the_next_token(gen: TransformersChatGenerator) -> None:
    import threading

    stop = threading.Event()
    chunks: list[str] = []

    def on_chunk(c) -> None:
        chunks.append(c.content)
        if len(chunks) == 3:
            stop.set()

    msgs = [ChatMessage.from_user("Count from 1 to 50, separated by commas.")]
    reply = gen.run(msgs, generation_kwargs={"max_tokens": 60, "stop_event": stop}, streaming_callback=on_chunk)
    reply = reply["replies"][0]
    assert reply.meta["finish_reason"] == "stopped"
    assert reply.meta["usage"]["completion_tokens"] <= 6  # a token or two after the third piece, not 60
    assert gen.run(msgs, generation_kwargs={"max_tokens": 8, "stop_event": threading.Event()})["replies"][0] \
        .meta["usage"]["completion_tokens"] == 8  # an event never set changes nothing


def test_streamer_holds_back_partial_stop_strings() -> None:
    class Tok:
        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            return "".join(chr(i) for i in ids)

    import torch

    out: list[str] = []
    s = _CallbackStreamer(Tok(), ["\n\n"], lambda c: out.append(c.content))
    s.put(torch.tensor([1]))  # the prompt
    for ch in "ab\ncd\n\nef":
        s.put(torch.tensor([ord(ch)]))
    s.end()
    assert "".join(out) == "ab\ncd"


def test_serialises(gen: TransformersChatGenerator) -> None:
    d = gen.to_dict()
    g2 = TransformersChatGenerator.from_dict(d)
    assert g2.to_dict() == d and d["init_parameters"]["model"].endswith(".gguf")


def test_backend_choice(tmp_path) -> None:
    gguf = models.resolve_generator().path
    assert generator_backend(Settings(device="cpu"), gguf) == "llama_cpp"
    assert generator_backend(Settings(device="cuda"), gguf) == "transformers"  # see generator_backend's docstring
    assert generator_backend(Settings(device="cuda", generator_backend="llama_cpp"), gguf) == "llama_cpp"
    assert generator_backend(Settings(device="cpu", generator_backend="transformers"), gguf) == "transformers"
    (tmp_path / "config.json").write_text("{}")
    folder = models.resolve_generator(str(tmp_path)).path
    assert generator_backend(Settings(device="cpu"), folder) == "transformers"
    g = build_generator(Settings(device="cpu", generator_backend="transformers"), {"max_tokens": 5})
    assert isinstance(g, TransformersChatGenerator) and g.generation_kwargs == {"max_tokens": 5}
    with pytest.raises(ValueError, match="CUDA"):
        TransformersChatGenerator(model=gguf, device="cpu", quantization="4bit").warm_up()


def test_static_cache_decodes_like_the_dynamic_one(gen: TransformersChatGenerator) -> None:
    """The compiled-decode path (default on CUDA) gives the same greedy text; here it runs on CPU."""
    static = TransformersChatGenerator(model=gen.model, device="cpu", compile=True, n_ctx=512,
                                       generation_kwargs={"temperature": 0.0, "max_tokens": 24})
    static.warm_up()
    assert static.loaded["static_cache"]
    msgs = [ChatMessage.from_user("Name three primary colors.")]
    a = gen.run(msgs)["replies"][0].text
    b = static.run(msgs)["replies"][0].text
    c = static.run(msgs)["replies"][0].text  # the cache is reset between calls
    assert a == b == c and a
