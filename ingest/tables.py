"""Tables as first-class chunks: every body row keeps its row label and column headers.

The parser renders a table element as rows of ``cell | cell`` (``ingest.parse``). Here those rows become
lines such as ``Net sales · three months ended June 30: 12,345 | six months ended June 30: 23,456``, so a
cell is findable with its row label and column header in the same short span, whichever chunk it lands in:

- header rows are the leading rows with no numeric cell after the first column (all rows but the first when
  no row is numeric); a header row filled in fewer than half of its columns (``In millions of CHF | | |
  January–June 2023``) is table-wide context and becomes the caption, the others name their columns
  (several header rows join per column);
- a table element holding header rows only (spreadsheets split header and body into two elements) lends
  them to the next table (:class:`TableContext` carries them);
- rows are packed into parts of at most ``max_words`` words, each part starting with the caption line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CELL_SEP = " | "
_NUMERIC = re.compile(r"^[\s(\[]*[-−–+]?[$€£¥₹]?\s?\d[\d,.\s]*%?[)\]]*$|^[-—–]$")


def _clean(cell: str) -> str:
    return " ".join(cell.replace("\\n", " ").split())


def parse_rows(text: str) -> list[list[str]]:
    """``cell | cell`` lines -> rows of cleaned cells (rows without any text dropped)."""
    rows = []
    for line in text.split("\n"):
        cells = [_clean(c) for c in line.split("|")]
        if any(cells):
            rows.append(cells)
    return rows


def is_numeric(cell: str) -> bool:
    """A number, amount, percentage or a dash standing for zero/none."""
    return bool(cell) and bool(_NUMERIC.match(cell))


def _is_header_row(row: list[str]) -> bool:
    return not any(is_numeric(c) for c in row[1:])


@dataclass
class TableContext:
    """Header rows of a header-only table element, waiting for the body that follows it."""

    pending: list[list[str]] = field(default_factory=list)


def split_header(rows: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """(header rows, body rows) of one table element."""
    n = 0
    while n < len(rows) and _is_header_row(rows[n]):
        n += 1
    if n == len(rows):  # no numeric row: a text table, its first row names the columns
        return (rows[:1], rows[1:]) if len(rows) > 1 else ([], rows)
    return rows[:n], rows[n:]


def _columns(header: list[list[str]], width: int) -> tuple[list[str], list[str]]:
    """(caption parts, one name per column) from the header rows.

    A header row with at most one filled cell after the first column is caption; the first cell of every
    header row (it names the row-label column) is caption too. Several header rows join per column (a
    spanning upper cell names only the column it sits in: merged cells sit left or right of their span).
    """
    caption: list[str] = []
    names = [""] * width
    for row in header:
        if row and row[0]:
            caption.append(row[0])
        if sum(1 for c in row[1:] if c) <= 1 and width > 2:
            caption.extend(c for c in row[1:] if c)
            continue
        for j in range(1, width):
            c = row[j] if j < len(row) else ""
            if c and c not in names[j]:
                names[j] = f"{names[j]} {c}" if names[j] else c
    return caption, names


def row_line(cells: list[str], names: list[str]) -> str:
    """``label · header: value | header: value`` for one body row (empty cells left out)."""
    label = cells[0] if cells and cells[0] else ""
    pairs = []
    for j, v in enumerate(cells[1:], start=1):
        if not v:
            continue
        h = names[j] if j < len(names) else ""
        pairs.append(f"{h}: {v}" if h else v)
    if not label:
        return CELL_SEP.join(pairs)
    return f"{label} · {CELL_SEP.join(pairs)}" if pairs else label


def header_only(text: str, next_text: str | None) -> bool:
    """A table element of header rows only, whose body is the next table element (spreadsheet layout)."""
    rows = parse_rows(text)
    nxt = parse_rows(next_text or "")
    return bool(rows) and bool(nxt) and all(_is_header_row(r) for r in rows) and not _is_header_row(nxt[0])


def table_parts(text: str, ctx: TableContext, max_words: int, caption: str = "",
                next_text: str | None = None) -> list[str]:
    """Chunk texts of one table element (``[]`` when it holds header rows only: they go to ``ctx``).

    :param text: the element's ``cell | cell`` rows.
    :param next_text: the next element's text when it is a table too (to spot a header-only element).
    :param ctx: carries a header-only element's rows to the next table.
    :param max_words: words per part (the caption line included).
    :param caption: text naming the table (e.g. the section title), put in front of the header caption.
    """
    rows = parse_rows(text)
    if not rows:
        return []
    if header_only(text, next_text):
        ctx.pending = rows
        return []
    header, body = split_header(rows)
    if not body:
        if header:
            ctx.pending = header
        return []
    if ctx.pending and not header:
        header = ctx.pending
    ctx.pending = []
    width = max(len(r) for r in rows + header)
    cap_parts, names = _columns(header, width)
    head = " · ".join(p for p in [caption, *cap_parts] if p)
    lines = [row_line(r, names) for r in body]
    lines = [ln for ln in lines if ln]
    parts, cur, n = [], [head] if head else [], len(head.split())
    base = n
    for ln in lines:
        w = len(ln.split())
        if n + w > max_words and n > base:
            parts.append("\n".join(cur))
            cur, n = ([head] if head else []), base
        cur.append(ln)
        n += w
    if n > base:
        parts.append("\n".join(cur))
    return parts


def is_table_chunk(meta: dict) -> bool:
    """A chunk made by :func:`table_parts` (the chunker gives a table chunks of its own)."""
    return meta.get("element_types") == ["Table"]


Span = tuple[int, int]


@dataclass
class RowPassage:
    """One passage a reader reads from a table chunk: ``pieces`` of the chunk text joined with newlines (the
    caption, the row), ``answers`` where an answer may lie (the row label, cell values; not the headers), ``row``
    the bounds of the row line (the answer's verbatim context)."""

    pieces: list[Span]
    answers: list[Span]
    row: Span

    def text(self, source: str) -> str:
        """The passage the reader reads: the pieces of ``source`` joined with newlines."""
        return "\n".join(source[a:b] for a, b in self.pieces)

    def locate(self, start: int, end: int) -> Span | None:
        """A span of :meth:`text` as offsets into the source; None when it crosses from one piece into the next."""
        cursor = 0
        for a, b in self.pieces:
            if start < cursor + (b - a):
                return (a + start - cursor, a + end - cursor) if end <= cursor + (b - a) else None
            cursor += b - a + 1
        return None

    def answerable(self, span: Span) -> bool:
        """``span`` (source offsets) lies within one of :attr:`answers`."""
        return any(a <= span[0] and span[1] <= b for a, b in self.answers)


def row_cells(text: str, start: int, end: int) -> tuple[Span | None, list[tuple[str, Span]]]:
    """The row label and the ``(column header, cell value)`` pairs of the row line ``text[start:end]``
    (:func:`row_line`'s ``label · header: value | header: value``) as offsets into ``text``; a cell without a
    header has ``""``."""
    line = text[start:end]
    label, rest = None, 0
    dot = line.find(" · ")
    if dot > 0 and CELL_SEP not in line[:dot]:
        label, rest = (start, start + dot), dot + 3
    cells, pos = [], rest
    for pair in line[rest:].split(CELL_SEP):
        colon = pair.find(": ")
        a = pos + (colon + 2 if colon >= 0 else 0)
        if pair.strip() and a < pos + len(pair):
            cells.append((pair[:colon] if colon >= 0 else "", (start + a, start + pos + len(pair))))
        pos += len(pair) + len(CELL_SEP)
    return label, cells


def row_parts(text: str, start: int, end: int) -> tuple[Span | None, list[Span]]:
    """The row label and the cell values of the row line ``text[start:end]`` (:func:`row_cells` without the
    headers)."""
    label, cells = row_cells(text, start, end)
    return label, [span for _, span in cells]


_FOOTNOTE_MARK = re.compile(r"\((?:[a-z]|\d{1,2})\)|[*†‡¹²³]")  # "Underlying profit (a)", "Sales*"


def named_cells(cells: list[tuple[str, Span]], question: str) -> list[Span]:
    """The cell values of a row (:func:`row_cells`) whose column header ``question`` names, every word of the
    header a word of the question ("What was Zone NA's organic growth in **2022**?" reads the 2022 column, not
    2023's beside it); of two named headers, one inside the other, the longer; a footnote mark ("(a)", "*") is no
    word of a header; every cell when it names none."""
    asked = _words(question)
    named = [(words, span) for header, span in cells
             if (words := _words(_FOOTNOTE_MARK.sub(" ", header))) and words <= asked]
    # the most specific header named: "underlying trading operating profit" names "trading operating profit" too
    return [span for words, span in named if not any(words < other for other, _ in named)] or \
        [span for _, span in cells]


def _is_caption(first: str, lines: int) -> bool:
    return not (CELL_SEP in first or ": " in first or lines == 1)


def caption(text: str) -> str:
    """The caption line of a table chunk ("In millions of CHF · January–June 2023"): its first line when that is
    no row (neither ``header: value`` nor ``cell | cell``) and more lines follow; "" when it has none."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return lines[0] if lines and _is_caption(lines[0], len(lines)) else ""


def row_passages(text: str, question: str = "") -> list[RowPassage]:
    """How a reader reads a table chunk: each row with the table's caption, without the neighbouring rows'
    cells, its answer one of the row's cell values or its label. The caption is the chunk's first line when that
    is no row (neither ``header: value`` nor ``cell | cell``). (One passage per cell, caption + label + cell, was
    measured too: the reader was less sure of the right cell there.) When ``question`` names the label of some
    rows, only those rows are read (:func:`named_rows`); when it names the header of some columns, only their
    cells can be the answer (:func:`named_cells`)."""
    lines, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    if not lines:
        return [RowPassage([(0, len(text))], [(0, len(text))], (0, len(text)))]
    head: list[Span] = []
    if _is_caption(text[lines[0][0]:lines[0][1]], len(lines)):
        head, lines = [lines[0]], lines[1:]
    out, labels = [], []
    for ln in lines:
        label, cells = row_cells(text, *ln)
        values = named_cells(cells, question)
        # a question that names a column asks for its cell, not for the row's label
        out.append(RowPassage(head + [ln], ([label] if label and len(values) == len(cells) else []) + values or [ln],
                              ln))
        labels.append(text[label[0]:label[1]] if label else "")
    return named_rows(text, out, labels, question)


_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


_NAME_WORD = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-z]{2,}\b")


def named_rows(text: str, rows: list[RowPassage], labels: list[str], question: str) -> list[RowPassage]:
    """The rows whose label (``labels``, one per row, "" for none) ``question`` names, every word of the label a
    word of the question: "What is the meal per diem in New York?" reads New York's row alone, so the same column
    of another row ("Other cities · ... Meal per diem: $55") is no candidate. When it names no label: no row when
    the question names something (a capitalised word past its first) that the table does not hold anywhere
    ("... in Paris?" of a table of other cities), else every row."""
    asked = _words(question)
    if not asked:
        return rows
    named = [r for r, label in zip(rows, labels) if (words := _words(label)) and words <= asked]
    if named:
        return named
    held = _words(text)
    if any(w.lower() not in held for w in _NAME_WORD.findall(question.strip())):
        return []
    return rows
