"""Parse files into element Documents: one Haystack ``Document`` per text element, in reading order.

- Office, HTML, Markdown, text, e-mail, EPUB, RTF, ODT, XML/JSON, CSV/TSV: ``unstructured.partition``.
- PDF, ``pdf_strategy="fast"`` (default): PDFium's text layer per page (about 300 pages/s here, against about
  1 page/s for unstructured's pdfminer path), lines regrouped into paragraphs and titles; a page whose text
  rectangles line up in columns keeps its tables (``Table`` elements of ``cell | cell`` rows) and forms
  (``label: value`` lines), see :mod:`ingest.pdf_tables`; pages without a text layer are rendered and OCRed
  with tesseract. ``"unstructured"`` uses ``partition_pdf(strategy="fast")``
  instead (slower, same element model); ``"ocr_only"`` OCRs every page.
- Images: tesseract OCR.

Every element Document carries ``source``, ``file_name``, ``file_type``, ``page_number`` (1-based, or None for
formats without pages), ``category`` (unstructured's element type) and ``element_index``.
A file that yields no text raises :class:`EmptyDocumentError`; the component itself never raises for a bad
file: it reports it in ``failures`` and goes on with the batch.

Every file is parsed within a budget (:class:`ingest.limits.ParseLimits`): zip containers, pages, pixels and
text size are checked before parsing, blank PDF pages are skipped before OCR, and with ``workers >= 1`` (the
default) the file is parsed in a worker process of :func:`ingest.pool.shared_pool` that is killed past the
wall-clock limit or the memory ceiling.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ingest.errors import CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError, IngestError
from ingest.filetypes import BINARY_TYPES, check_file
from ingest.limits import (
    ParseLimits,
    check_container,
    check_image_pixels,
    check_pages,
    check_text_size,
    render_scale,
)
from ingest.pdf_tables import elements_of, page_blocks
from ingest.pool import ParseResult, shared_pool

logger = logging.getLogger(__name__)
_RUN_PASSWORDS: ContextVar[dict[str, str] | None] = ContextVar("docrag_run_passwords", default=None)

_DROP_CATEGORIES = frozenset({"PageBreak", "PageNumber", "Image"})
# sheet names a spreadsheet program gives by default say nothing about the table ("Sheet1", "Tabelle2", ...)
_DEFAULT_SHEET = re.compile(r"^\s*(sheet|tabelle|feuil|hoja|foglio|blad|planilha|arkusz|лист)\s*\d*\s*$", re.IGNORECASE)
_MOJIBAKE = re.compile(r"[\u00c2-\u00f4][\u0080-\u00bf]")
# Leader dots of a table of contents ("Vision ........ 3"): four or more dots or middle dots, or two or more
# ellipsis characters, spaced or not, with the blanks around them
_LEADER = re.compile(r"[ \t]*(?:(?:[.\u00b7][ \t]?){4,}|(?:\u2026[ \t]?){2,})[ \t]*")
_OCR_DPI = 300
_BLANK_DPI = 36  # blank-page check before OCR: render this small, look for ink
_INK_LEVEL = 200  # grey level (0-255) below which a pixel counts as ink
_MIN_INK_FRACTION = 0.0002  # one short line of small text at 36 dpi is ~0.08%


def is_blank(image: Any) -> bool:
    """True when a (low-resolution) page image has no ink: nothing for OCR to find."""
    gray = image.convert("L")
    hist = gray.histogram()
    ink = sum(hist[:_INK_LEVEL])
    return ink < _MIN_INK_FRACTION * gray.width * gray.height


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as Latin-1/CP1252 (``â\\x80\\x93`` -> ``–``), when that is what it is."""
    if not _MOJIBAKE.search(text):
        return text
    for enc in ("latin-1", "cp1252"):
        try:
            fixed = text.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if len(_MOJIBAKE.findall(fixed)) < len(_MOJIBAKE.findall(text)):
            return fixed
    return text


def collapse_leaders(text: str) -> str:
    """Shorten the leader dots of tables of contents and forms to one ellipsis (``Vision ....... 3`` ->
    ``Vision … 3``): a TOC line of leaders is ~100 tokens of dots, which crowd the text out of a chunk's embedding
    window and cost the NER model a pass over nothing. A three-dot ellipsis is left alone."""
    return _LEADER.sub(_leader_to_ellipsis, text)


