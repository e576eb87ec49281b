"""The parse budget: limits checked before (and while) a file is parsed, each refused with one line.

Every refusal names the file (in :attr:`IngestError.source`), the limit that was hit and the setting that
raises it, e.g. ``word/document.xml and 3 other members inflate to 2048 MB, over the 1024 MB limit for
zip containers (raise DOCRAG_MAX_ZIP_MB)``.

The static checks here run inside :meth:`ingest.parse.UnstructuredFileParser.parse_file`; the wall-clock
limit and the memory ceiling are enforced from outside, by :mod:`ingest.pool`, which kills the worker.

```python
limits = ParseLimits(max_zip_mb=50, max_pages=500)
check_container(Path("bomb.docx"), "docx", limits)   # raises LimitExceededError
```
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ingest.errors import IngestError

# limit field -> the setting (environment variable) that raises it
SETTING_OF: dict[str, str] = {
    "max_file_mb": "DOCRAG_MAX_FILE_MB",
    "max_text_mb": "DOCRAG_MAX_TEXT_MB",
    "max_zip_mb": "DOCRAG_MAX_ZIP_MB",
    "max_zip_members": "DOCRAG_MAX_ZIP_MEMBERS",
    "max_pages": "DOCRAG_MAX_PAGES",
    "max_image_mpix": "DOCRAG_MAX_IMAGE_MPIX",
    "timeout_s": "DOCRAG_PARSE_TIMEOUT_S",
    "memory_mb": "DOCRAG_PARSE_MEMORY_MB",
}
ZIP_TYPES = frozenset({"docx", "xlsx", "pptx", "odt", "epub"})
# members whose count is the document's page count, by container type
_PAGE_MEMBERS = {"pptx": ("ppt/slides/slide", ".xml"), "xlsx": ("xl/worksheets/sheet", ".xml")}


def raise_hint(limit: str) -> str:
    """``(raise DOCRAG_...)``: the setting that lifts the parse budget's ``limit``, as every over-limit line ends."""
    return f"(raise {SETTING_OF[limit]})"


class LimitExceededError(IngestError):
    """A file is over one of the parse budget's limits. ``limit`` is the :class:`ParseLimits` field."""

    def __init__(self, source: str, what: str, limit: str) -> None:
        self.limit = limit
        super().__init__(source, f"{what} {raise_hint(limit)}")


def over_budget(limit: str, value: float) -> str:
    """The one line a worker's run-time limit reports: ``parsing needed over 3072 MB of memory (raise
    DOCRAG_PARSE_MEMORY_MB)`` / ``parsing took over 300 s (raise DOCRAG_PARSE_TIMEOUT_S)``."""
    what = {"memory_mb": f"parsing needed over {value:g} MB of memory",
            "timeout_s": f"parsing took over {value:g} s"}[limit]
    return f"{what} {raise_hint(limit)}"


@dataclass(frozen=True)
class ParseLimits:
    """Plain-value parse budget for one file (built from ``rag.config.Settings`` by the caller).

    :param max_file_mb: size of the file on disk.
    :param max_text_mb: size of a text-like file (txt, md, csv, json, xml, html, ...).
    :param max_zip_mb: total uncompressed size of a zip container (DOCX, XLSX, PPTX, ODT, EPUB).
    :param max_zip_members: member count of a zip container.
    :param max_pages: pages of a PDF, slides of a PPTX, sheets of an XLSX.
    :param max_image_mpix: megapixels of an image file; PDF pages are rendered for OCR at a lower dpi
        when 300 dpi would exceed it.
    :param timeout_s: wall-clock seconds one file may take in a parse worker.
    :param memory_mb: resident memory ceiling of a parse worker.
    """

    max_file_mb: float = 100.0
    max_text_mb: float = 20.0
    max_zip_mb: float = 1024.0
    max_zip_members: int = 10_000
    max_pages: int = 5_000
    max_image_mpix: float = 100.0
    timeout_s: float = 300.0
    memory_mb: int = 3072

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be > 0, not {getattr(self, f.name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ParseLimits:
        return cls(**(data or {}))


def check_text_size(path: Path, size: int, limits: ParseLimits) -> None:
    """Refuse a text-like file over ``max_text_mb`` (a 50 MB one-line text stalls the partitioner)."""
    if size > limits.max_text_mb * 1048576:
        raise LimitExceededError(str(path), f"text file is {size / 1048576:.1f} MB, over the "
                                 f"{limits.max_text_mb:g} MB limit for text", "max_text_mb")


def check_container(path: Path, file_type: str, limits: ParseLimits) -> None:
    """Refuse a zip container (zip bomb) on member count, uncompressed size or page count, before parsing.

    Python's ``zipfile`` never inflates a member past its declared size, so the declared sizes bound what
    the parsers can read; the worker's memory ceiling covers the rest.
    """
    if file_type not in ZIP_TYPES:
        return
    src = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # check_file has already said what is wrong with the container
    if len(infos) > limits.max_zip_members:
        raise LimitExceededError(src, f"{file_type.upper()} container has {len(infos)} members, over the "
                                 f"{limits.max_zip_members} limit", "max_zip_members")
    total = sum(i.file_size for i in infos)
    if total > limits.max_zip_mb * 1048576:
        biggest = max(infos, key=lambda i: i.file_size)
        raise LimitExceededError(src, f"{file_type.upper()} inflates to {total / 1048576:.0f} MB "
                                 f"({biggest.filename}: {biggest.file_size / 1048576:.0f} MB), over the "
                                 f"{limits.max_zip_mb:g} MB limit for zip containers", "max_zip_mb")
    prefix_suffix = _PAGE_MEMBERS.get(file_type)
    if prefix_suffix:
        pages = sum(i.filename.startswith(prefix_suffix[0]) and i.filename.endswith(prefix_suffix[1])
                    for i in infos)
        check_pages(path, pages, limits)


def check_pages(path: Path, pages: int, limits: ParseLimits) -> None:
    if pages > limits.max_pages:
        raise LimitExceededError(str(path), f"{pages} pages, over the {limits.max_pages} page limit",
                                 "max_pages")


def check_image_pixels(path: Path, width: int, height: int, limits: ParseLimits) -> None:
    """Refuse an image (pixel bomb) from its header, before it is decoded."""
    mpix = width * height / 1e6
    if mpix > limits.max_image_mpix:
        raise LimitExceededError(str(path), f"image is {width}x{height} ({mpix:.0f} megapixels), over the "
                                 f"{limits.max_image_mpix:g} megapixel limit", "max_image_mpix")


def render_scale(width_pt: float, height_pt: float, dpi: int, limits: ParseLimits) -> float:
    """The scale (pixels per point) to render a PDF page at ``dpi``, lowered to stay within the pixel limit."""
    scale = dpi / 72
    pixels = width_pt * height_pt * scale * scale
    cap = limits.max_image_mpix * 1e6
    if pixels > cap:
        scale *= (cap / pixels) ** 0.5
    return scale
