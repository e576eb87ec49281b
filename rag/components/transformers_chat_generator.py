"""Chat generation with a transformers causal LM (Llama architecture and others) — the GPU generator path.

llama.cpp is docrag's default generator. This component is the alternative for a GPU without a CUDA build of
llama-cpp-python, or for models that only exist as HF checkpoints: it loads any ``AutoModelForCausalLM`` by HF id
or local folder, or a GGUF file (transformers de-quantizes it; needs the ``gguf`` package), in bf16/fp16 on CUDA
(4-bit or 8-bit when ``bitsandbytes`` is installed), with flash-attn when the ``gpu`` extra is installed and torch
SDPA otherwise. Its ``run()`` takes and returns what ``LlamaCppChatGenerator`` does, so the graph, streaming and
the summarizer work with either: ``generation_kwargs`` use llama.cpp's names (``max_tokens``, ``temperature``,
``top_p``, ``repeat_penalty``, ``stop``), plus ``stop_event``: a ``threading.Event`` that ends the reply at
its next token once set (the app's Stop; ``DocRAG.ask(stop=...)`` passes it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.utils import deserialize_callable, serialize_callable

from rag.models import check_dtype, torch_dtype_of

logger = logging.getLogger(__name__)

Quantization = Literal["none", "4bit", "8bit"]
_DTYPES = ("auto", "fp32", "bf16", "fp16")


class _CallbackStreamer:
    """A transformers streamer that decodes incrementally and holds back text that could start a stop string."""

    def __init__(self, tokenizer: Any, stops: list[str], callback: Callable[[StreamingChunk], None]):
        self.tokenizer, self.stops, self.callback = tokenizer, stops, callback
        self.ids: list[int] = []
        self.sent = 0
        self.skipped_prompt = False
        self.done = False

    def put(self, value: Any) -> None:
        if not self.skipped_prompt:  # generate() first hands over the prompt
            self.skipped_prompt = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        self._emit(final=False)

    def end(self) -> None:
        self._emit(final=True)

    def _emit(self, final: bool) -> None:
        if self.done:
            return
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        cut = _first_stop(text, self.stops)
        if cut is not None:
            text, final = text[:cut], True
        if final:
            ready = len(text)
        else:
            hold = max((len(s) - 1 for s in self.stops), default=0)
            ready = len(text) - hold
            if text.endswith("\ufffd"):  # an incomplete multi-byte character
                ready = min(ready, len(text.rstrip("\ufffd")))
        if ready > self.sent:
            self.callback(StreamingChunk(content=text[self.sent:ready]))
            self.sent = ready
        self.done = final


class _RecentRepetitionPenalty:
    """llama.cpp's ``repeat_penalty``: only the last ``window`` tokens are penalised (``repeat_last_n``=64).

    transformers' ``repetition_penalty`` penalises every token of the prompt too, which stops a RAG model from
    quoting its context; this keeps the two backends' decoding the same.
    """

    def __init__(self, penalty: float, window: int = 64):
        self.penalty, self.window = penalty, window

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        recent = input_ids[:, -self.window:]
        picked = torch.gather(scores, 1, recent)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, recent, picked)


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


@component
class TransformersChatGenerator:
    """Generates chat replies with ``transformers`` (``AutoModelForCausalLM.generate``).

    Usage:
    ```python
    gen = TransformersChatGenerator(model="/models/SmolLM2-135M-Instruct.Q4_1.gguf", device="cuda")
    gen.warm_up()
    gen.run([ChatMessage.from_user("Capital of France?")], generation_kwargs={"max_tokens": 20})["replies"][0].text
    ```
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "auto",
        quantization: Quantization = "none",
        attn_implementation: str | None = None,
        generation_kwargs: dict[str, Any] | None = None,
        streaming_callback: Callable[[StreamingChunk], None] | None = None,
        n_ctx: int = 4096,
        compile: bool | None = None,
    ):
        """
        :param model: HF id (resolved offline), a model folder, or a ``.gguf`` file.
        :param device: ``cpu``, ``cuda`` or ``cuda:N``.
        :param dtype: ``auto`` (bf16 on CUDA with bf16 support, else fp16 on CUDA, fp32 on CPU), ``fp32``, ``bf16``,
            ``fp16``.
        :param quantization: ``4bit``/``8bit`` load the weights through bitsandbytes (CUDA only).
        :param attn_implementation: ``flash_attention_2``, ``sdpa`` or ``eager``; None = flash-attn when installed
            on CUDA, else SDPA.
        :param generation_kwargs: defaults for ``run()``, in llama.cpp's names.
        :param streaming_callback: called with each new piece of text.
        :param n_ctx: prompt tokens kept (the start of longer prompts is cut, like llama.cpp's context limit).
        :param compile: decode with a static KV cache of ``n_ctx`` + max tokens, which transformers compiles into
            CUDA graphs (one compile for all prompts: the cache shape never changes); None = on for CUDA. Small
            models are launch-bound on GPU without it.
        """
        check_dtype(dtype, _DTYPES)
        if quantization not in get_args(Quantization):
            raise ValueError(f"quantization must be none, 4bit or 8bit, got {quantization!r}")
        self.model = model
        self.device = device
        self.dtype = dtype
        self.quantization = quantization
        self.attn_implementation = attn_implementation
        self.generation_kwargs = generation_kwargs or {}
        self.streaming_callback = streaming_callback
        self.n_ctx = n_ctx
        self.compile = compile
        self._model: Any = None
        self._cache: Any = None
        self._cache_len = 0
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.loaded: dict[str, str] = {}

    # --- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        cb = serialize_callable(self.streaming_callback) if self.streaming_callback else None
        return default_to_dict(self, model=self.model, device=self.device, dtype=self.dtype,
                               quantization=self.quantization, attn_implementation=self.attn_implementation,
                               generation_kwargs=self.generation_kwargs, streaming_callback=cb, n_ctx=self.n_ctx,
                               compile=self.compile)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformersChatGenerator:
        params = data.get("init_parameters", {})
        if params.get("streaming_callback"):
            params["streaming_callback"] = deserialize_callable(params["streaming_callback"])
        return default_from_dict(cls, data)

    # --- loading -------------------------------------------------------------------------------------
    def _resolved_dtype(self, torch: Any) -> Any:
        dtype = self.dtype
        on_cuda = self.device.startswith("cuda")
        if dtype == "auto":
            dtype = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if on_cuda else "fp32"
        return torch_dtype_of(dtype)

    def _attention(self) -> str:
        if self.attn_implementation:
            return self.attn_implementation
        from rag.gpu_embed import attention_backend

        return attention_backend(self.device, "bf16" if self.device.startswith("cuda") else "fp32")

    def warm_up(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(self.model).expanduser()
        src: dict[str, Any]
        if path.suffix == ".gguf":
            src = {"pretrained_model_name_or_path": str(path.parent), "gguf_file": path.name}
        else:
            src = {"pretrained_model_name_or_path": self.model}
        dtype = self._resolved_dtype(torch)
        kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": self._attention()}
        if self.quantization != "none":
            if not self.device.startswith("cuda"):
                raise ValueError(f"{self.quantization} quantization needs a CUDA device, not {self.device!r}")
            try:
                import bitsandbytes  # noqa: F401
                from transformers import BitsAndBytesConfig
            except ImportError as e:
                raise ImportError(f"{self.quantization} weights need bitsandbytes: pip install bitsandbytes") from e
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=self.quantization == "4bit", load_in_8bit=self.quantization == "8bit",
                bnb_4bit_compute_dtype=dtype)
            kwargs["device_map"] = {"": self.device}
        self._tokenizer = AutoTokenizer.from_pretrained(**src)
        try:
            model = AutoModelForCausalLM.from_pretrained(**src, **kwargs)
        except (ImportError, ValueError) as e:
            if kwargs["attn_implementation"] == "sdpa":
                raise
            logger.warning("attention %s unavailable (%s): falling back to sdpa", kwargs["attn_implementation"], e)
            kwargs["attn_implementation"] = "sdpa"
            model = AutoModelForCausalLM.from_pretrained(**src, **kwargs)
        if self.quantization == "none":
            model = model.to(self.device)
        self._model = model.eval()
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        compiled = self.device.startswith("cuda") if self.compile is None else self.compile
        if compiled and self.quantization == "none":
            from transformers import StaticCache

            self._cache_len = self.n_ctx + self._max_new_tokens()
            self._cache = StaticCache(config=model.config, max_cache_len=self._cache_len)
        self.loaded = {"device": self.device, "dtype": str(dtype).removeprefix("torch."),
                       "attention": kwargs["attn_implementation"], "quantization": self.quantization,
                       "static_cache": self._cache is not None}
        logger.info("transformers generator %s on %s", self.model, self.loaded)
        if self._cache is not None:  # compile the decode step now, not on the user's first question
            self.run([ChatMessage.from_user("Hello")], generation_kwargs={"max_tokens": 4, "temperature": 0.0})

    # --- generation ----------------------------------------------------------------------------------
    def _max_new_tokens(self, g: dict[str, Any] | None = None) -> int:
        return int((g if g is not None else self.generation_kwargs).get("max_tokens") or 256)

    def _hf_kwargs(self, g: dict[str, Any]) -> dict[str, Any]:
        temperature = float(g.get("temperature", 0.8))
        hf: dict[str, Any] = {"max_new_tokens": self._max_new_tokens(g), "do_sample": temperature > 0}
        penalty = float(g.get("repeat_penalty", 1.0))
        if penalty != 1.0:
            from transformers import LogitsProcessorList

            hf["logits_processor"] = LogitsProcessorList([_RecentRepetitionPenalty(penalty)])
        if temperature > 0:
            hf.update(temperature=temperature, top_p=float(g.get("top_p", 0.95)))
            if g.get("top_k"):
                hf["top_k"] = int(g["top_k"])
        if g.get("min_tokens"):
            hf["min_new_tokens"] = int(g["min_tokens"])
        return hf

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None,
            streaming_callback: Callable[[StreamingChunk], None] | None = None) -> dict[str, list[ChatMessage]]:
        """Reply to ``messages`` (rendered with the model's chat template).

        :param messages: the conversation.
        :param generation_kwargs: overrides of the defaults, llama.cpp names (``stop`` is a list of strings;
            ``stop_event`` a ``threading.Event`` that stops generation once set).
        :param streaming_callback: called with each new piece of text; overrides the init one.
        :returns: ``replies``: one assistant ``ChatMessage`` with ``meta`` holding model, token usage and finish reason.
        """
        import torch

        if self._model is None:
            self.warm_up()
        g = {**self.generation_kwargs, **(generation_kwargs or {})}
        stops = [s for s in (g.get("stop") or []) if s]
        tok = self._tokenizer
        chat = [{"role": m.role.value, "content": m.text or ""} for m in messages]
        enc = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        input_ids = enc["input_ids"][:, -self.n_ctx:].to(self._model.device)
        mask = enc["attention_mask"][:, -self.n_ctx:].to(self._model.device)
        hf = self._hf_kwargs(g)
        if g.get("stop_event") is not None:  # Stop: end at the next token
            from transformers import StoppingCriteria, StoppingCriteriaList

            event = g["stop_event"]

            class _Stopped(StoppingCriteria):
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool,
                                      device=input_ids.device)

            hf["stopping_criteria"] = StoppingCriteriaList([_Stopped()])
        if self._cache is not None:
            room = self._cache_len - input_ids.shape[1]
            hf["max_new_tokens"] = max(1, min(hf["max_new_tokens"], room))
            hf.setdefault("min_new_tokens", 0)
            hf["min_new_tokens"] = min(hf["min_new_tokens"], hf["max_new_tokens"])
        if stops:
            hf.update(stop_strings=stops, tokenizer=tok)
        callback = streaming_callback or self.streaming_callback
        streamer = _CallbackStreamer(tok, stops, callback) if callback else None
        with self._lock, torch.inference_mode():
            if self._cache is not None:
                self._cache.reset()
                hf["past_key_values"] = self._cache
            out = self._model.generate(input_ids=input_ids, attention_mask=mask, streamer=streamer,
                                       pad_token_id=tok.pad_token_id, **hf)
        new = out[0, input_ids.shape[1]:].tolist()
        text = tok.decode(new, skip_special_tokens=True)
        cut = _first_stop(text, stops)
        finish = "stop" if cut is not None or (new and new[-1] == tok.eos_token_id) else "length"
        if g.get("stop_event") is not None and g["stop_event"].is_set():
            finish = "stopped"
        if cut is not None:
            text = text[:cut]
        meta = {"model": self.model, "finish_reason": finish, "index": 0,
                "usage": {"prompt_tokens": int(input_ids.shape[1]), "completion_tokens": len(new),
                          "total_tokens": int(input_ids.shape[1]) + len(new)}}
        return {"replies": [ChatMessage.from_assistant(text, meta=meta)]}
