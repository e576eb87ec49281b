"""Tables on a PDF page's text layer (the ``fast`` strategy: PDFium text, no layout model).

PDFium splits a page's text into rectangles wherever a line has a wide horizontal gap, which is how table
cells are laid out. Here those rectangles become visual lines of cells, and a run of consecutive lines whose
cells fall into the same non-overlapping columns becomes a table, rendered as ``cell | cell`` rows like the
other parsers' tables (``ingest.parse``), so :mod:`ingest.tables` gives every row its row label and column
headers.

What is not a table: a line with one cell; prose set in two page columns (more than a quarter of the cells wider
than ``MAX_CELL_SHARE`` of the page, or cells of more than ``MAX_CELL_WORDS`` words on average); fewer than
``MIN_ROWS`` rows (a small table stays text in its page's prose chunk instead of splitting it in three); two
columns whose first one is mostly numbers (a table of contents); columns that overlap. A page without a table
keeps the plain text path (:func:`page_blocks` returns None), so only pages with a table change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ingest.tables import is_numeric

MIN_ROWS = 3  # rows of a table (the header row included): smaller ones stay text, in their page's prose chunk
GAP_HEIGHTS = 1.0  # a gap between two rectangles of a line at least this many line heights wide splits cells
MAX_CELL_WORDS = 6  # a table's cells hold at most this many words on average (a line of prose in a page column: 8-14)
MAX_CELL_SHARE = 0.45  # no cell of a table spans more than this share of the page width


@dataclass
class Cell:
    """A run of text on one line of a page, in PDF points (origin bottom left)."""

    left: float
    right: float
    bottom: float
    top: float
    text: str

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 1e-3)


def _same_line(a: Cell, b: Cell) -> bool:
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    return overlap >= 0.5 * min(a.height, b.height)


def _cell_gap(a: Cell, b: Cell) -> bool:
    """``b`` starts a new cell after ``a`` on their line: the gap is at least ``GAP_HEIGHTS`` line heights."""
    return b.left - a.right >= GAP_HEIGHTS * max(a.height, b.height)


def page_lines(rects: list[Cell]) -> list[list[Cell]]:
    """PDFium's text rectangles (in content order) -> visual lines of cells, left to right (boxes only: the
    cells' text is read afterwards, :func:`with_text`).

    A rectangle joins the current line when it overlaps it vertically by half a line height and starts to the
    right of its last cell; rectangles closer than ``GAP_HEIGHTS`` line heights merge into one cell.
    """
    lines: list[list[Cell]] = []
    for r in rects:
        cur = lines[-1] if lines else None
        if cur and _same_line(cur[-1], r) and r.left >= cur[-1].right - 0.5 * r.height:
            last = cur[-1]
            if not _cell_gap(last, r):
                cur[-1] = Cell(last.left, max(last.right, r.right), min(last.bottom, r.bottom),
                               max(last.top, r.top), "")
            else:
                cur.append(r)
        else:
            lines.append([r])
    return lines


def _columns(block: list[list[Cell]]) -> list[tuple[float, float]] | None:
    """Column extents of a run of multi-cell lines: from the lines with the most common cell count; None when
    two columns overlap."""
    k = Counter(len(line) for line in block).most_common(1)[0][0]
    model = [line for line in block if len(line) == k]
    cols = [(min(line[j].left for line in model), max(line[j].right for line in model)) for j in range(k)]
    if any(cols[j][1] >= cols[j + 1][0] for j in range(k - 1)):
        return None
    return cols


def _place(line: list[Cell], cols: list[tuple[float, float]]) -> list[str] | None:
    """One line's cells placed in the columns (by horizontal overlap); None when a cell fits no column."""
    row = [""] * len(cols)
    for c in line:
        overlaps = [min(c.right, hi) - max(c.left, lo) for lo, hi in cols]
        j = max(range(len(cols)), key=lambda i: overlaps[i])
        if overlaps[j] <= 0:
            return None
        row[j] = f"{row[j]} {c.text}".strip()
    return row


def _is_table(rows: list[list[str]], block: list[list[Cell]], page_width: float) -> bool:
    if len(rows) < MIN_ROWS:
        return False
    if len(rows[0]) == 2 and sum(is_numeric(r[0]) for r in rows) * 2 > len(rows):
        return False  # page numbers and titles: a table of contents, not label | value
    cells = [c for line in block for c in line]
    if sum(c.right - c.left > MAX_CELL_SHARE * page_width for c in cells) * 4 > len(cells):
        return False
    return sum(len(c.text.split()) for c in cells) / len(cells) <= MAX_CELL_WORDS


def _continuation(line: list[Cell], cols: list[tuple[float, float]]) -> int | None:
    """The column (not the first) a one-cell line continues, when it starts within that column (a cell's text
    wrapped onto the next line); else None."""
    left, tol = line[0].left, line[0].height
    inside = [j for j, (lo, hi) in enumerate(cols) if lo - tol <= left <= hi]
    return inside[0] if inside and inside[0] > 0 else None


