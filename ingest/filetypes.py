"""Find a file's real type from its content, and refuse what cannot be read, with a reason and a fix.

Checks run before any parser: missing, empty, oversize, encrypted (PDF user password, OLE-encrypted Office),
unsupported. The sniffed type wins over the extension (a DOCX named ``.pdf`` is parsed as DOCX, with a
warning).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import EmptyDocumentError, EncryptedDocumentError, IngestError, UnsupportedFileError
from ingest.limits import raise_hint

# extension -> canonical type
EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf", ".docx": "docx", ".doc": "doc", ".pptx": "pptx", ".ppt": "ppt", ".xlsx": "xlsx",
    ".xls": "xls", ".csv": "csv", ".tsv": "tsv", ".html": "html", ".htm": "html", ".xhtml": "html",
    ".md": "md", ".markdown": "md", ".txt": "txt", ".text": "txt", ".log": "txt", ".eml": "eml",
    ".msg": "msg", ".epub": "epub", ".rtf": "rtf", ".odt": "odt", ".xml": "xml", ".json": "json",
    ".rst": "rst", ".org": "org", ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image",
    ".tiff": "image", ".bmp": "image", ".gif": "image", ".webp": "image",
}
SUPPORTED_EXTENSIONS = frozenset(EXTENSIONS)
BINARY_TYPES = frozenset({"pdf", "docx", "doc", "pptx", "ppt", "xlsx", "xls", "msg", "epub", "odt", "image"})
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class FileCheck:
    """Result of inspecting one file: the type to parse it as and any warning for the user."""

    path: Path
    file_type: str
    size: int
    warning: str | None = None


def _zip_type(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "mimetype" in names:
                mt = z.read("mimetype").decode("ascii", "ignore").strip()
                if mt == "application/epub+zip":
                    return "epub"
                if mt == "application/vnd.oasis.opendocument.text":
                    return "odt"
    except (zipfile.BadZipFile, OSError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return "zip"


def _ole_type(path: Path) -> str:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(s) for s in ole.listdir(streams=True, storages=True)}
    except OSError:
        return "ole-corrupt"
    if "EncryptedPackage" in streams or "EncryptionInfo" in streams:
        return "office-encrypted"
    if "WordDocument" in streams:
        return "doc"
    if "Workbook" in streams or "Book" in streams:
        return "xls"
    if "PowerPoint Document" in streams:
        return "ppt"
    if any(s.startswith("__substg1.0_") for s in streams):
        return "msg"
    return "ole"


def sniff(path: Path) -> str | None:
    """The type the content says, or None when the content is not a known binary format (text-like)."""
    with open(path, "rb") as f:
        head = f.read(2048)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(path)
    if head.startswith(OLE_MAGIC):
        return _ole_type(path)
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return "image"
    if head.lstrip().startswith(b"{\\rtf"):
        return "rtf"
    return None


def check_file(path: Path, max_file_mb: float) -> FileCheck:
    """Inspect ``path``; raise an :class:`IngestError` subclass when it cannot be ingested."""
    src = str(path)
    if not path.is_file():
        raise IngestError(src, "file not found (check the path)")
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocumentError(src, "empty file (0 bytes): nothing to ingest; re-export or re-download it")
    if size > max_file_mb * 1024 * 1024:
        raise IngestError(
            src, f"file is {size / 1048576:.1f} MB, over the {max_file_mb:g} MB limit {raise_hint('max_file_mb')}"
        )
    ext = path.suffix.lower()
    by_ext = EXTENSIONS.get(ext)
    sniffed = sniff(path)
    if sniffed == "office-encrypted":
        raise EncryptedDocumentError(
            src, "encrypted Office file, password required (remove the password in Office and re-save)"
        )
    if sniffed in ("zip", "ole", "ole-corrupt"):
        if by_ext in ("docx", "pptx", "xlsx", "epub", "odt", "doc", "xls", "ppt", "msg"):
            raise IngestError(src, f"corrupt {by_ext.upper()} file (its container cannot be read); re-save it")
        raise UnsupportedFileError(src, f"unsupported archive/container type ({sniffed}); extract it first")
    if sniffed is not None:
        warning = None
        if by_ext is not None and by_ext != sniffed:
            warning = f"content is {sniffed.upper()}, not {ext or 'no extension'}: parsed as {sniffed.upper()}"
        return FileCheck(path, sniffed, size, warning)
    if by_ext is None:
        raise UnsupportedFileError(
            src,
            f"unsupported file type {ext or '(no extension)'}; supported: "
            + " ".join(sorted(SUPPORTED_EXTENSIONS)),
        )
    if by_ext in BINARY_TYPES:
        raise IngestError(src, f"not a valid {by_ext.upper()} file (content does not match); corrupt or mislabelled")
    return FileCheck(path, by_ext, size)
