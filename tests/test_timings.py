"""rag.timings: per-stage seconds from Haystack's component spans (real pipelines of small real components)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from haystack import Pipeline, component, tracing

from rag.timings import STAGES, stage_timer


@component
class Sleeper:
    """Sleeps ``seconds`` and passes its text on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @component.output_types(text=str)
    def run(self, text: str) -> dict[str, str]:
        time.sleep(self.seconds)
        return {"text": text}


def _pipeline(names: dict[str, float]) -> Pipeline:
    p = Pipeline()
    previous = None
    for name, seconds in names.items():
        p.add_component(name, Sleeper(seconds))
        if previous:
            p.connect(f"{previous}.text", f"{name}.text")
        previous = name
    return p


class TestStageTimer:
    def test_stages_sum_their_components(self) -> None:
        p = _pipeline({"query_embedder": 0.02, "retriever": 0.05, "reranker": 0.03, "custom": 0.01})
        with stage_timer() as t:
            p.run({"query_embedder": {"text": "q"}})
            t.mark("first_token")
        stages = t.stages()
        assert set(stages) == {"embed_s", "retrieve_s", "rerank_s", "other_s", "first_token_s", "total_s"}
        assert 0.05 <= stages["retrieve_s"] < 0.5 and 0.03 <= stages["rerank_s"] < 0.5
        assert stages["total_s"] >= stages["embed_s"] + stages["retrieve_s"] + stages["rerank_s"]
        assert stages["first_token_s"] >= stages["retrieve_s"]
        assert t.started["retriever"] < t.started["reranker"]
        assert STAGES["generator"] == "generate"

    def test_nothing_is_recorded_outside_the_block_or_on_other_threads(self) -> None:
        p = _pipeline({"retriever": 0.01})
        with stage_timer() as mine:
            other: list[dict[str, float]] = []

            def elsewhere() -> None:
                with stage_timer() as theirs:
                    _pipeline({"reranker": 0.01}).run({"reranker": {"text": "x"}})
                other.append(theirs.components)

            th = threading.Thread(target=elsewhere)
            th.start()
            th.join()
            p.run({"retriever": {"text": "q"}})
        p.run({"retriever": {"text": "after"}})
        assert set(mine.components) == {"retriever"} and other == [{"reranker": other[0]["reranker"]}]
        assert mine.marks == {}

    def test_earlier_tracer_still_gets_spans(self) -> None:
        seen: list[str] = []

        class Quiet(tracing.Span):
            def set_tag(self, key: str, value: object) -> None:
                pass

        class Recording(tracing.Tracer):
            @contextlib.contextmanager
            def trace(self, operation_name: str, tags: dict | None = None,
                      parent_span: tracing.Span | None = None) -> Iterator[tracing.Span]:
                seen.append(operation_name)
                yield Quiet()

            def current_span(self) -> tracing.Span | None:
                return None

        before = tracing.tracer.actual_tracer
        try:
            tracing.enable_tracing(Recording())
            with stage_timer() as t:
                _pipeline({"generator": 0.0}).run({"generator": {"text": "q"}})
            assert "haystack.component.run" in seen and "generator" in t.components
        finally:
            tracing.enable_tracing(before)


def test_percentile_is_nearest_rank_and_zero_when_empty() -> None:
    from rag.timings import percentile

    assert percentile([], 0.95) == 0.0
    assert percentile([0.3, 0.1, 0.2], 0.5) == 0.2
    assert percentile([float(i) for i in range(101)], 0.95) == 95.0
    assert percentile([5.0, 1.0], 1.0) == 5.0 and percentile([5.0, 1.0], 0.0) == 1.0
