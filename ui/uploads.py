"""Upload handling for the app: sanitise names, refuse what docrag cannot take, save under ``<home>/uploads/``.

Plain functions (no Streamlit) so that they are tested directly; the upload page only calls them.

```python
name = sanitize_filename("../../etc/passwd.pdf")      # "passwd.pdf"
problem = validate(name, size=len(data), max_mb=50)     # None, or a message for the user
path = save(name, data, home / "uploads")               # <home>/uploads/passwd.pdf, never outside
```
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path

from ingest.filetypes import SUPPORTED_EXTENSIONS

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ()+,]+", re.UNICODE)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class UploadError(ValueError):
    """An upload that cannot be saved; the message is written for the user."""


def sanitize_filename(name: str) -> str:
    """A safe, flat file name from a browser-supplied one: no folders, no traversal, no control characters.

    Keeps the extension (lower-cased), so the type check and the parser still see it.

    :param name: the name as the browser sent it (may hold ``/``, ``\\``, ``..``, NUL, odd Unicode).
    :returns: a non-empty name with only letters, digits and ``._-()+,`` and spaces, at most 120 characters.
    """
    name = unicodedata.normalize("NFKC", str(name or ""))
    name = name.replace("\\", "/").split("/")[-1]  # drop any folder part, Windows or POSIX
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control/format chars, NUL
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")  # no leading dots (hidden files, "..") or trailing dots
    stem, ext = os.path.splitext(name)
    stem, ext = stem.strip(" ._") or "upload", ext.lower()
    if stem.lower() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    ext = ext[:16]
    return stem[: MAX_NAME_CHARS - len(ext)] + ext


def validate(name: str, size: int, max_mb: float) -> str | None:
    """Why an upload is refused, or None when it may be saved.

    :param name: the sanitised file name.
    :param size: its size in bytes.
    :param max_mb: the upload limit (``Settings.max_upload_mb``).
    :returns: a message for the user, or None.
    """
    ext = Path(name).suffix.lower()
    if not ext:
        return "has no file extension; rename it to the right type (e.g. .pdf, .docx, .txt)"
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        return f"type {ext} is not supported (supported: {shown})"
    if size <= 0:
        return "is empty (0 bytes)"
    if size > max_mb * 1024 * 1024:
        return f"is {size / 1024 / 1024:.1f} MB, over the {max_mb:g} MB upload limit (DOCRAG_MAX_UPLOAD_MB)"
    return None


def save(name: str, data: bytes, folder: str | Path) -> Path:
    """Write ``data`` as ``folder/<sanitised name>`` atomically and return the path.

    The name is sanitised again here, and the final path is checked to be directly inside ``folder``, so
    no caller can write elsewhere. An existing file of the same name is replaced (a newer upload of the
    same document replaces the stored version when it is ingested).

    :raises UploadError: when the path would leave ``folder`` (cannot happen after sanitising; defence
        in depth).
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    safe = sanitize_filename(name)
    target = (folder / safe).resolve()
    if target.parent != folder:
        raise UploadError(f"refused to write {name!r} outside {folder}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
