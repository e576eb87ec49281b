from haystack import Document

from ingest.chunk import ElementChunker, chunk_id, page_at


def el(text: str, cat: str = "NarrativeText", page: int | None = 1, **meta) -> Document:
    return Document(content=text, meta={"source": "/x/doc.pdf", "file_name": "doc.pdf", "file_hash": "h",
                                        "index_key": "k", "category": cat, "page_number": page, **meta})


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n)) + "."


class TestElementChunker:
    def test_init_validates(self) -> None:
        import pytest

        with pytest.raises(ValueError, match="chunk_size"):
            ElementChunker(chunk_size=4)
        with pytest.raises(ValueError, match="chunk_overlap"):
            ElementChunker(chunk_size=50, chunk_overlap=50)

    def test_sizes_overlap_and_metadata(self) -> None:
        c = ElementChunker(chunk_size=50, chunk_overlap=10)
        chunks = c.run(documents=[el(words(40, "a")), el(words(40, "b")), el(words(40, "c"))])["documents"]
        assert len(chunks) >= 3
        assert all(len(ch.content.split()) <= 60 for ch in chunks)
        # consecutive chunks share the overlap words
        assert chunks[0].content.split()[-10:] == chunks[1].content.split()[:10]
        m = chunks[1].meta
        assert m["chunk_index"] == 1 and m["chunk_count"] == len(chunks)
        assert m["page_numbers"] == [1] and m["file_hash"] == "h" and m["index_key"] == "k"
        assert chunks[1].id == chunk_id("/x/doc.pdf", "h", 1)

    def test_title_path_follows_depth(self) -> None:
        c = ElementChunker(chunk_size=40, chunk_overlap=0)
        docs = [el("Chapter One", "Title", category_depth=0), el(words(30)), el("Section A", "Title", category_depth=1),
                el(words(30, "s")), el("Chapter Two", "Title", category_depth=0), el(words(30, "t"))]
        chunks = c.run(documents=docs)["documents"]
        paths = [ch.meta["title_path"] for ch in chunks]
        assert paths[0] == "Chapter One"
        assert "Chapter One > Section A" in paths
        assert paths[-1] == "Chapter Two"

    def test_table_rows_keep_labels_and_headers(self) -> None:
        c = ElementChunker(chunk_size=40, chunk_overlap=5)
        small = "Item | Price | Stock\nApples | 1.99 | 739\nBananas | 1.89 | 6"
        chunks = c.run(documents=[el(words(10)), el(small, "Table")])["documents"]
        table = [ch for ch in chunks if "Table" in ch.meta["element_types"]]
        assert len(table) == 1 and table[0].meta["element_types"] == ["Table"]  # a chunk of its own
        assert "Bananas · Price: 1.89 | Stock: 6" in table[0].content
        big = "Name | Value\n" + "\n".join(f"row{i} | {i}.5" for i in range(40))
        parts = c.run(documents=[el(big, "Table")])["documents"]
        assert len(parts) > 1 and all(len(p.content.split()) <= 20 for p in parts)
        assert all(p.content.split("\n")[0] == "Name" for p in parts)  # the caption line starts every part
        assert all(line == f"row{line.split()[0][3:]} · Value: {line.split()[0][3:]}.5"
                   for p in parts for line in p.content.split("\n")[1:])

    def test_page_of_a_quote_in_a_chunk_over_two_pages(self) -> None:
        c = ElementChunker(chunk_size=60, chunk_overlap=5)
        docs = [el("Fees are due monthly.", page=1), el("The fee is 18,500 pounds a month.", page=2),
                el(words(70, "p3"), page=3), el("Signed by Peter Ashdown.", page=3)]
        chunks = c.run(documents=docs)["documents"]
        first = chunks[0]
        assert first.meta["page_numbers"] == [1, 2] and first.meta["page_number"] == 1
        assert page_at(first.meta, first.content.index("Fees")) == 1
        assert page_at(first.meta, first.content.index("18,500")) == 2
        # the overlap words that start the next chunk keep the page they come from
        nxt = chunks[1]
        assert page_at(nxt.meta, 0) == 2 and page_at(nxt.meta, nxt.content.index("p30 ")) == 3
        last = chunks[-1]
        assert page_at(last.meta, last.content.index("Ashdown")) == 3
        # one page, or a chunk stored before page offsets existed: its first page
        assert page_at({"page_number": 4}, 10) == 4 and page_at({}, 0) is None

    def test_sheet_name_captions_every_part_of_its_table(self) -> None:
        c = ElementChunker(chunk_size=40, chunk_overlap=0)
        rows = "City | Employees | Opened\n" + "\n".join(f"City{i} | {i * 10} | {2000 + i}" for i in range(12))
        parts = c.run(documents=[el(rows, "Table", sheet="Offices")])["documents"]
        assert len(parts) > 1
        assert all(p.content.split("\n")[0] == "Offices · City" for p in parts)
        assert any("City3 · Employees: 30 | Opened: 2003" in p.content for p in parts)
        # no sheet name: the header caption alone, as before
        plain = c.run(documents=[el(rows, "Table")])["documents"]
        assert plain[0].content.split("\n")[0] == "City"

    def test_header_only_table_lends_its_rows_to_the_next(self) -> None:
        c = ElementChunker(chunk_size=80, chunk_overlap=0)
        head = "In millions of CHF |  |  | January–June\\n2023\n | Sales (a) | Trading\\noperating profit | Margin"
        body = "Zone NA | 12553 | 2632 | 21.0%\nZone EUR | 9467 | 1373 | 14.5%"
        chunks = c.run(documents=[el("Revenue and results", "Title"), el(head, "Table"), el(body, "Table")])["documents"]
        text = "\n".join(ch.content for ch in chunks)
        assert "In millions of CHF · January–June 2023" in text
        assert "Zone EUR · Sales (a): 9467 | Trading operating profit: 1373 | Margin: 14.5%" in text

    def test_context_header_names_the_document(self) -> None:
        c = ElementChunker(chunk_size=40, chunk_overlap=0)
        docs = [el("Acme Corp Quarterly Report", "Title"), el("For the quarter ended June 30, 2022. " + words(20)),
                el("Results", "Title", category_depth=1), el(words(30, "r"))]
        chunks = c.run(documents=docs)["documents"]
        m = chunks[-1].meta
        assert m["doc_title"] == "Acme Corp Quarterly Report" and m["doc_date"] == "2022-06-30"
        assert m["context"].startswith("Acme Corp Quarterly Report · June 30, 2022 · doc.pdf")
        assert m["context"].endswith("Results")

    def test_page_change_starts_new_chunk_when_big_enough(self) -> None:
        c = ElementChunker(chunk_size=60, chunk_overlap=0)
        chunks = c.run(documents=[el(words(30), page=1), el(words(30, "p"), page=2)])["documents"]
        assert [ch.meta["page_numbers"] for ch in chunks] == [[1], [2]]

    def test_deterministic_ids(self) -> None:
        c = ElementChunker(chunk_size=30, chunk_overlap=5)
        docs = [el(words(100))]
        assert [d.id for d in c.run(documents=docs)["documents"]] == [d.id for d in c.run(documents=docs)["documents"]]