_LINE_HYPHEN = re.compile(r"([^\W\d_]+)\x02(\s*)(\w+)")  # PDFium's U+0002: a hyphen that ended a line
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls other than tab, newline, return
_SUSPENDED = frozenset({"and", "or", "nor", "to"})  # "pre- and post-award"
_SUFFIXES = ("s", "es", "ed", "d", "ing", "ly", "er", "ers", "ment", "ments", "al", "ally")


def join_line_hyphens(text: str, words: frozenset[str] | None = None) -> str:
    """Undo the line-end hyphens PDFium reports as U+0002 (``ef\x02ficient`` -> ``efficient``) and blank the other
    control characters a PDF's text layer can hold, so search, the reader and quotes see whole words.

    A known word joined (``words``: the embedder's vocabulary, :func:`rag.models.known_words`), or a part that is
    not a word of its own, is a hyphenation and joins; two words that are each known but not together keep their
    hyphen (``high\x02dimensional`` -> ``high-dimensional``), as does a capitalised or numeric second part
    (``Lucene\x02BM25``); before ``and``/``or``/``to`` it is a suspended hyphen (``pre- and post-award``)."""
    if "\x02" in text:
        if words is None:
            from rag.models import known_words

            words = known_words()
        text = _LINE_HYPHEN.sub(lambda m: _rejoin(m.group(1), m.group(3), words), text)
    return _CONTROL.sub(" ", text)


def _known(word: str, words: frozenset[str]) -> bool:
    return word in words or any(word.endswith(x) and word[:-len(x)] in words for x in _SUFFIXES if len(word) > len(x) + 2)


def _rejoin(left: str, right: str, words: frozenset[str]) -> str:
    if right.lower() in _SUSPENDED:
        return f"{left}- {right}"
    if not right[0].isalpha() or right[0].isupper():
        return f"{left}-{right}"
    joined = (left + right).lower()
    if not _known(joined, words) and min(len(left), len(right)) > 2 and \
            _known(left.lower(), words) and _known(right.lower(), words):
        return f"{left}-{right}"
    return left + right


def _leader_to_ellipsis(m: re.Match[str]) -> str:
    before = " " if m.start() > 0 and m.string[m.start() - 1] != "\n" else ""
    after = " " if m.end() < len(m.string) and m.string[m.end()] != "\n" else ""
    return f"{before}\u2026{after}"


def _html_table_to_text(html: str) -> str | None:
    """Render an HTML table as rows of ``cell | cell`` so a chunk keeps the table's structure."""
    try:
        from lxml import html as lhtml

        root = lhtml.fromstring(html)
    except Exception:  # noqa: BLE001 - fall back to unstructured's flat text
        return None
    rows = []
    for tr in root.iter("tr"):
        cells = [" ".join(c.text_content().split()) for c in tr if c.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows) or None


def _is_title(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 12
        and not line.rstrip().endswith((".", ",", ";", ":"))
        and sum(w[0].isupper() or w[0].isdigit() for w in words) >= max(1, int(len(words) * 0.6))
        and any(c.isalpha() for c in line)
    )


_PAGE_NUMBER = re.compile(r"(page\s*)?#+(\s*(of|/)\s*#+)?|[-–—]\s*#+\s*[-–—]")


