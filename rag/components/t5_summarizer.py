"""Map-reduce summaries of a whole document with a seq2seq (T5-style) model and ``model.generate()``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import ComponentError

from rag.models import resolve_device

logger = logging.getLogger(__name__)


def pack_windows(pieces: list[tuple[str, int]], budget: int, separator_cost: int = 1) -> list[list[str]]:
    """Greedily group consecutive ``(text, n_tokens)`` pieces into windows of at most ``budget`` tokens.

    A piece larger than the budget gets a window of its own (callers split such pieces first).
    """
    windows: list[list[str]] = []
    current: list[str] = []
    used = 0
    for text, n in pieces:
        cost = n + (separator_cost if current else 0)
        if current and used + cost > budget:
            windows.append(current)
            current, used, cost = [], 0, n
        current.append(text)
        used += cost
    if current:
        windows.append(current)
    return windows


def map_reduce(
    texts: list[str],
    windows: Callable[[list[str]], list[list[str]]],
    summarize: Callable[[list[list[str]], bool], list[str]],
    last_windows: Callable[[list[str]], list[list[str]]],
    max_depth: int,
) -> tuple[str, int]:
    """Map-reduce summary of ``texts`` (one document, in order): ``(summary, parts)``.

    ``windows`` packs texts into windows, ``summarize(windows, reduce)`` summarizes each (``reduce`` is False on
    the map level; empty summaries may be left out), and the joined partial summaries are summarized again, level
    by level, until one is left. After ``max_depth`` reduce levels, ``last_windows`` gives the windows of the last
    level. ``summary`` is ``""`` when nothing is left; ``parts`` is the number of windows of the map level.
    """
    level = windows(texts)
    parts = len(level)
    summaries = summarize(level, False)
    depth = 0
    while len(summaries) > 1:
        depth += 1
        level = windows(summaries)
        if depth > max_depth:  # give up reducing
            level = last_windows(summaries)
        logger.debug("Summary reduce level %d: %d partial summaries in %d windows", depth, len(summaries),
                     len(level))
        summaries = summarize(level, True)
    logger.info("Summarized %d chunks in %d parts and %d reduce levels", len(texts), parts, depth)
    return (summaries[0] if summaries else ""), parts


@component
class T5DocumentSummarizer:
    """Summarizes the Documents of one file (its chunks, in order) with a seq2seq model.

    Map-reduce: consecutive chunk texts are packed into windows of at most ``max_input_tokens`` (prefix
    included), each window is summarized, and the joined partial summaries are summarized again, level by
    level, until they fit one window (at most ``max_depth`` levels; the last level truncates).

    Usage example:
    ```python
    summarizer = T5DocumentSummarizer(model="models/flan-t5-small")
    summarizer.warm_up()
    summarizer.run(documents=chunks)  # {"summary": "...", "backend": "t5", "model": "...", "parts": 3}
    ```
    """

    def __init__(
        self,
        model: str,
        max_input_tokens: int = 512,
        max_summary_tokens: int = 128,
        num_beams: int = 2,
        prefix: str = "summarize: ",
        device: str = "cpu",
        max_depth: int = 3,
        batch_size: int = 4,
    ) -> None:
        """
        :param model: a local seq2seq model folder or an HF id already in the local cache.
        :param max_input_tokens: tokens per window fed to the encoder, prefix and EOS included.
        :param max_summary_tokens: ``max_new_tokens`` of each ``generate()`` call, less than ``max_input_tokens``;
            at most half of it guarantees that every reduce level at least halves the number of partial summaries.
        :param num_beams: beam search width (1 = greedy).
        :param prefix: task prefix put before every window (``""`` for models trained without one).
        :param device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        :param max_depth: reduce levels after the map level.
        :param batch_size: windows per ``generate()`` call.
        :raises ValueError: on an empty model or inconsistent sizes.
        """
        if not model:
            raise ValueError("model must be a seq2seq model folder or HF id, got ''")
        if max_input_tokens < 16:
            raise ValueError(f"max_input_tokens must be >= 16, got {max_input_tokens}")
        if not 1 <= max_summary_tokens < max_input_tokens:
            raise ValueError(
                f"max_summary_tokens must be in [1, max_input_tokens), got {max_summary_tokens} "
                f"with max_input_tokens={max_input_tokens}"
            )
        if 2 * max_summary_tokens > max_input_tokens:
            logger.warning(
                "max_summary_tokens=%d is over half of max_input_tokens=%d: long documents may need all %d reduce "
                "levels and then be truncated",
                max_summary_tokens,
                max_input_tokens,
                max_depth,
            )
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, got {max_depth}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.max_input_tokens = max_input_tokens
        self.max_summary_tokens = max_summary_tokens
        self.num_beams = num_beams
        self.prefix = prefix
        self.device = device
        self.max_depth = max_depth
        self.batch_size = batch_size
        self._tokenizer: Any = None
        self._model: Any = None
        self._torch_device: str | None = None

    def warm_up(self) -> None:
        """Load tokenizer and model. Idempotent.

        :raises ComponentError: the model cannot be loaded.
        """
        if self._model is not None:
            return
        try:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModelForSeq2SeqLM.from_pretrained(self.model)
        except Exception as e:
            raise ComponentError(
                f"Could not load seq2seq summarizer {self.model!r}: give a local T5/seq2seq folder (config.json, "
                f"tokenizer, weights) or an HF id already downloaded; leave the summarizer unset to use the "
                f"GGUF generator instead"
            ) from e
        self._torch_device = resolve_device(self.device)
        self._tokenizer = tokenizer
        self._model = model.to(self._torch_device).eval()
        logger.info("Loaded summarizer %s on %s", self.model, self._torch_device)

    def to_dict(self) -> dict[str, Any]:
        """Serialize the init parameters (nothing loaded is kept)."""
        return default_to_dict(
            self,
            model=self.model,
            max_input_tokens=self.max_input_tokens,
            max_summary_tokens=self.max_summary_tokens,
            num_beams=self.num_beams,
            prefix=self.prefix,
            device=self.device,
            max_depth=self.max_depth,
            batch_size=self.batch_size,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> T5DocumentSummarizer:
        """Rebuild the component from ``to_dict()`` output."""
        return default_from_dict(cls, data)

    @component.output_types(summary=str, backend=str, model=str, parts=int)
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Summarize the Documents' texts, taken in the given order as one document.

        :param documents: chunks of one document; those without text are skipped.
        :returns: ``summary`` (``""`` when there is no text), ``backend`` (``"t5"``), ``model`` and ``parts`` (the
            number of windows of the map level).
        :raises ComponentError: the model cannot be loaded.
        """
        texts = [d.content.strip() for d in documents if d.content and d.content.strip()]
        if not texts:
            return {"summary": "", "backend": "t5", "model": self.model, "parts": 0}
        self.warm_up()
        budget = self.max_input_tokens - self._count([self.prefix])[0] - 2  # EOS and a spare token
        summary, parts = map_reduce(
            texts,
            windows=lambda t: self._windows(t, budget),
            summarize=lambda windows, _reduce: self._summarize(windows),
            last_windows=lambda summaries: [summaries],  # one window, truncated by the tokenizer
            max_depth=self.max_depth,
        )
        return {"summary": summary, "backend": "t5", "model": self.model, "parts": parts}

    def _count(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self._tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _windows(self, texts: list[str], budget: int) -> list[list[str]]:
        pieces: list[tuple[str, int]] = []
        for text, n in zip(texts, self._count(texts), strict=True):
            if n <= budget:
                pieces.append((text, n))
                continue
            # Too long for one window: split at word boundaries (token counts of words add up closely).
            words = text.split()
            groups = [
                " ".join(g) for g in pack_windows(list(zip(words, self._count(words), strict=True)), budget)
            ]
            pieces.extend(zip(groups, self._count(groups), strict=True))
        return pack_windows(pieces, budget)

    def _summarize(self, windows: list[list[str]]) -> list[str]:
        import torch

        inputs = [self.prefix + "\n".join(w) for w in windows]
        out: list[str] = []
        with torch.inference_mode():
            for i in range(0, len(inputs), self.batch_size):
                batch = self._tokenizer(
                    inputs[i : i + self.batch_size],
                    max_length=self.max_input_tokens,
                    truncation=True,
                    padding=True,
                    return_tensors="pt",
                ).to(self._torch_device)
                generated = self._model.generate(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    max_new_tokens=self.max_summary_tokens,
                    num_beams=self.num_beams,
                    early_stopping=self.num_beams > 1,
                )
                out.extend(
                    s.strip() for s in self._tokenizer.batch_decode(generated, skip_special_tokens=True)
                )
        return out
