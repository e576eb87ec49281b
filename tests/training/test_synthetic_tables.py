"""rag.training.table_questions: synthetic table-row questions read as the reader reads a table (fast, no models)."""

from collections import Counter

from ingest.tables import row_parts
from rag.training.table_questions import KINDS, table_questions

NAMES = ["Zone EUR", "Zone NA", "Nespresso", "PetCare", "Purina", "Maple Leafs", "Flyers", "Bruins", "London",
         "New York", "Geneva", "Vevey", "Lausanne", "Tokyo", "Madrid", "Oslo"]


def test_answers_are_cells_of_the_passage_row_and_every_kind_is_made() -> None:
    rows = table_questions(400, NAMES, seed=3)
    assert len(rows) == 400 and set(Counter(r["kind"] for r in rows)) == set(KINDS)
    for r in rows:
        ctx = r["context"]
        last = ctx.rsplit("\n", 1)[-1]  # the row line; a caption line may stand before it
        assert " · " in last
        if r["kind"] == "answer":
            (start, text), = r["answers"]
            assert ctx[start:start + len(text)] == text and start >= len(ctx) - len(last)
            row_start = len(ctx) - len(last)
            _, cells = row_parts(ctx, row_start, len(ctx))
            assert (start, start + len(text)) in cells  # a cell value, never a header or the label
        else:
            assert r["answers"] == [] and r["impossible"]
        if r["kind"] == "no_row":
            assert not any(n in ctx for n in NAMES if n in r["question"] and f"{n} ·" in ctx)


def test_the_same_seed_makes_the_same_questions_and_another_seed_other_ones() -> None:
    assert table_questions(50, NAMES, seed=1) == table_questions(50, NAMES, seed=1)
    assert table_questions(50, NAMES, seed=1) != table_questions(50, NAMES, seed=2)
