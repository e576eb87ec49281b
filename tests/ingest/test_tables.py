"""ingest.tables: row labels and column headers stay with every cell (fast, no models)."""

from ingest.tables import (
    TableContext,
    caption,
    header_only,
    is_numeric,
    parse_rows,
    row_line,
    row_passages,
    split_header,
    table_parts,
)


class TestTables:
    def test_caption_is_a_first_line_that_is_no_row(self) -> None:
        chunk = "In millions of CHF · January–June 2023\nZone EUR · Sales (a): 9467 | Trading operating profit: 1373"
        assert caption(chunk) == "In millions of CHF · January–June 2023"
        assert caption(chunk.split("\n", 1)[1]) == ""  # a row alone
        assert caption("Zone EUR · Sales: 9467\nZone NA · Sales: 8000") == ""  # rows only
        assert caption("A lone line") == ""

    def test_numeric_cells(self) -> None:
        assert all(is_numeric(c) for c in ["12,345", "-81", "(1.5)", "14.5%", "$3", "—"])
        assert not any(is_numeric(c) for c in ["Sales", "Q3 2022 sales", ""])

    def test_header_split_and_row_line(self) -> None:
        rows = parse_rows("Item | Price | Stock\nApples | 1.99 | 739\nBananas |  | 6")
        header, body = split_header(rows)
        assert header == [["Item", "Price", "Stock"]] and len(body) == 2
        assert row_line(body[1], ["", "Price", "Stock"]) == "Bananas · Stock: 6"

    def test_text_table_first_row_is_header(self) -> None:
        parts = table_parts("Column 1 | Column 2\nRed | Green\nPurple | Orange", TableContext(), 50)
        assert parts == ["Column 1\nRed · Column 2: Green\nPurple · Column 2: Orange"]

    def test_header_only_element_and_caption(self) -> None:
        head = "In millions of CHF |  |  | January–June\\n2023\n | Sales | Trading\\noperating profit | Margin"
        body = "Zone NA | 12553 | 2632 | 21.0%"
        assert header_only(head, body) and not header_only(body, None)
        ctx = TableContext()
        assert table_parts(head, ctx, 50, next_text=body) == []
        assert table_parts(body, ctx, 50) == [
            "In millions of CHF · January–June 2023\nZone NA · Sales: 12553 | Trading operating profit: 2632 | Margin: 21.0%"]


def test_row_passages_read_each_row_behind_the_caption_with_its_cells_as_answers() -> None:
    text = "In millions of CHF · January–June 2023\nZone EUR · Sales (a): 9467 | Trading: 1373\nZone NA · Sales: 12553"
    passages = row_passages(text)
    assert len(passages) == 2
    p = passages[0]
    read = p.text(text)
    assert read == "In millions of CHF · January–June 2023\nZone EUR · Sales (a): 9467 | Trading: 1373"
    at = read.index("9467")
    assert p.locate(at, at + 4) == (text.index("9467"), text.index("9467") + 4)
    assert p.locate(read.index("2023"), read.index("Zone") + 4) is None  # from the caption into the row
    assert p.answerable(p.locate(at, at + 4)) and not p.answerable((text.index("Sales"), text.index("Sales") + 5))
    assert [text[a:b] for a, b in p.answers] == ["Zone EUR", "9467", "1373"]  # never a header or the caption
    assert text[slice(*p.row)] == "Zone EUR · Sales (a): 9467 | Trading: 1373"
    assert [text[a:b] for a, b in passages[1].answers] == ["Zone NA", "12553"]


def test_row_passages_without_a_caption_read_every_line_as_a_row() -> None:
    text = "Red | Green | Blue\nPurple | Orange | Yellow"
    passages = row_passages(text)
    assert [[text[a:b] for a, b in p.pieces] for p in passages] == [["Red | Green | Blue"], ["Purple | Orange | Yellow"]]
    assert [text[a:b] for a, b in passages[1].answers] == ["Purple", "Orange", "Yellow"]


def test_a_question_naming_a_row_label_reads_that_row_alone() -> None:
    text = ("City\nNew York · Hotel cap per night: $250 | Meal per diem: $75\n"
            "London · Hotel cap per night: £220 | Meal per diem: £60\nOther cities · Meal per diem: $55")
    rows = row_passages(text, "What is the meal per diem in New York?")
    assert [text[slice(*p.row)].split(" · ")[0] for p in rows] == ["New York"]
    # every word of the label must be named: "new" alone does not name "New York"; naming none reads every row
    assert len(row_passages(text, "What is the meal per diem in new towns?")) == 3
    assert len(row_passages(text, "What is the highest meal per diem?")) == 3
    assert len(row_passages(text)) == 3
    # two rows named: both are read
    assert len(row_passages(text, "Is the hotel cap higher in London or in New York?")) == 2


def test_a_question_naming_what_the_table_lacks_reads_no_row() -> None:
    text = "City\nRotterdam · Meal per diem: €55\nSingapore · Meal per diem: S$90"
    assert row_passages(text, "What is the meal per diem in Paris?") == []  # Paris is in no cell of the table
    assert len(row_passages(text, "What is the highest meal per diem?")) == 2  # names nothing: every row
    assert len(row_passages(text, "Which City has the highest Meal per diem?")) == 2  # capitals the table holds
    assert len(row_passages(text, "What is the meal per diem in Singapore?")) == 1


def test_a_question_naming_a_column_header_can_only_be_answered_by_that_column() -> None:
    text = ("In millions of CHF\nZone NA · January–June 2023: 2632 | January–June 2022: 1829\n"
            "Zone EUR · January–June 2023: 1373 | January–June 2022: 1234")
    rows = row_passages(text, "What was the trading operating profit of Zone NA in January-June 2022?")
    assert len(rows) == 1 and [text[a:b] for a, b in rows[0].answers] == ["1829"]  # no 2023 cell, no label
    # a header not named in full ("profit" alone) restricts nothing: the label and every cell stay answers
    rows = row_passages(text, "Which zone had the higher profit?")
    assert [text[a:b] for a, b in rows[0].answers] == ["Zone NA", "2632", "1829"]
    # a row without headers ("cell | cell") is untouched
    plain = "Red | Green | Blue\nPurple | Orange | Yellow"
    assert [plain[a:b] for a, b in row_passages(plain, "What is next to Green?")[0].answers] == ["Red", "Green", "Blue"]
    # of two named headers, one inside the other, the more specific one
    text = "Segment\nPets · Trading operating profit: 1939 | Underlying trading operating profit (a): 1959 | Sales: 9"
    rows = row_passages(text, "What was the underlying trading operating profit of Pets?")
    assert [text[a:b] for a, b in rows[0].answers] == ["1959"]  # its footnote mark "(a)" is no word to name
