"""Per-stage timings of a graph run, from Haystack's own tracing spans (one per component run).

```python
from rag.timings import stage_timer

with stage_timer() as t:
    out = pipeline.run(data)
    t.mark("first_token")            # optional moments, e.g. from a streaming callback
t.stages()   # {"embed_s": .., "retrieve_s": .., "rerank_s": .., "read_s": .., "prompt_s": .., "generate_s": ..,
             #  "first_token_s": .., "total_s": ..}
t.components   # seconds per component name, e.g. {"query_embedder": 0.012, "retriever": 0.3, ...}
percentile([0.2, 0.1, 0.4], 0.95)   # 0.4: the one percentile of docrag (benchmarks, evals, the load test)
```

Stages are sums over the components named in :data:`STAGES` (any other component is counted in ``other_s``);
``first_token_s`` and other marks are measured from the start of the ``with`` block. The tracer is installed
once per process and records only inside ``stage_timer()`` (a context variable, so concurrent requests on
other threads keep their own timings); a tracer enabled before (e.g. OpenTelemetry) still receives every span.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from haystack import tracing

# component name -> stage (names of the components that rag/graph.py builds)
STAGES: dict[str, str] = {
    "query_embedder": "embed", "sparse_query_embedder": "embed",
    "retriever": "retrieve",
    "reranker": "rerank",
    "reader": "read",
    "gate": "gate", "evidence": "gate",
    "prompt_builder": "prompt",
    "generator": "generate",
    "answer_builder": "answer",
}
STAGE_ORDER = ("embed", "retrieve", "rerank", "read", "gate", "prompt", "generate", "answer", "other")


@dataclass
class StageTimings:
    """Seconds per component and marks (seconds from the start), filled while :func:`stage_timer` is open."""

    start: float = field(default_factory=time.perf_counter)
    components: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)  # first start of each component, from ``start``
    marks: dict[str, float] = field(default_factory=dict)
    total: float | None = None

    def add(self, component: str, began: float, seconds: float) -> None:
        self.components[component] = self.components.get(component, 0.0) + seconds
        self.started.setdefault(component, began - self.start)

    def mark(self, name: str, at: float | None = None) -> None:
        """Record a moment (first one wins), e.g. ``mark("first_token")`` from a streaming callback."""
        self.marks.setdefault(name, (at if at is not None else time.perf_counter()) - self.start)

    def stages(self, digits: int = 4) -> dict[str, float]:
        """``<stage>_s`` for every stage that ran, the marks as ``<mark>_s`` and ``total_s``."""
        sums: dict[str, float] = {}
        for name, seconds in self.components.items():
            stage = STAGES.get(name, "other")
            sums[stage] = sums.get(stage, 0.0) + seconds
        out = {f"{s}_s": round(sums[s], digits) for s in STAGE_ORDER if s in sums}
        out.update({f"{k}_s": round(v, digits) for k, v in self.marks.items()})
        total = self.total if self.total is not None else time.perf_counter() - self.start
        out["total_s"] = round(total, digits)
        return out


_current: contextvars.ContextVar[StageTimings | None] = contextvars.ContextVar("docrag_stage_timings", default=None)
_install_lock = threading.Lock()


class _StageTracer(tracing.Tracer):
    """Times ``haystack.component.run`` spans into the active :class:`StageTimings`; forwards to ``inner``."""

    def __init__(self, inner: tracing.Tracer) -> None:
        self.inner = inner

    @contextlib.contextmanager
    def trace(self, operation_name: str, tags: dict[str, Any] | None = None,
              parent_span: tracing.Span | None = None) -> Iterator[tracing.Span]:
        timings = _current.get()
        name = (tags or {}).get("haystack.component.name") if operation_name == "haystack.component.run" else None
        began = time.perf_counter()
        try:
            with self.inner.trace(operation_name, tags=tags, parent_span=parent_span) as span:
                yield span
        finally:
            if timings is not None and name:
                timings.add(str(name), began, time.perf_counter() - began)

    def current_span(self) -> tracing.Span | None:
        return self.inner.current_span()


def _install() -> None:
    with _install_lock:
        actual = tracing.tracer.actual_tracer
        if not isinstance(actual, _StageTracer):
            tracing.enable_tracing(_StageTracer(actual))


@contextlib.contextmanager
def stage_timer() -> Iterator[StageTimings]:
    """Time every Haystack component run inside the block; see the module docstring."""
    _install()
    timings = StageTimings()
    token = _current.set(timings)
    try:
        yield timings
    finally:
        timings.total = time.perf_counter() - timings.start
        _current.reset(token)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank on ``round(q * (n - 1))``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
