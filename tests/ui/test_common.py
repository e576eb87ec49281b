"""ui.common: highlighting (quotes and exact spans), page labels, clean cells, user-facing error messages."""

from __future__ import annotations

import pytest

from rag.errors import DocragError, ModelNotFoundError, StoreError
from ui.common import clean_cell, error_message, highlight, page_label, snap_to_words


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


class TestSpans:
    def test_exact_span_is_marked_and_widened_to_whole_words(self) -> None:
        text = "Total, all trucks were used."
        assert highlight(text, spans=[(0, 8)]) == "<mark>Total, all</mark> trucks were used."  # stops mid-word
        assert snap_to_words(text, 2, 4) == (0, 5)

    def test_invalid_span_falls_back_to_the_quote(self) -> None:
        assert highlight("abc def ghi", "def ghi", spans=[(5, 99)]) == "abc <mark>def ghi</mark>"


def test_sheets_and_slides_are_not_pages() -> None:
    assert page_label(2, [2], "/x/book.xlsx") == "sheet 2"
    assert page_label(None, [], "/x/book.xlsx") == "whole document"
    assert page_label(3, [3], "/x/deck.pptx") == "slide 3"


def test_clean_cell() -> None:
    assert clean_cell(None) == "" and clean_cell(float("nan")) == ""
    assert clean_cell("Net\nsales") == "Net sales" and clean_cell("a\\nb") == "a b" and clean_cell(3) == 3