def _edge_key(line: str) -> str:
    """A line as running headers and footers repeat it: case and spacing folded, numbers as ``#``."""
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def running_lines(pages: list[list[str]], depth: int = 2) -> set[str]:
    """Keys (:func:`_edge_key`) of a PDF's running headers and footers: the first or the last line of at least
    half of the pages with text (and of 3 at least), peeled ``depth`` times (a two-line header): "Page 3 of 6",
    a document's title or "CONFIDENTIAL" printed on every page. Left in, they glued onto the first paragraph or
    heading of every page and became section titles ("Page 1 of 6")."""
    pages = [[ln for ln in lines if ln.strip()] for lines in pages]
    pages = [lines for lines in pages if lines]
    if len(pages) < 3:
        return set()
    need = max(3, (len(pages) + 1) // 2)
    found: set[str] = set()
    for _ in range(depth):
        counts: Counter[str] = Counter()
        for lines in pages:  # a line that starts in lower case goes on a sentence: content, not a header
            counts.update({_edge_key(ln) for ln in (lines[0], lines[-1]) if not ln.lstrip()[:1].islower()})
        new = {k for k, n in counts.items() if n >= need and any(c.isalpha() or c == "#" for c in k)} - found
        if not new:
            break
        found |= new
        pages = [[ln for ln in lines if _edge_key(ln) not in new] for lines in pages]
        pages = [lines for lines in pages if lines]
    return found


def _without_running(lines: list[str], running: set[str], kept: set[str]) -> list[str]:
    """``lines`` without running headers and footers; a running line that is not a page number is kept once (its
    first time, in ``kept``), as a paragraph of its own: it is often the document's title."""
    if not running:
        return lines
    out: list[str] = []
    for ln in lines:
        key = _edge_key(ln)
        if key not in running:
            out.append(ln)
        elif key not in kept and not _PAGE_NUMBER.fullmatch(key):
            kept.add(key)
            out += ["", ln, ""]
    return out


def _paragraphs_from_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Group text-layer lines into (category, text) paragraphs: blank lines and short title lines split."""
    out: list[tuple[str, str]] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            text = ""
            for ln in buf:
                if text.endswith("-") and ln[:1].islower():
                    text = text[:-1] + ln
                else:
                    text = f"{text} {ln}" if text else ln
            out.append(("NarrativeText", text))
            buf.clear()

    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            flush()
            continue
        if _is_title(line) and (not buf or buf[-1].rstrip().endswith((".", ":", "?", "!"))):
            flush()
            out.append(("Title", line))
            continue
        buf.append(line)
        if line.endswith((".", "?", "!")) and len(" ".join(buf).split()) > 120:
            flush()
    flush()
    return out


@component
class UnstructuredFileParser:
    """Parses files into element Documents with unstructured (plus PDFium and tesseract), one file at a time.

    Usage:
    ```python
    parser = UnstructuredFileParser()
    result = parser.run(sources=["report.pdf", "notes.docx"])
    result["documents"]  # element Documents with page metadata
    result["failures"]   # [{"source": ..., "error": ...}] for files that could not be parsed
    ```
    """

    def __init__(
        self,
        pdf_strategy: str = "fast",
        ocr: bool = True,
        ocr_languages: str = "eng",
        max_file_mb: float | None = None,
        passwords: dict[str, str] | None = None,
        limits: ParseLimits | dict[str, Any] | None = None,
        workers: int = 1,
    ) -> None:
        """
        :param pdf_strategy: "fast" (PDFium text layer + OCR of image-only pages), "unstructured", "ocr_only".
        :param ocr: OCR image-only pages and image files with tesseract.
        :param ocr_languages: tesseract languages, e.g. "eng+deu".
        :param max_file_mb: larger files are refused (overrides ``limits.max_file_mb``).
        :param passwords: passwords for encrypted PDFs, by file name or path; key "*" applies to all.
        :param limits: the parse budget per file (:class:`ParseLimits` or its dict).
        :param workers: parse in the shared pool of this many worker processes, which enforces the time and
            memory limits; 0 parses in this process (static limits only).
        """
        if pdf_strategy not in ("fast", "unstructured", "ocr_only", "auto"):
            raise ValueError(f"pdf_strategy must be fast, unstructured, ocr_only or auto, not {pdf_strategy!r}")
        if workers < 0:
            raise ValueError(f"workers must be >= 0, not {workers}")
        limits = limits if isinstance(limits, ParseLimits) else ParseLimits.from_dict(limits)
        if max_file_mb is not None:
            limits = ParseLimits(**{**limits.to_dict(), "max_file_mb": max_file_mb})
        self.pdf_strategy = "fast" if pdf_strategy == "auto" else pdf_strategy
        self.ocr = ocr
        self.ocr_languages = ocr_languages
        self.limits = limits
        self.max_file_mb = limits.max_file_mb
        self.passwords = dict(passwords or {})
        self.workers = workers

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, pdf_strategy=self.pdf_strategy, ocr=self.ocr,
                               ocr_languages=self.ocr_languages, passwords=self.passwords,
                               limits=self.limits.to_dict(), workers=self.workers)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnstructuredFileParser:
        return default_from_dict(cls, data)

    def options(self) -> dict[str, Any]:
        """The parse options a worker needs to parse like this component (see :mod:`ingest.pool`)."""
        return {"pdf_strategy": self.pdf_strategy, "ocr": self.ocr, "ocr_languages": self.ocr_languages,
                "passwords": {**self.passwords, **(_RUN_PASSWORDS.get() or {})}}

    @component.output_types(documents=list[Document], failures=list[dict], warnings=list[dict])
    def run(self, sources: list[str], meta: list[dict[str, Any]] | None = None,
            passwords: dict[str, str] | None = None) -> dict[str, Any]:
        """
        :param sources: file paths.
        :param meta: optional metadata per source, merged into each element's meta.
        :param passwords: this run's passwords (a run-time input: one graph serves every caller), over the
            init ones.
        :returns: ``documents`` (elements), ``failures`` and ``warnings`` (each ``{"source", "error"|"warning"}``).
        """
        if meta is not None and len(meta) != len(sources):
            raise ValueError(f"meta has {len(meta)} entries for {len(sources)} sources")
        documents: list[Document] = []
        failures: list[dict] = []
        warnings: list[dict] = []
        token = _RUN_PASSWORDS.set(dict(passwords or {}))
        try:
            results = self.parse_many(sources, meta)
        finally:
            _RUN_PASSWORDS.reset(token)
        for r in results:
            if not r.ok:
                logger.warning("Skipping %s: %s", r.source, r.error)
                failures.append(r.failure())
                continue
            documents.extend(r.documents)
            warnings.extend({"source": r.source, "warning": w} for w in r.warnings)
        return {"documents": documents, "failures": failures, "warnings": warnings}

    def parse_many(self, sources: list[str], meta: list[dict[str, Any]] | None = None) -> list[ParseResult]:
        """Parse files within the budget: in the shared worker pool (``workers >= 1``) or in this process.

        Never raises for a bad file: its :class:`ParseResult` carries the one-line ``error``.
        """
        return list(self.iter_parse(sources, meta))

    def iter_parse(self, sources: list[str], meta: list[dict[str, Any]] | None = None,
                   ahead: int | None = None) -> Iterator[ParseResult]:
        """:meth:`parse_many` as it goes, in input order: the pool parses up to ``ahead`` files beyond the
        one handed back while the caller works on it (the pipelined ingest); closing the iterator cancels the
        files not started yet."""
        metas = meta or [{}] * len(sources)
        if self.workers:
            yield from shared_pool(self.workers).map(sources, metas, options=self.options(), limits=self.limits,
                                                     ahead=ahead)
            return
        for src, m in zip(sources, metas, strict=True):
            t0 = time.monotonic()
            try:
                docs, warns = self.parse_file(Path(src), m)
                yield ParseResult(str(src), docs, warns, seconds=time.monotonic() - t0)
            except IngestError as e:
                yield ParseResult(str(src), error=e.reason, limit=getattr(e, "limit", None),
                                  seconds=time.monotonic() - t0)

    # ------------------------------------------------------------------------------------------
    def parse_file(self, path: Path, meta: dict[str, Any] | None = None) -> tuple[list[Document], list[str]]:
        """Parse one file. Raises :class:`IngestError` (or a subclass) with a user-facing reason."""
        check = check_file(path, self.limits.max_file_mb)
        warnings = [check.warning] if check.warning else []
        src = str(path)
        if check.file_type not in BINARY_TYPES:
            check_text_size(path, check.size, self.limits)
        check_container(path, check.file_type, self.limits)
        try:
            if check.file_type == "pdf":
                elements, w = self._parse_pdf(path)
                warnings += w
            elif check.file_type == "image":
                elements = self._ocr_image(path)
            else:
                elements = self._partition(path, check.file_type)
        except IngestError:
            raise
        except FileNotFoundError as e:
            if "soffice" in str(e) or "libreoffice" in str(e).lower():
                raise IngestError(
                    src, f"legacy .{check.file_type} needs LibreOffice: apt-get install libreoffice-core, "
                    "or save it as .docx/.pptx"
                ) from e
            raise IngestError(src, f"cannot read file: {e}") from e
        except Exception as e:
            msg = " ".join(str(e).split())[:200] or type(e).__name__
            raise CorruptDocumentError(src, f"cannot parse as {check.file_type.upper()}: {msg}") from e

        base = {"source": src, "file_name": path.name, "file_type": check.file_type, **(meta or {})}
        docs = []
        for idx, (category, text, page, extra) in enumerate(elements):
            text = collapse_leaders(join_line_hyphens(repair_mojibake(text))).strip()
            if not text or category in _DROP_CATEGORIES:
                continue
            docs.append(Document(content=text, meta={**base, **extra, "category": category, "page_number": page,
                                                     "element_index": idx}))
        if not docs:
            hint = ("it has no text layer and OCR found no text" if check.file_type in ("pdf", "image")
                    else "it contains no extractable text")
            raise EmptyDocumentError(src, f"no text extracted: {hint}")
        return docs, warnings

    # --- PDF -------------------------------------------------------------------------------------
    def _password_for(self, path: Path) -> str | None:
        given = {**self.passwords, **(_RUN_PASSWORDS.get() or {})}
        for key in (str(path), path.name, "*"):
            if key in given:
                return given[key]
        return None

    def _open_pdf(self, path: Path) -> Any:
        import pypdfium2 as pdfium

        password = self._password_for(path)
        try:
            return pdfium.PdfDocument(str(path), password=password)
        except pdfium.PdfiumError as e:
            msg = str(e)
            if "password" in msg.lower():
                if password:
                    raise EncryptedDocumentError(str(path), "encrypted PDF: the given password is wrong") from e
                raise EncryptedDocumentError(
                    str(path), "encrypted PDF, password required (pass it with --password or passwords={...})"
                ) from e
            raise CorruptDocumentError(
                str(path), "corrupt or truncated PDF (no readable cross-reference table or trailer); "
                "re-download or repair it (e.g. `qpdf in.pdf out.pdf`)"
            ) from e

    def _parse_pdf(self, path: Path) -> tuple[list[tuple[str, str, int | None, dict]], list[str]]:
        pdf = self._open_pdf(path)
        warnings: list[str] = []
        try:
            n_pages = len(pdf)
            check_pages(path, n_pages, self.limits)
            if self.pdf_strategy == "unstructured":
                elements = self._partition(path, "pdf")
                pages_with_text = {p for _, _, p, _ in elements}
            else:
                elements = []
                pages_with_text = set()
                if self.pdf_strategy == "fast":
                    # one read of each page: its text lines (for the running headers, and its text when it holds
                    # no table) and its table blocks; paragraphs are made once every page is read
                    page_lines, page_tables = [], []
                    for i in range(n_pages):
                        page = pdf[i]
                        textpage = page.get_textpage()
                        page_lines.append(textpage.get_text_bounded().replace("\r\n", "\n").split("\n"))
                        page_tables.append(page_blocks(textpage, page.get_width()))
                        page.close()
                    running = running_lines(page_lines)
                    kept: set[str] = set()

                    def paragraphs(lines: list[str]) -> list[tuple[str, str]]:
                        return _paragraphs_from_lines(_without_running(lines, running, kept))

                    for i in range(n_pages):
                        blocks = page_tables[i]  # None: no table on the page, its text in reading order
                        paras = paragraphs(page_lines[i]) if blocks is None else elements_of(blocks, paragraphs)
                        if sum(len(t) for _, t in paras) >= 20:
                            pages_with_text.add(i + 1)
                            elements.extend((cat, t, i + 1, {}) for cat, t in paras)
            missing = [i + 1 for i in range(n_pages) if i + 1 not in pages_with_text]
            if missing:
                if self.ocr and shutil.which("tesseract"):
                    blank = 0
                    for p in missing:
                        page = pdf[p - 1]
                        w, h = page.get_size()
                        low = page.render(scale=render_scale(w, h, _BLANK_DPI, self.limits), grayscale=True)
                        if is_blank(low.to_pil()):
                            blank += 1
                            continue
                        img = page.render(scale=render_scale(w, h, _OCR_DPI, self.limits)).to_pil()
                        elements.extend((cat, t, p, {"ocr": True}) for cat, t in self._ocr_paragraphs(img))
                    elements.sort(key=lambda e: e[2] or 0)
                    if blank:
                        logger.info("%s: %d blank page(s) skipped before OCR", path, blank)
                elif self.ocr:
                    warnings.append(f"{len(missing)} page(s) have no text layer and tesseract is not installed "
                                    "(apt-get install tesseract-ocr): those pages were skipped")
                else:
                    warnings.append(f"{len(missing)} page(s) have no text layer; OCR is off (DOCRAG_OCR=1)")
        finally:
            pdf.close()
        return elements, warnings

    # --- OCR -------------------------------------------------------------------------------------
    def _ocr_paragraphs(self, image: Any) -> list[tuple[str, str]]:
        import pytesseract

        text = pytesseract.image_to_string(image, lang=self.ocr_languages)
        return _paragraphs_from_lines(text.split("\n"))

    def _ocr_image(self, path: Path) -> list[tuple[str, str, int | None, dict]]:
        if not self.ocr:
            raise IngestError(str(path), "image files need OCR, which is off (set DOCRAG_OCR=1)")
        if not shutil.which("tesseract"):
            raise IngestError(str(path), "image files need tesseract OCR: apt-get install tesseract-ocr")
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # our own pixel check runs on the header, before anything is decoded
        with Image.open(path) as img:
            check_image_pixels(path, img.width, img.height, self.limits)
            img.load()
            return [(cat, t, 1, {"ocr": True}) for cat, t in self._ocr_paragraphs(img.convert("RGB"))]

    # --- everything else ----------------------------------------------------------------------------
    def _partition(self, path: Path, file_type: str) -> list[tuple[str, str, int | None, dict]]:
        from unstructured.partition.auto import partition

        target = path
        tmp = None
        if path.suffix.lower().lstrip(".") != file_type and file_type not in ("txt", "image"):
            # content and extension disagree: give unstructured a correctly named link
            tmp = tempfile.mkdtemp(prefix="docrag-")
            target = Path(tmp) / f"{path.stem}.{file_type}"
            os.symlink(path.resolve(), target)
        try:
            kwargs: dict[str, Any] = {"languages": ["eng"]}
            if file_type == "pdf":
                kwargs["strategy"] = "fast"
            if file_type in ("eml", "msg"):
                kwargs["process_attachments"] = True
            els = partition(filename=str(target), **kwargs)
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        out = []
        # a sheet of tables alone is named by its sheet name (the tables' caption, ingest.chunk); a sheet with
        # titles of its own is not: names like "OS-Rev.and results 30 06 2023" misled the reader there
        titled = {getattr(el.metadata, "page_name", None) for el in els if el.category == "Title"}
        for el in els:
            md = el.metadata
            text = el.text or ""
            extra: dict[str, Any] = {}
            if el.category == "Table" and getattr(md, "text_as_html", None):
                text = _html_table_to_text(md.text_as_html) or text
            depth = getattr(md, "category_depth", None)
            if depth is not None:
                extra["category_depth"] = depth
            att = getattr(md, "attached_to_filename", None)
            if att:
                extra["attachment"] = att
            sheet = getattr(md, "page_name", None)
            if sheet and sheet not in titled and not _DEFAULT_SHEET.match(sheet):
                extra["sheet"] = " ".join(sheet.split())[:100]
            out.append((el.category, text, getattr(md, "page_number", None), extra))
        if file_type in ("eml", "msg") and els:
            out = _mail_header(els) + out
        return out


def _mail_header(els: list) -> list[tuple[str, str, int | None, dict]]:
    """An e-mail's subject (a title) and one sentence naming its sender, recipients and date, which unstructured
    keeps in metadata only: "Who sent the memo?" and "When was it sent?" need them in the text. (A sentence, not
    ``From:`` lines: the reader found the sender of "From: ..." for "Who sent ...?" at p 0.13, of the sentence at
    0.61.)"""
    from datetime import datetime

    md = next((e.metadata for e in els if not getattr(e.metadata, "attached_to_filename", None)), els[0].metadata)

    def names(value: Any) -> str:
        return ", ".join(" ".join(str(v).replace('"', "").split()) for v in (value or []) if str(v).strip())[:300]

    sender, to, cc = names(getattr(md, "sent_from", None)), names(getattr(md, "sent_to", None)), \
        names(getattr(md, "cc_recipient", None))
    when = ""
    if getattr(md, "last_modified", None):
        try:
            d = datetime.fromisoformat(str(md.last_modified))
        except ValueError:
            d = None
        # a Date header carries its zone; without one unstructured gives the file's mtime (naive), not a date sent
        if d is not None and d.tzinfo is not None:
            when = f"{d.day} {d:%B %Y} at {d:%H:%M} ({d:%z})"
    parts = [p for p in (f"from {sender}" if sender else "", f"to {to}" if to else "",
                         f"copied to {cc}" if cc else "", f"sent on {when}" if when else "") if p]
    out: list[tuple[str, str, int | None, dict]] = []
    subject = " ".join(str(getattr(md, "subject", "") or "").split())[:300]
    if subject:
        out.append(("Title", subject, None, {"category_depth": 0}))
    if parts:
        out.append(("NarrativeText", "E-mail " + ", ".join(parts) + ".", None, {}))
    return out
