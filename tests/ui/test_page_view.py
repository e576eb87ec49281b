"""ui.page_view: the cited PDF page rendered with PDFium and the passage marked on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.page_view import marked_phrases, render_page


def yellow(img) -> int:  # img: a PIL image
    return sum(1 for r, g, b in img.getdata() if r > 230 and g > 180 and b < 200)


def test_page_is_rendered_with_the_passage_marked(docs_dir: Path) -> None:
    plain = render_page(docs_dir / "fake-memo.pdf", 1)
    marked = render_page(docs_dir / "fake-memo.pdf", 1, ["20,000 bottles of water"])
    assert plain.size == marked.size and plain.size[0] > 500
    assert yellow(plain) == 0 and yellow(marked) > 500


def test_a_phrase_broken_across_lines_is_still_found(docs_dir: Path) -> None:
    marked = render_page(docs_dir / "fake-memo.pdf", 1, ["delivered on January 23, 2023. A total of 3 trucks"])
    assert yellow(marked) > 200


def test_no_such_page_or_not_a_pdf(docs_dir: Path) -> None:
    with pytest.raises(ValueError, match="pages"):
        render_page(docs_dir / "fake-memo.pdf", 9)
    with pytest.raises(ValueError, match="not a PDF"):
        render_page(docs_dir / "handbook-1p.docx", 1)


def test_marked_phrases() -> None:
    assert marked_phrases("abc def", [(4, 7)], "q") == ["def"]
    assert marked_phrases("abc def", [(9, 12)], "the quote") == ["the quote"]
