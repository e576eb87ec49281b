"""The original document at the cited page: a PDF page rendered with PDFium and the passage marked on it.

Plain functions (no Streamlit), tested directly; the chat page shows the image under the cited passage.

```python
img = render_page("report.pdf", page=2, phrases=["1,500 feet of runway"])   # PIL image, passage in yellow
```
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCALE = 1.6  # ~115 dpi: readable in a column, small enough to send
_WORD = re.compile(r"\S+")


def _search_terms(phrase: str, max_words: int = 12) -> list[str]:
    """The phrase, then shorter pieces of it: PDF text has line breaks and hyphens where chunks have none."""
    words = _WORD.findall(phrase)
    out = []
    for n in (len(words), max_words, 8, 5, 3):
        if 0 < n <= len(words):
            for start in range(0, len(words) - n + 1, max(1, n)):
                out.append(" ".join(words[start:start + n]))
        if out:
            break
    return list(dict.fromkeys(out))


def find_boxes(textpage: Any, phrase: str) -> list[tuple[float, float, float, float]]:
    """PDF-space boxes (left, bottom, right, top) of ``phrase`` on the page, or of the pieces found."""
    boxes: list[tuple[float, float, float, float]] = []
    for term in _search_terms(phrase):
        searcher = textpage.search(term, match_case=False, match_whole_word=False)
        try:
            found = searcher.get_next()
        finally:
            searcher.close()
        if not found:
            continue
        index, count = found
        n = textpage.count_rects(index, count)
        boxes += [textpage.get_rect(k) for k in range(n)]
    return boxes


def render_page(path: str | Path, page: int, phrases: list[str] | None = None, scale: float = SCALE) -> Any:
    """The 1-based ``page`` of a PDF as a PIL image with each phrase found on it marked in translucent yellow.

    :raises ValueError: not a PDF, or no such page.
    """
    import pypdfium2 as pdfium
    from PIL import ImageDraw

    path = Path(path)
    if path.suffix.lower() != ".pdf":
        raise ValueError(f"{path.name} is not a PDF")
    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise ValueError(f"{path.name} has {len(pdf)} pages, not page {page}")
        p = pdf[page - 1]
        image = p.render(scale=scale).to_pil().convert("RGBA")
        height = p.get_height()
        overlay_boxes = []
        textpage = p.get_textpage()
        for phrase in phrases or []:
            overlay_boxes += find_boxes(textpage, phrase)
        textpage.close()
        if overlay_boxes:
            from PIL import Image

            layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(layer)
            for left, bottom, right, top in overlay_boxes:
                box = (left * scale - 2, (height - top) * scale - 2, right * scale + 2, (height - bottom) * scale + 2)
                draw.rectangle(box, fill=(255, 214, 0, 110), outline=(230, 150, 0, 255), width=2)
            image = Image.alpha_composite(image, layer)
        return image.convert("RGB")
    finally:
        pdf.close()


def marked_phrases(text: str, spans: list[tuple[int, int]], quote: str) -> list[str]:
    """What to look for on the page: the marked spans of the chunk text, else the quote."""
    out = [text[s:e] for s, e in spans if 0 <= s < e <= len(text)]
    return [p for p in out if p.strip()] or ([quote] if quote and quote.strip() else [])
