"""Tables on a PDF's text layer (``ingest.pdf_tables``): the parser's ``fast`` PDF path keeps a table's rows and
columns, and a form's label/value pairs, instead of running the cells together as prose."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.parse import UnstructuredFileParser
from ingest.pdf_tables import Cell, find_tables, page_lines, render


def line(y: float, *cells: tuple[float, float, str]) -> list[Cell]:
    """One visual line of cells at height ``y`` (10 pt high)."""
    return [Cell(left, right, y, y + 10, text) for left, right, text in cells]


TABLE = [
    line(700, (50, 120, "Plan"), (200, 260, "Price"), (300, 360, "Storage")),
    line(685, (50, 100, "Starter"), (200, 220, "$4"), (300, 330, "5 GB")),
    line(670, (50, 90, "Team"), (200, 220, "$9"), (300, 340, "100 GB")),
]


class TestFindTables:
    def test_rows_and_columns(self) -> None:
        (start, end, rows), = find_tables(TABLE, 600)
        assert (start, end) == (0, 3)
        assert rows == [["Plan", "Price", "Storage"], ["Starter", "$4", "5 GB"], ["Team", "$9", "100 GB"]]

    def test_a_right_aligned_number_and_an_empty_cell_find_their_columns(self) -> None:
        lines = [*TABLE, line(655, (50, 110, "Business"), (300, 350, "1 TB"))]
        rows = find_tables(lines, 600)[0][2]
        assert rows[-1] == ["Business", "", "1 TB"]

    def test_prose_in_two_page_columns_is_not_a_table(self) -> None:
        prose = "the quick brown fox jumps over the lazy dog and runs on"
        lines = [line(700 - 12 * i, (50, 290, prose), (310, 550, prose)) for i in range(10)]
        assert find_tables(lines, 600) == []

    def test_two_rows_are_not_enough_nor_a_table_of_contents(self) -> None:
        assert find_tables(TABLE[:2], 600) == []
        toc = [line(700 - 15 * i, (50, 60, str(2 * i + 2)), (100, 300, f"Chapter {i}")) for i in range(5)]
        assert find_tables(toc, 600) == []

    def test_a_wrapped_cell_joins_its_row_and_a_title_ends_the_table(self) -> None:
        lines = [line(700, (50, 110, "Location:"), (150, 260, "Tallahassee, FL"), (300, 380, "Registration:"),
                      (420, 470, "N5921D")),
                 line(685, (50, 110, "Restraint:"), (150, 260, "Seatbelt, Shoulder"), (300, 380, "Seats:"),
                      (420, 430, "4")),
                 line(672, (150, 200, "harness")),  # the value above, wrapped
                 line(660, (50, 110, "Age:"), (150, 200, "85"), (300, 380, "Engines:"), (420, 470, "1")),
                 line(640, (50, 200, "Airport Information")),  # a section title at the margin
                 line(620, (50, 110, "Airport:"), (150, 260, "Private"), (300, 380, "Runway:"), (420, 430, "12")),
                 line(605, (50, 110, "Used:"), (150, 260, "Yes"), (300, 380, "Surface:"), (420, 430, "Turf")),
                 line(590, (50, 110, "Length:"), (150, 260, "1500 ft"), (300, 380, "Lights:"), (420, 430, "No"))]
        tables = find_tables(lines, 600)
        assert [(s, e) for s, e, _ in tables] == [(0, 4), (5, 8)]
        assert tables[0][2][1] == ["Restraint:", "Seatbelt, Shoulder harness", "Seats:", "4"]

    def test_rectangles_merge_into_cells_only_across_small_gaps(self) -> None:
        rects = [Cell(50, 80, 700, 710, ""), Cell(83, 120, 700, 710, ""), Cell(200, 240, 700, 710, ""),
                 Cell(50, 90, 685, 695, "")]
        lines = page_lines(rects)
        assert [[(c.left, c.right) for c in ln] for ln in lines] == [[(50, 120), (200, 240)], [(50, 90)]]


class TestRender:
    def test_a_table_keeps_its_cells(self) -> None:
        assert render([["Plan", "Price", "Storage"], ["Team", "$9", "100 GB"]]) == (
            "Table", "Plan | Price | Storage\nTeam | $9 | 100 GB")

    def test_a_form_becomes_label_value_lines(self) -> None:
        cat, text = render([["Location:", "Tallahassee, FL", "Registration:", "N5921D"],
                            ["Defining Event:", "", "Injuries:", "1 Minor"]])
        assert cat == "NarrativeText"
        assert text.split("\n") == ["Location: Tallahassee, FL", "Registration: N5921D", "Defining Event:",
                                    "Injuries: 1 Minor"]

    def test_two_columns_become_label_value_lines(self) -> None:
        assert render([["Rent", "$2,450"], ["Deposit", "$3,000"]]) == ("NarrativeText", "Rent: $2,450\nDeposit: $3,000")


class TestParsedPdfs:
    """The parser's default (``fast``) PDF path on real files."""

    @pytest.fixture(scope="class")
    def parser(self) -> UnstructuredFileParser:
        return UnstructuredFileParser()

    def test_a_report_form_keeps_each_label_with_its_value(self, parser: UnstructuredFileParser,
                                                           docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "ntsb-20071229X02007.pdf")
        lines = {ln for d in docs for ln in d.content.split("\n")}
        for pair in ("Registration: N5921D", "Runway Length/Width: 1500 ft / 75 ft", "Age: 85, Male",
                     "Restraint Used: Seatbelt, Shoulder harness", "Latitude, Longitude: 30.501111, -84.080278"):
            assert pair in lines, pair
        runway = next(d for d in docs if "Runway Used: 12" in d.content)
        assert runway.meta["page_number"] == 3

    def test_a_paper_table_keeps_its_rows(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "layout-parser-paper-with-table.pdf")
        tables = [d for d in docs if d.meta.get("category") == "Table"]
        assert tables, [d.meta.get("category") for d in docs]
        rows = tables[0].content.split("\n")
        assert "PubLayNet [38] | F / M | M | Layouts of modern scientific documents" in rows
        # the prose around it is unchanged: paragraphs, not cells
        assert any(d.content.startswith("In LayoutParser, a layout model takes a document image") for d in docs)

    def test_pages_without_a_table_keep_the_plain_text_path(self, docs_dir: Path) -> None:
        import pypdfium2 as pdfium

        from ingest.pdf_tables import page_blocks

        pdf = pdfium.PdfDocument(str(docs_dir / "fake-memo.pdf"))
        page = pdf[0]
        assert page_blocks(page.get_textpage(), page.get_width()) is None
        pdf.close()
