"""ui.common: highlighting, user-facing error messages and generation settings on the shared service."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.api import DocRAG
from rag.errors import DocragError, ModelNotFoundError, StoreError
from ui.common import error_message, highlight, page_label, set_generation


class TestHighlight:
    def test_run_marks_quote_ignoring_case_and_spaces(self) -> None:
        out = highlight("The  Memo was\nsigned by Ann.", "memo was signed")
        assert out == "The  <mark>Memo was<br>signed</mark> by Ann."

    def test_run_escapes_html(self) -> None:
        out = highlight("<script>alert(1)</script> a b", "a b")
        assert "<script>" not in out and "&lt;script&gt;" in out and "<mark>a b</mark>" in out

    def test_run_falls_back_to_a_sentence_of_the_quote(self) -> None:
        out = highlight("Alpha beta gamma. Delta epsilon.", "Not there at all. Delta epsilon.")
        assert "<mark>Delta epsilon.</mark>" in out

    def test_run_without_match_or_quote_marks_nothing(self) -> None:
        assert "<mark>" not in highlight("abc def", "xyz uvw")
        assert "<mark>" not in highlight("abc def", "")


def test_page_label() -> None:
    assert page_label(3, [3]) == "page 3"
    assert page_label(1, [2, 1, 3]) == "pages 1–3"
    assert page_label(None, []) == "no page"


@pytest.mark.parametrize(("error", "needle"), [
    (StoreError("cannot open embedded store"), "document store is unavailable"),
    (ModelNotFoundError("generator missing"), "A model is unavailable"),
    (DocragError("no stored document"), "Answering failed: no stored document"),
    (RuntimeError("boom"), "failed unexpectedly (RuntimeError: boom)"),
])
def test_error_message(error: Exception, needle: str) -> None:
    assert needle in error_message(error, "Answering")


def test_set_generation_drops_only_generation_graphs(tmp_path: Path) -> None:
    d = DocRAG(home=tmp_path)  # loads nothing
    d._pipelines.update({"query:[('rerank', True)]": object(), "retrieval:[('rerank', True)]": object(),
                         "summarizer": object()})
    assert not set_generation(d, d.settings.temperature, d.settings.generator)
    assert set_generation(d, 0.7, "/models/other.gguf")
    assert (d.settings.temperature, d.settings.generator) == (0.7, "/models/other.gguf")
    assert list(d._pipelines) == ["retrieval:[('rerank', True)]"]
