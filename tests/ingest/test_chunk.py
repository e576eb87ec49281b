from haystack import Document

from ingest.chunk import ElementChunker, chunk_id


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

    def test_table_kept_whole_or_split_by_rows_with_header(self) -> None:
        c = ElementChunker(chunk_size=40, chunk_overlap=5)
        small = "A | B\n1 | 2\n3 | 4"
        chunks = c.run(documents=[el(words(10)), el(small, "Table")])["documents"]
        assert sum(small in ch.content for ch in chunks) == 1
        big = "Name | Value\n" + "\n".join(f"row{i} | {' '.join(['x'] * 8)}" for i in range(20))
        parts = c.run(documents=[el(big, "Table")])["documents"]
        assert len(parts) > 1 and all(p.content.startswith("Name | Value") for p in parts)

    def test_page_change_starts_new_chunk_when_big_enough(self) -> None:
        c = ElementChunker(chunk_size=60, chunk_overlap=0)
        chunks = c.run(documents=[el(words(30), page=1), el(words(30, "p"), page=2)])["documents"]
        assert [ch.meta["page_numbers"] for ch in chunks] == [[1], [2]]

    def test_deterministic_ids(self) -> None:
        c = ElementChunker(chunk_size=30, chunk_overlap=5)
        docs = [el(words(100))]
        assert [d.id for d in c.run(documents=docs)["documents"]] == [d.id for d in c.run(documents=docs)["documents"]]
