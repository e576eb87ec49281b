"""Parsing real sample documents from shared/data/docs, including the broken ones in docs/bad/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ingest.filetypes import check_file, sniff
from ingest.parse import (
    UnstructuredFileParser,
    collapse_leaders,
    join_line_hyphens,
    repair_mojibake,
    running_lines,
)
from rag.errors import EmptyDocumentError, EncryptedDocumentError, IngestError, UnsupportedFileError

PAGED = {"pdf", "pptx", "xlsx", "xls"}
NEEDS_LIBREOFFICE = {".doc", ".ppt"}


@pytest.fixture(scope="module")
def parser() -> UnstructuredFileParser:
    return UnstructuredFileParser()


def good_docs(docs: Path) -> list[Path]:
    return sorted(p for p in docs.iterdir() if p.is_file())


class TestGoodDocuments:
    def test_every_sample_document_yields_text(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        results = {}
        for path in good_docs(docs_dir):
            if path.suffix in NEEDS_LIBREOFFICE and not shutil.which("soffice"):
                with pytest.raises(IngestError, match="LibreOffice"):
                    parser.parse_file(path)
                continue
            docs, _ = parser.parse_file(path)
            text = " ".join(d.content for d in docs)
            results[path.name] = len(text.split())
            assert docs, path.name
            assert all(d.meta["source"] == str(path) for d in docs)
            if docs[0].meta["file_type"] in PAGED:
                assert all(isinstance(d.meta["page_number"], int) and d.meta["page_number"] >= 1 for d in docs), path
        assert len(results) >= 30
        assert all(n > 0 for n in results.values()), results

    def test_pdf_pages_match_the_file(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "GSA2022.pdf")
        pages = {d.meta["page_number"] for d in docs}
        assert max(pages) == 41 and len(pages) >= 38
        multi, _ = parser.parse_file(docs_dir / "multi-column.pdf")
        assert "Dense Passage Retrieval" in " ".join(d.content for d in multi if d.meta["page_number"] == 1)

    def test_running_headers_and_footers_are_dropped(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        """GSA2022 prints 'General Services Administration' atop and 'Page N' below every page: the title is kept
        once, as a paragraph of its own, the page numbers never; they no longer glue onto a page's first
        paragraph or become section titles."""
        docs, _ = parser.parse_file(docs_dir / "GSA2022.pdf")
        texts = [d.content for d in docs]
        assert sum("General Services Administration" == t for t in texts) == 1
        assert not any(re.fullmatch(r"Page \d+", t) for t in texts)
        assert not any(d.meta["category"] == "Title" and d.content.startswith("Page ") for d in docs)
        pages = [["Acme Corp - CONFIDENTIAL", "1. Scope", "Text of page one,", "its sentence goes on.", "Page 1 of 3"],
                 ["Acme Corp - CONFIDENTIAL", "2. Fees", "The fee is 10 pounds.", "its sentence goes on.", "Page 2 of 3"],
                 ["Acme Corp - CONFIDENTIAL", "3. Term", "Three years.", "its sentence goes on.", "Page 3 of 3"]]
        # the header and the page number; not a repeated line that goes on a sentence, nor headings or text
        assert running_lines(pages) == {"acme corp - confidential", "page # of #"}
        assert running_lines(pages[:2]) == set()  # two pages are too few to tell

    def test_table_of_contents_leaders_are_collapsed(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        """GSA2022's contents (pages 1-2) are lines of leader dots: each run becomes one ellipsis, headings and page
        numbers stay, so a contents chunk is ~50 words of text instead of ~2,000 tokens of dots."""
        docs, _ = parser.parse_file(docs_dir / "GSA2022.pdf")
        contents = [d for d in docs if d.meta["page_number"] in (1, 2)]
        text = "\n".join(d.content for d in contents)
        assert "Vision \u2026 " in text and "...." not in text and ". . . ." not in text
        assert all("...." not in d.content for d in docs)
        assert collapse_leaders("Suppliers.......... 12\nClimate . . . . . 9") == "Suppliers \u2026 12\nClimate \u2026 9"
        assert collapse_leaders("Wait... what? v1.2.3.4") == "Wait... what? v1.2.3.4"  # an ellipsis, a version
        assert collapse_leaders("form: \u00b7\u00b7\u00b7\u00b7\u00b7 and \u2026\u2026\u2026 end") == "form: \u2026 and \u2026 end"

    def test_line_end_hyphens_are_rejoined(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        """PDFium reports a hyphen that ended a line as U+0002: multi-column.pdf had 250 of them (``ef\x02ficient``,
        ``us\x02ing``), which split words for BM25, the reader and the quotes."""
        docs, _ = parser.parse_file(docs_dir / "multi-column.pdf")
        text = " ".join(d.content for d in docs)
        assert "\x02" not in text and "\x01" not in text
        assert "efficient" in text and "using" in text and "ef ficient" not in text and "effi-ciently" not in text
        assert join_line_hyphens("relies on ef\x02ficient pass") == "relies on efficient pass"
        assert join_line_hyphens("text in high\x02dimensional space") == "text in high-dimensional space"
        assert join_line_hyphens("a strong Lucene\x02BM25 system") == "a strong Lucene-BM25 system"
        assert join_line_hyphens("agencies pre\x02and post-award") == "agencies pre- and post-award"
        assert join_line_hyphens("distinct frame\x02works, em\x02beddings") == "distinct frameworks, embeddings"
        assert join_line_hyphens("x\x01y\tz\n") == "x y\tz\n"
        assert join_line_hyphens("co\x02operate", words=frozenset()) == "cooperate"  # no word list: join

    @pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract-ocr not installed")
    def test_image_only_pdf_and_images_are_ocred(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "loremipsum-flat.pdf")
        text = " ".join(d.content for d in docs).lower()
        assert "lorem ipsum" in text and all(d.meta.get("ocr") for d in docs)
        img, _ = parser.parse_file(docs_dir / "layout-parser-paper-fast.jpg")
        assert "layoutparser" in " ".join(d.content for d in img).lower()

    def test_tables_keep_rows(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "simple-table.md")
        table = next(d for d in docs if d.meta["category"] == "Table")
        assert len(table.content.split("\n")) >= 3 and " | " in table.content

    def test_email_attachment_text_is_included(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "fake-email-attachment.eml")
        assert any(d.meta.get("attachment") for d in docs)

    def test_mojibake_is_repaired(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        docs, _ = parser.parse_file(docs_dir / "norwich-city.txt")
        text = " ".join(d.content for d in docs)
        assert "\u00e2\u0080" not in text
        assert repair_mojibake("1998\u00e2\u0080\u00932000") == "1998\u20132000"
        assert repair_mojibake("caf\u00e9 cr\u00e8me") == "caf\u00e9 cr\u00e8me"  # real Latin-1 text is left alone


class TestSpreadsheets:
    def test_sheet_names_reach_the_tables_unless_default(self, parser: UnstructuredFileParser, tmp_path: Path) -> None:
        import openpyxl

        from ingest.chunk import ElementChunker

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Offices"
        for row in [("City", "Employees", "Opened"), ("Lisbon", 85, 2019), ("Nairobi", 32, 2024),
                    ("Toronto", 140, 2016)]:
            ws.append(row)
        other = wb.create_sheet("Sheet2")
        for row in [("Item", "Price"), ("Pens", 3), ("Ink", 9), ("Paper", 5)]:
            other.append(row)
        path = tmp_path / "book.xlsx"
        wb.save(path)
        docs, _ = parser.parse_file(path)
        tables = [d for d in docs if d.meta["category"] == "Table"]
        assert [d.meta.get("sheet") for d in tables] == ["Offices", None]
        chunks = ElementChunker(chunk_size=200, chunk_overlap=0).run(documents=docs)["documents"]
        first = {c.content.split("\n")[0] for c in chunks}
        assert first == {"Offices · City", "Item"}
        assert any("Nairobi · Employees: 32 | Opened: 2024" in c.content for c in chunks)

    def test_sheets_with_titles_keep_their_own_captions(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        # "OS-Rev.and results 30 06 2023" names a sheet whose tables have titles ("Revenue and results")
        docs, _ = parser.parse_file(docs_dir / "2023-half-year-analyses-by-segment.xlsx")
        assert any(d.meta["category"] == "Title" for d in docs)
        assert not any("sheet" in d.meta for d in docs)


class TestEmail:
    def test_subject_sender_and_date_become_text(self, parser: UnstructuredFileParser, tmp_path: Path) -> None:
        from email.message import EmailMessage

        m = EmailMessage()
        m["From"] = "Grace Lindqvist <grace@northwind.example>"
        m["To"] = "all-staff@northwind.example"
        m["Subject"] = "Office move to Pier 7"
        m["Date"] = "Mon, 30 Nov 2026 09:12:00 +0000"
        m.set_content("Hello everyone,\n\nOur office moves to Pier 7 on Friday 15 January 2027.\n")
        path = tmp_path / "move.eml"
        path.write_bytes(bytes(m))
        docs, _ = parser.parse_file(path)
        assert (docs[0].meta["category"], docs[0].content) == ("Title", "Office move to Pier 7")
        assert docs[1].content == ("E-mail from Grace Lindqvist <grace@northwind.example>, to "
                                   "all-staff@northwind.example, sent on 30 November 2026 at 09:12 (+0000).")
        assert "Pier 7 on Friday 15 January 2027" in " ".join(d.content for d in docs[2:])
        # no Date header: unstructured falls back to the file's mtime, which is no date sent
        del m["Date"]
        path.write_bytes(bytes(m))
        docs, _ = parser.parse_file(path)
        assert docs[1].content == "E-mail from Grace Lindqvist <grace@northwind.example>, to all-staff@northwind.example."


class TestBadDocuments:
    """Expected behaviour per shared/data/README.md 'What the product should do with docs/bad/'."""

    @pytest.mark.parametrize("name", ["password.pdf", "issue6010_1.pdf", "password_protected.xlsx"])
    def test_encrypted_files_need_a_password(self, parser: UnstructuredFileParser, docs_dir: Path, name: str) -> None:
        with pytest.raises(EncryptedDocumentError, match="password") as e:
            parser.parse_file(docs_dir / "bad" / name)
        assert "\n" not in str(e.value) and name in str(e.value)

    @pytest.mark.parametrize("name,password,text", [("password.pdf", "password", "File with password"),
                                                    ("issue6010_1.pdf", "abc", "Issue 6010")])
    def test_password_opens_encrypted_pdf(self, docs_dir: Path, name: str, password: str, text: str) -> None:
        docs, _ = UnstructuredFileParser(passwords={name: password}).parse_file(docs_dir / "bad" / name)
        assert text in " ".join(d.content for d in docs)
        with pytest.raises(EncryptedDocumentError, match="wrong"):
            UnstructuredFileParser(passwords={"*": "nope"}).parse_file(docs_dir / "bad" / name)

    @pytest.mark.parametrize("name,expect", [("copy-protected.pdf", "LayoutParser"),
                                             ("xref_command_missing.pdf", "Reduced test-case"),
                                             ("fake-text-utf-16.txt", "This is a test document")])
    def test_readable_damaged_files_are_ingested(self, parser: UnstructuredFileParser, docs_dir: Path,
                                                 name: str, expect: str) -> None:
        docs, _ = parser.parse_file(docs_dir / "bad" / name)
        assert expect in " ".join(d.content for d in docs)

    def test_wrong_extension_is_parsed_by_content(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        path = docs_dir / "bad" / "wrong-extension-docx-content.pdf"
        assert sniff(path) == "docx"
        docs, warnings = parser.parse_file(path)
        assert docs and docs[0].meta["file_type"] == "docx"
        assert any("not .pdf" in w for w in warnings)

    def test_truncated_pdf_is_reported_corrupt(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        with pytest.raises(IngestError, match="corrupt or truncated"):
            parser.parse_file(docs_dir / "bad" / "truncated-layout-parser-paper-fast.pdf")

    @pytest.mark.parametrize("name", ["zero-bytes.pdf", "empty.txt"])
    def test_empty_files(self, parser: UnstructuredFileParser, docs_dir: Path, name: str) -> None:
        with pytest.raises(EmptyDocumentError, match="empty file"):
            parser.parse_file(docs_dir / "bad" / name)

    def test_run_reports_failures_and_goes_on(self, parser: UnstructuredFileParser, docs_dir: Path) -> None:
        bad = sorted(str(p) for p in (docs_dir / "bad").iterdir())
        out = parser.run(sources=[*bad, str(docs_dir / "fake-memo.pdf")])
        failed = {Path(f["source"]).name for f in out["failures"]}
        assert failed == {"password.pdf", "issue6010_1.pdf", "password_protected.xlsx", "zero-bytes.pdf",
                          "empty.txt", "truncated-layout-parser-paper-fast.pdf"}
        assert all("\n" not in f["error"] for f in out["failures"])
        ingested = {Path(d.meta["source"]).name for d in out["documents"]}
        assert {"fake-memo.pdf", "copy-protected.pdf", "xref_command_missing.pdf", "fake-text-utf-16.txt",
                "wrong-extension-docx-content.pdf"} <= ingested


class TestFileChecks:
    def test_unsupported_and_oversize(self, tmp_path: Path) -> None:
        f = tmp_path / "data.bin"
        f.write_bytes(b"\x00\x01binary")
        with pytest.raises(UnsupportedFileError, match="unsupported file type"):
            check_file(f, 10)
        big = tmp_path / "big.txt"
        big.write_text("x" * 2_000_000)
        with pytest.raises(IngestError, match="over the 1 MB limit"):
            check_file(big, 1)

    def test_fake_binary_with_binary_extension(self, tmp_path: Path) -> None:
        f = tmp_path / "report.pdf"
        f.write_text("this is not a pdf at all")
        with pytest.raises(IngestError, match="not a valid PDF"):
            check_file(f, 10)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(IngestError, match="not found"):
            check_file(tmp_path / "nope.pdf", 10)