def find_tables(lines: list[list[Cell]], page_width: float) -> list[tuple[int, int, list[list[str]]]]:
    """``(first line, end line, rows)`` of every table among a page's visual lines.

    A table is a run of lines of two cells or more; a one-cell line between two of them that starts within a
    column other than the first is a wrapped cell and joins the row above (one at the left margin, such as a
    section title, ends the table: the next section may have other columns)."""
    out = []
    i = 0
    while i < len(lines):
        if len(lines[i]) < 2:
            i += 1
            continue
        j, margin = i + 1, lines[i][0].left + 2 * lines[i][0].height
        while j < len(lines) and (len(lines[j]) >= 2 or (  # or a wrapped cell: indented, before another row
                lines[j][0].left > margin and j + 1 < len(lines) and len(lines[j + 1]) >= 2)):
            j += 1
        block = lines[i:j]
        cols = _columns([line for line in block if len(line) >= 2])
        rows: list[list[str]] = []
        for k, line in enumerate(block if cols else []):
            wrapped = _continuation(line, cols) if len(line) == 1 else None
            if wrapped is not None and rows:
                rows[-1][wrapped] = f"{rows[-1][wrapped]} {line[0].text}".strip()
                continue
            row = _place(line, cols) if len(line) > 1 else None
            if row is None:  # a line of its own, or one off the columns: the table ends above it
                j = i + k
                break
            rows.append(row)
        if rows and _is_table(rows, lines[i:j], page_width):
            out.append((i, j, rows))
        i = max(j, i + 1)
    return out


def _label(cell: str) -> bool:
    return cell.rstrip().endswith(":")


def render(rows: list[list[str]]) -> tuple[str, str]:
    """One detected table as an element: ``("Table", "cell | cell" rows)``, or, for a form (every other column
    holds labels ending in ":", as in ``Location: | Tallahassee, FL | Registration: | N5921D``) and for two
    columns (label | value), ``("NarrativeText", "label: value" lines)``, one pair per line, row by row."""
    k = len(rows[0])
    labels = [c for r in rows for c in r[0::2] if c]
    form = k % 2 == 0 and labels and sum(map(_label, labels)) >= 0.6 * len(labels)
    if not form and k > 2:
        return "Table", "\n".join(" | ".join(r) for r in rows)
    lines = []
    for r in rows:
        for j in range(0, k - 1, 2):
            key, val = r[j], r[j + 1]
            if key and val:
                lines.append(f"{key} {val}" if _label(key) else f"{key}: {val}")
            elif key or val:
                lines.append(key or val)
    return "NarrativeText", "\n".join(lines)


def rects_of(textpage: Any) -> list[Cell]:
    """The text rectangles of a pypdfium2 text page in content order, without their text (see :func:`with_text`)."""
    out = []
    for n in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(n)
        out.append(Cell(left, right, bottom, top, ""))
    return out


def with_text(textpage: Any, lines: list[list[Cell]]) -> list[list[Cell]]:
    """``lines`` with the text each cell bounds (one PDFium call per cell); cells without text dropped."""
    out = []
    for line in lines:
        cells = [Cell(c.left, c.right, c.bottom, c.top, " ".join(textpage.get_text_bounded(
            c.left, c.bottom, c.right, c.top).split())) for c in line]
        cells = [c for c in cells if c.text]
        if cells:
            out.append(cells)
    return out


def _may_hold_table(rects: list[Cell]) -> bool:
    """Cheap pre-check on the boxes alone: two lines of the page split by a cell gap (most pages have none)."""
    split = 0
    for a, b in pairwise(rects):
        if _same_line(a, b) and _cell_gap(a, b):
            split += 1
            if split >= 2:
                return True
    return False


def page_blocks(textpage: Any, page_width: float) -> list[list[str] | tuple[str, str]] | None:
    """A page that holds a table, in reading order: the runs of text lines around each table (lists of lines, to
    be grouped into paragraphs by the caller) and each table as one element (:func:`render`). None when the page
    has no table (the caller keeps its plain text path)."""
    rects = rects_of(textpage)
    if not _may_hold_table(rects):
        return None
    lines = with_text(textpage, page_lines(rects))
    tables = find_tables(lines, page_width)
    if not tables:
        return None
    texts = [" ".join(c.text for c in line) for line in lines]
    out: list[list[str] | tuple[str, str]] = []
    pos = 0
    for start, end, rows in tables:
        out += [texts[pos:start], render(rows)]
        pos = end
    out.append(texts[pos:])
    return out


def elements_of(blocks: list[list[str] | tuple[str, str]], paragraphs: Any) -> list[tuple[str, str]]:
    """:func:`page_blocks` as ``(category, text)`` elements, each run of lines grouped by ``paragraphs``."""
    return [el for b in blocks for el in (paragraphs(b) if isinstance(b, list) else [b])]
