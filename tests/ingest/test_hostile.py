"""Hostile files meet the parse budget: each test builds its file and asserts a bounded, one-line outcome.

Limits are made small through ``ParseLimits`` where the real-size file would only cost CI time; the
refusal text must name the file's limit and the setting that raises it.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pytest

from ingest.limits import LimitExceededError, ParseLimits
from ingest.parse import UnstructuredFileParser, is_blank
from ingest.pool import ParsePool
from rag.errors import EmptyDocumentError

DOCX_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
           'content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
           'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.'
           'main+xml"/></Types>')


def docx_bomb(path: Path, inflated_mb: int, members: int = 0) -> Path:
    """A DOCX whose word/document.xml inflates to ``inflated_mb`` (spaces compress ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", DOCX_CT)
        with z.open("word/document.xml", "w", force_zip64=inflated_mb >= 2000) as f:
            f.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                    b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
            block = b" " * (1 << 20)
            for _ in range(inflated_mb):
                f.write(block)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
        for i in range(members):
            z.writestr(f"word/media/m{i}.xml", "<x/>")
    return path


def blank_pdf(path: Path, pages: int, width: float = 612, height: float = 792) -> Path:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(width, height)
    pdf.save(str(path))
    pdf.close()
    return path


def png(path: Path, width: int, height: int) -> Path:
    from PIL import Image

    Image.new("1", (width, height), 1).save(path, optimize=True)
    return path


def in_process(**limits: float) -> UnstructuredFileParser:
    return UnstructuredFileParser(limits=ParseLimits(**limits), workers=0)


@pytest.fixture(scope="module")
def pool() -> ParsePool:
    with ParsePool(workers=1) as p:
        yield p


class TestZipContainers:
    def test_zip_bomb_docx_is_refused_before_parsing(self, tmp_path: Path) -> None:
        bomb = docx_bomb(tmp_path / "bomb.docx", inflated_mb=48)
        assert bomb.stat().st_size < 1_000_000
        t0 = time.monotonic()
        with pytest.raises(LimitExceededError) as e:
            in_process(max_zip_mb=16).parse_file(bomb)
        assert time.monotonic() - t0 < 5
        assert e.value.limit == "max_zip_mb" and e.value.source == str(bomb)
        assert "DOCX inflates to 48 MB" in e.value.reason and "word/document.xml" in e.value.reason
        assert e.value.reason.endswith("(raise DOCRAG_MAX_ZIP_MB)") and "\n" not in e.value.reason

    def test_member_count_is_limited(self, tmp_path: Path) -> None:
        many = docx_bomb(tmp_path / "many.docx", inflated_mb=0, members=40)
        with pytest.raises(LimitExceededError, match=r"42 members, over the 20 limit \(raise DOCRAG_MAX_ZIP_MEMBERS"):
            in_process(max_zip_members=20).parse_file(many)

    def test_component_reports_the_bomb_as_one_failure(self, tmp_path: Path, docs_dir: Path) -> None:
        bomb = docx_bomb(tmp_path / "bomb.docx", inflated_mb=24)
        good = docs_dir / "norwich-city.txt" if (docs_dir / "norwich-city.txt").is_file() else None
        sources = [str(bomb)] + ([str(good)] if good else [])
        out = UnstructuredFileParser(limits={"max_zip_mb": 8}, workers=1).run(sources=sources)
        assert out["failures"] == [{"source": str(bomb), "error": out["failures"][0]["error"]}]
        assert "DOCRAG_MAX_ZIP_MB" in out["failures"][0]["error"]
        if good:
            assert out["documents"] and all(d.meta["source"] == str(good) for d in out["documents"])


class TestPages:
    @pytest.fixture(scope="class")
    def pdf_2000(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return blank_pdf(tmp_path_factory.mktemp("pdf") / "blank-2000.pdf", 2000)

    @pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract-ocr not installed")
    def test_2000_blank_pages_skip_ocr_and_finish(self, pdf_2000: Path) -> None:
        t0 = time.monotonic()
        with pytest.raises(EmptyDocumentError, match="no text extracted"):
            in_process().parse_file(pdf_2000)
        assert time.monotonic() - t0 < 60

    def test_page_limit_refuses(self, pdf_2000: Path) -> None:
        with pytest.raises(LimitExceededError, match=r"2000 pages, over the 500 page limit \(raise DOCRAG_MAX_PAGES\)"):
            in_process(max_pages=500).parse_file(pdf_2000)

    def test_blank_check_sees_ink(self) -> None:
        from PIL import Image, ImageDraw

        page = Image.new("L", (200, 260), 255)
        assert is_blank(page)
        ImageDraw.Draw(page).text((10, 10), "A line of text on the page", fill=0)
        assert not is_blank(page)

    @pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract-ocr not installed")
    def test_huge_pdf_page_is_rendered_within_the_pixel_limit(self, tmp_path: Path) -> None:
        from ingest.limits import render_scale

        huge = blank_pdf(tmp_path / "huge-page.pdf", 1, 14400, 14400)  # 200 in x 200 in: 3.6 Gpx at 300 dpi
        t0 = time.monotonic()
        with pytest.raises(EmptyDocumentError):
            in_process(max_image_mpix=4).parse_file(huge)
        assert time.monotonic() - t0 < 30
        s = render_scale(14400, 14400, 300, ParseLimits(max_image_mpix=4))
        assert (14400 * s) ** 2 <= 4e6 * 1.001


class TestTextAndImages:
    def test_50mb_one_line_text_is_refused(self, tmp_path: Path) -> None:
        big = tmp_path / "one-line.txt"
        with open(big, "wb") as f:
            f.write(b"lorem " * (50 * 1024 * 1024 // 6 + 1))
        t0 = time.monotonic()
        with pytest.raises(LimitExceededError, match=r"text file is 50\.0 MB, over the 20 MB limit for text "
                                                     r"\(raise DOCRAG_MAX_TEXT_MB\)"):
            in_process().parse_file(big)
        assert time.monotonic() - t0 < 5

    def test_pixel_bomb_png_is_refused_from_its_header(self, tmp_path: Path) -> None:
        bomb = png(tmp_path / "bomb.png", 12000, 12000)
        assert bomb.stat().st_size < 1_000_000
        with pytest.raises(LimitExceededError, match=r"12000x12000 \(144 megapixels\), over the 100 megapixel "
                                                     r"limit \(raise DOCRAG_MAX_IMAGE_MPIX\)"):
            in_process().parse_file(bomb)


class TestWorkerBudget:
    """The pool kills a worker over its wall-clock limit or memory ceiling and goes on with the next file."""

    def test_wall_clock_limit_kills_the_worker(self, pool: ParsePool, tmp_path: Path) -> None:
        slow = tmp_path / "slow.txt"
        slow.write_bytes(b"word " * 4_000_000)  # 20 MB, one line: the partitioner takes minutes
        ok = tmp_path / "ok.txt"
        ok.write_text("A short note about the quarterly budget review.\n")
        t0 = time.monotonic()
        slow_r, ok_r = pool.map([slow, ok], limits=ParseLimits(max_text_mb=100, timeout_s=3))
        assert time.monotonic() - t0 < 60
        assert slow_r.limit == "timeout_s" and slow_r.error == "parsing took over 3 s (raise DOCRAG_PARSE_TIMEOUT_S)"
        assert ok_r.ok and "quarterly budget" in ok_r.documents[0].content

    @pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="RSS watch needs /proc")
    def test_memory_ceiling_kills_the_worker(self, pool: ParsePool, tmp_path: Path) -> None:
        if not shutil.which("tesseract"):
            pytest.skip("image parsing needs tesseract")
        bomb = png(tmp_path / "bomb.png", 12000, 12000)  # decodes to 432 MB of RGB
        res = pool.submit(bomb, limits=ParseLimits(max_image_mpix=1000, memory_mb=700)).result()
        assert res.limit == "memory_mb", res
        assert "over 700 MB of memory (raise DOCRAG_PARSE_MEMORY_MB)" in res.error
        assert res.peak_rss_mb < 3072
        assert res.seconds < 60

    def test_progress_is_reported_per_file(self, pool: ParsePool, tmp_path: Path) -> None:
        files = []
        for i in range(3):
            f = tmp_path / f"n{i}.txt"
            f.write_text(f"Note number {i} about the project schedule.\n")
            files.append(f)
        seen: list[tuple[int, int, str]] = []
        results = list(pool.map(files, progress=lambda done, total, r: seen.append((done, total, r.source))))
        assert [r.source for r in results] == [str(f) for f in files]
        assert sorted(d for d, _, _ in seen) == [1, 2, 3] and {t for _, t, _ in seen} == {3}
        assert all(r.ok and r.peak_rss_mb > 0 for r in results)

    def test_parsing_ahead_is_bounded_and_closing_early_cancels_the_rest(self, pool: ParsePool,
                                                                          tmp_path: Path) -> None:
        files = []
        for i in range(5):
            f = tmp_path / f"n{i}.txt"
            f.write_text(f"Note number {i} about the project schedule.\n")
            files.append(f)
        seen: list[int] = []
        it = pool.map(files, ahead=1, progress=lambda done, total, r: seen.append(done))
        assert next(it).source == str(files[0])
        it.close()  # the consumer stops (e.g. a full disk): what was not handed to a worker is never parsed
        late = pool.submit(files[4]).result(timeout=60)  # the pool serves the next caller
        time.sleep(0.5)
        assert late.ok and late.source == str(files[4])
        assert max(seen) <= 2, seen  # the first file and at most the one queued ahead of it


def test_parser_round_trips_its_budget() -> None:
    p = UnstructuredFileParser(limits={"max_pages": 7, "timeout_s": 9}, workers=2, max_file_mb=3)
    q = UnstructuredFileParser.from_dict(p.to_dict())
    assert q.limits == ParseLimits(max_pages=7, timeout_s=9, max_file_mb=3) and q.workers == 2


def test_settings_give_ingest_plain_limits() -> None:
    from rag.config import Settings

    s = Settings(max_zip_mb=5, parse_timeout_s=7, parse_memory_mb=900, max_pages=11)
    assert s.parse_limits() == ParseLimits(max_zip_mb=5, timeout_s=7, memory_mb=900, max_pages=11)
