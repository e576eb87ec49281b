"""The engine: a process-wide model pool and the cache of built graphs.

- :class:`ModelPool`: each model (embedder, reranker, reader, NER, generator, summarizer) is loaded once per
  process and shared by every graph and every tenant that uses it. Sharing is by load parameters: two
  components whose init parameters (minus run-time-only ones such as ``top_k`` or ``generation_kwargs``)
  are equal get the same loaded objects, the state ``warm_up()`` set on the first one. Generation is
  serialised by :attr:`ModelPool.generate_lock` (llama.cpp and a static KV cache are not thread-safe).
- :class:`Engine`: the graphs of one store (indexing, retrieval, query), the summarizer and the answer-side
  NER, built on first use from :mod:`rag.graph` and warmed through the pool. Passwords are run-time inputs
  of the parser, never part of a graph, so they never load anything.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from haystack import Pipeline

from rag import graph, models
from rag.config import Settings

logger = logging.getLogger(__name__)

# settings that only the generator/answer stage uses: changing them keeps the retrieval graphs
GENERATION_SETTINGS = frozenset({"temperature", "top_p", "max_tokens", "repeat_penalty", "generator", "n_ctx",
                                 "n_threads", "n_gpu_layers", "min_rerank_score", "top_k", "summarizer",
                                 "generator_backend", "generator_quantization", "answer_mode", "min_confidence",
                                 "reader_top_k", "reader", "answer_rerank_k"})
# init parameters that change how a component runs, not what it loads
_RUN_TIME_PARAMS = frozenset({"top_k", "calibration", "spans_per_window", "batch_size", "progress_bar", "generation_kwargs", "meta_fields_to_embed",
                              "embedding_separator", "normalize_embeddings", "prefix", "suffix", "scale_score",
                              "calibration_factor", "score_threshold", "streaming_callback", "query_prefix",
                              "document_prefix", "query_suffix", "document_suffix", "max_summary_tokens",
                              "max_context_words", "max_depth", "truncate_dim", "precision", "encode_kwargs"})


def _load_key(component: Any) -> str | None:
    """What a component loads, as a string; None when it cannot be told (then it is never shared)."""
    try:
        params = dict(component.to_dict().get("init_parameters") or {})
    except Exception:  # noqa: BLE001 - a component without to_dict is warmed on its own
        return None
    kept = {k: v for k, v in params.items() if k not in _RUN_TIME_PARAMS}
    if type(component).__name__ == "TransformersChatGenerator":  # its static KV cache is sized by max_tokens
        kept["max_tokens"] = (params.get("generation_kwargs") or {}).get("max_tokens")
    return f"{type(component).__module__}.{type(component).__qualname__}:" + json.dumps(kept, sort_keys=True,
                                                                                      default=str)


class ModelPool:
    """Loaded models shared by every graph in the process (one instance: :data:`POOL`)."""

    def __init__(self) -> None:
        self._loaded: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self.generate_lock = threading.RLock()
        self.loads = 0  # how many real loads happened (tests and the bench read it)

    def warm(self, component: Any) -> Any:
        """Warm ``component`` up, reusing what an equal component already loaded; returns it."""
        if not hasattr(component, "warm_up"):
            return component
        inner = getattr(component, "generator", None)
        if inner is not None and hasattr(inner, "warm_up"):  # wrappers (the LLM summarizer) share their generator
            self.warm(inner)
        key = _load_key(component)
        with self._lock:
            shared = self._loaded.get(key) if key else None
            if shared is not None:
                for name, value in shared.items():
                    setattr(component, name, value)
                return component
            before = dict(vars(component))
            component.warm_up()
            self.loads += 1
            if key:
                self._loaded[key] = {k: v for k, v in vars(component).items()
                                     if k not in before or before[k] is not v}
        return component

    def warm_pipeline(self, pipeline: Pipeline) -> Pipeline:
        for _, comp in pipeline.walk():
            self.warm(comp)
        return pipeline

    def loaded(self) -> list[str]:
        """Keys of the loaded models (class and load parameters)."""
        with self._lock:
            return sorted(self._loaded)

    def clear(self) -> None:
        """Forget every loaded model (their memory goes when no graph holds them)."""
        with self._lock:
            self._loaded.clear()


POOL = ModelPool()


class Engine:
    """The built graphs of one store, warmed through a :class:`ModelPool`."""

    def __init__(self, settings: Settings, store: Any, pool: ModelPool | None = None) -> None:
        """
        :param settings: the settings graphs are built from.
        :param store: a zero-argument callable returning the document store (opened on first use).
        :param pool: the model pool; the process-wide :data:`POOL` when None.
        """
        self.settings = settings
        self._store = store
        self.pool = pool or POOL
        self._graphs: dict[str, Any] = {}
        self._lock = threading.RLock()

    def pipeline(self, name: str, **kwargs: Any) -> Pipeline:
        """The ``indexing``, ``retrieval`` or ``query`` graph for ``kwargs``, built once and warmed."""
        key = f"{name}:{sorted(kwargs.items())}"
        with self._lock:
            if key not in self._graphs:
                builder = {"indexing": graph.build_indexing, "retrieval": graph.build_retrieval,
                           "query": graph.build_query}[name]
                settings = self.settings  # a per-call generator builds its own query graph, settings untouched
                if "generator" in kwargs:
                    kwargs = dict(kwargs)
                    settings = settings.model_copy(update={"generator": kwargs.pop("generator")})
                self._graphs[key] = self.pool.warm_pipeline(builder(settings, self._store(), **kwargs))
            return self._graphs[key]

    def entity_extractor(self) -> Any:
        """The answer-side NER (the same loaded model as the indexing graph's)."""
        with self._lock:
            if "entities" not in self._graphs:
                self._graphs["entities"] = self.pool.warm(graph.entity_extractor(self.settings))
            return self._graphs["entities"]

    def summarizer(self) -> Any:
        """Extractive by default; T5 when one is configured; the GGUF generator for ``summarizer=generator``."""
        with self._lock:
            if "summarizer" not in self._graphs:
                name = self.settings.summarizer
                extractive = models.summarizer_is_extractive(name)
                resolved = None if extractive else models.resolve_summarizer(name)
                if extractive:
                    from rag.components.extractive_summarizer import ExtractiveDocumentSummarizer

                    comp = ExtractiveDocumentSummarizer(device=models.resolve_device(self.settings.device),
                                                        **graph.embedder_kwargs(self.settings))
                elif resolved is not None:
                    from rag.components.t5_summarizer import T5DocumentSummarizer

                    comp = T5DocumentSummarizer(model=resolved.path,
                                                device=models.resolve_device(self.settings.device))
                else:
                    from rag.components.llm_summarizer import LLMDocumentSummarizer

                    gen = graph.build_generator(self.settings, {"temperature": 0.0,
                                                                "repeat_penalty": self.settings.repeat_penalty})
                    comp = LLMDocumentSummarizer(generator=gen, max_summary_tokens=200)
                self._graphs["summarizer"] = self.pool.warm(comp)
            return self._graphs["summarizer"]

    def update(self, settings: Settings, generation_only: bool) -> None:
        """New settings: drop the graphs they change (only the answer-side ones when ``generation_only``)."""
        with self._lock:
            self.settings = settings
            for key in list(self._graphs):
                if not generation_only or key.startswith("query:") or key == "summarizer":
                    del self._graphs[key]

    def clear(self) -> None:
        with self._lock:
            self._graphs.clear()
