"""Synthetic table questions for the reader (``SYNTH_TABLES`` in ``rag.training.reader``).

A random table is rendered exactly as docrag renders a parsed table (``ingest.tables.table_parts``: caption,
``label · header: value | header: value`` rows) and read as the reader reads it at run time
(``ingest.tables.row_passages``: the caption line and one row). Each example is a question about one cell with
that row as its passage; the no-answer kinds are the near misses a table offers: the asked row's column read in
another row (``other_row``), a column the table lacks (``no_column``) and a row label the table lacks
(``no_row``). Row labels and text cells are names taken from SQuAD 1.1 train paragraphs (never the course or test
sets), so the reader learns the layout, not a vocabulary. Deterministic for a seed.
"""

from __future__ import annotations

import random

METRICS = ["Sales", "Revenue", "Net income", "Operating profit", "Trading operating profit", "Units sold", "Price",
           "Hotel cap per night", "Meal per diem", "Headcount", "Growth", "Market share", "Population", "Area",
           "Budget", "Score", "Wins", "Losses", "Capacity", "Interest rate", "Cost", "Gross margin", "In stock",
           "Weight", "Height", "Depreciation", "Restructuring costs", "Dividends", "Employees", "Stores",
           "Total assets", "Deliveries", "Attendance", "Points", "Goals", "Salary", "Fee", "Duration", "Distance"]
TEXT_COLUMNS = ["Location", "Owner", "Colour", "Code", "Status", "Manager", "Country", "Capital", "Category",
                "Exchange", "Symbol", "Region", "Contact", "Type"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
KINDS = ("answer", "other_row", "no_column", "no_row")


def _number(rng: random.Random) -> str:
    v = rng.choice([rng.randint(0, 20), rng.randint(10, 999), rng.randint(1000, 99999), rng.randint(-999, -1)])
    style = rng.random()
    if style < 0.35 and abs(v) >= 1000:
        return f"{v:,}"
    if style < 0.5:
        return f"{v + rng.randint(0, 99) / 100:.2f}"
    if style < 0.6:
        return f"{rng.randint(0, 99)}.{rng.randint(0, 9)}%"
    if style < 0.75:
        return f"{rng.choice('$€£')}{abs(v)}"
    if style < 0.8 and v < 0:
        return f"({abs(v)})"
    return str(v)


def _period(rng: random.Random) -> str:
    y = rng.randint(1990, 2030)
    a = rng.randrange(12)
    return rng.choice([f"{MONTHS[a]}{rng.choice(['–', '-'])}{MONTHS[min(11, a + 5)]} {y}", f"Q{rng.randint(1, 4)} {y}",
                       str(y), f"FY {y}", f"three months ended {MONTHS[a]} 30, {y}", f"{MONTHS[a]} {y}"])


def _table(rng: random.Random, names: list[str]) -> tuple[list[str], list[list[str]], str, str]:
    """(column headers, body rows [label, cells...], caption, the caption's metric or "")."""
    n_rows, n_cols = rng.randint(2, 8), rng.randint(1, 4)
    labels = list(dict.fromkeys(rng.sample(names, min(len(names), n_rows * 2))))[:n_rows]
    if rng.random() < 0.4:  # period columns under a caption that names the metric ("Sales · In millions")
        metric = rng.choice(METRICS)
        cols = list(dict.fromkeys(_period(rng) for _ in range(n_cols)))
        caption = rng.choice([metric, f"{metric} by segment", f"{metric} · In millions", f"{metric} ({rng.choice('$€£')})"])
        return cols, [[lab, *(_number(rng) for _ in cols)] for lab in labels], caption, metric
    cols = list(dict.fromkeys(rng.choice(METRICS + TEXT_COLUMNS) for _ in range(n_cols)))
    rows = [[lab, *(rng.choice(names) if c in TEXT_COLUMNS else _number(rng) for c in cols)] for lab in labels]
    caption = rng.choice(["", "", rng.choice(names), f"Table {rng.randint(1, 20)}"])
    return cols, rows, caption, ""


def _question(rng: random.Random, row: str, col: str, metric: str) -> str:
    if metric:  # a period column: the metric comes from the caption
        m = metric.lower() if rng.random() < 0.6 else metric
        return rng.choice([f"What were the {m} of {row} in {col}?", f"{m} of {row} in {col}",
                           f"How much was the {m} of {row} in {col}?", f"What was {row}'s {m} in {col}?",
                           f"{row} {m} {col}"])
    c = col.lower() if rng.random() < 0.6 else col
    return rng.choice([f"What is the {c} of {row}?", f"What was the {c} of {row}?", f"{c} of {row}",
                       f"How much is the {c} for {row}?", f"What {c} does {row} have?", f"{row} {c}",
                       f"What is {row}'s {c}?", f"Which {c} is listed for {row}?"])


def table_questions(n: int, names: list[str], seed: int) -> list[dict]:
    """``n`` examples ``{question, context, answers: [(start, text)], impossible, kind}``; the context is a row
    passage exactly as the reader reads it (caption line + row line), the answer a cell value in it."""
    from ingest.tables import CELL_SEP, TableContext, row_parts, row_passages, table_parts

    rng = random.Random(seed)
    names = [x for x in dict.fromkeys(names) if 2 < len(x) <= 40 and CELL_SEP.strip() not in x]
    out: list[dict] = []
    while len(out) < n:
        cols, body, caption, metric = _table(rng, names)
        if len(body) < 2:
            continue
        text = "\n".join(CELL_SEP.join(r) for r in [["", *cols], *body])
        for part in table_parts(text, TableContext(), max_words=400, caption=caption):
            rows = []
            for p in row_passages(part):
                label, cells = row_parts(part, *p.row)
                line = part[p.row[0]:p.row[1]]
                if label and len(cells) == len(cols) and all(f"{c}: " in line for c in cols):  # headers kept
                    rows.append((p, part[label[0]:label[1]], cells))
            if len(rows) < 2:
                continue
            kind = rng.choices(KINDS, weights=(0.6, 0.15, 0.125, 0.125))[0]
            (p, label, cells), (p2, _, _) = rng.sample(rows, 2)
            j = rng.randrange(len(cols))
            col, row_name = cols[j], label
            if kind == "no_column":
                col = rng.choice([c for c in METRICS + TEXT_COLUMNS if c not in cols and c != metric])
            elif kind == "no_row":
                row_name = rng.choice([x for x in rng.sample(names, 5) if x not in part] or ["Unknown"])
            elif kind == "other_row":
                p = p2
            question = _question(rng, row_name, col, metric)
            context = p.text(part)
            answers: list[tuple[int, str]] = []
            if kind == "answer":
                row_start = len(context) - (p.row[1] - p.row[0])  # the row line is the passage's last piece
                a, b = cells[j]
                answers = [(row_start + a - p.row[0], part[a:b])]
            out.append({"id": f"table-{seed}-{len(out)}", "question": question, "context": context,
                        "answers": answers, "impossible": not answers, "kind": kind})
    return out[:n]
