"""Table questions on the shared documents: a top-5 chunk holds the asked cell (target >= 0.9).

The documents with tables in ``shared/data/docs`` (XLSX segment tables, DOCX, PPTX, CSV, Markdown and an
HTML 10-K cover page) plus two table-free distractors are ingested through the real graph into an embedded
store; each question of ``tests/data/table_questions.json`` asks for one cell. A hit is a top-5 chunk of
``DocRAG.search`` (hybrid + the shipped reranker) with a line that holds the row label, the column header
and the value, so the cell is findable with what identifies it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag import DocRAG

pytestmark = pytest.mark.integration
QUESTIONS = json.loads((Path(__file__).parents[1] / "data" / "table_questions.json").read_text())["questions"]
DISTRACTORS = ["handbook-1p.docx", "ideas-page.html"]
TARGET = 0.9


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[–-]", "-", s).lower().split())


def holds_cell(text: str, q: dict) -> bool:
    """Some line of ``text`` names the row, the column and the value of ``q``."""
    row, col, value = _norm(q["row"]), _norm(q["col"]), _norm(q["value"])
    for line in map(_norm, text.split("\n")):
        if line.startswith(f"{row} ·"):
            for cell in line.split(" | "):
                if col in cell and re.search(rf"(^|[\s:]){re.escape(value)}($|\s)", cell):
                    return True
    return False


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, docs_dir: Path) -> DocRAG:
    d = DocRAG(home=tmp_path_factory.mktemp("tables"), extract_entities=False)
    files = sorted({q["file"] for q in QUESTIONS}) + DISTRACTORS
    report = d.ingest([str(docs_dir / f) for f in files])
    assert not report.failed, report.failed
    yield d
    d.close()


def test_holds_cell_reads_row_lines() -> None:
    q = {"row": "Zone EUR", "col": "Sales", "value": "9467"}
    assert holds_cell("caption\nZone EUR · Sales (a): 9467 | Trading: 1373", q)
    assert not holds_cell("caption\nZone EUR · Sales (a): 9283 | Trading: 9467", q)


def test_top5_chunk_holds_the_asked_cell(rag: DocRAG) -> None:
    misses = []
    for q in QUESTIONS:
        hits = rag.search(q["q"], top_k=5)
        if not any(holds_cell(h.text, q) for h in hits):
            misses.append((q["q"], [h.text[:80] for h in hits[:2]]))
    rate = 1 - len(misses) / len(QUESTIONS)
    print(f"\ntable questions: a top-5 chunk holds the cell for {rate:.3f} of {len(QUESTIONS)}; misses {misses}")
    assert rate >= TARGET, misses


# measured 0.947 (18 of 19) with the reader trained on synthetic table rows, row-by-row reading, the named rows and
# columns and the evidence gate judging a row with its caption (0.842 with the first-run reader, 0.737 without the
# named columns, 0.684 with the reader before it, 0.316 reading each table chunk whole); one question of margin
ANSWER_TARGET = 0.89


def states_value(answer: str, value: str) -> bool:
    return re.search(rf"(^|[\s:$€£(]){re.escape(_norm(value))}($|[\s.,)\[])", _norm(answer)) is not None


def test_states_value_needs_the_whole_value() -> None:
    assert states_value("9467 [1]", "9467") and states_value("The cap is £220.", "220")
    assert not states_value("19467 [1]", "9467") and not states_value("-6 [1]", "6")


def test_answers_state_the_asked_cell(rag: DocRAG) -> None:
    """The evidence-first answer (the reader reads table chunks row by row) states the asked cell's value."""
    wrong = []
    for q in QUESTIONS:
        a = rag.ask(q["q"], with_entities=False)
        if a.declined or not states_value(a.text, q["value"]):
            wrong.append((q["q"], q["value"], a.text[:60]))
    rate = 1 - len(wrong) / len(QUESTIONS)
    print(f"\ntable questions: the answer states the cell for {rate:.3f} of {len(QUESTIONS)}; wrong {wrong}")
    assert rate >= ANSWER_TARGET, wrong
