"""Uploads, for the app and the service alike: one name sanitiser, one folder with a quota and no leftovers.

```python
folder = UploadFolder(home / "uploads", quota_mb=2048)
staged, refused = folder.stage([("../../etc/passwd.pdf", fileobj)], max_mb=50)
report = rag.ingest([s.path for s in staged])
folder.settle(staged, failed={f["source"] for f in report.failed})   # rejected uploads are removed
```

- A document is its name in the folder: uploading ``memo.pdf`` again updates it, and the staged upload says
  ``replaced`` when the content changed. Two files of one name in one batch (``a/x.txt``, ``b/x.txt``) get
  unique names (``x.txt``, ``x-2.txt``) instead of overwriting each other.
- An upload that the parser rejects is deleted again, and the file it would have replaced comes back, so the
  folder holds exactly the files of stored documents.
- The folder's total size is capped (``upload_quota_mb``); the refusal names the setting.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ingest.filetypes import SUPPORTED_EXTENSIONS

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ()+,]+", re.UNICODE)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}
_STAGING = ".incoming"
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()


class UploadError(ValueError):
    """An upload that cannot be saved; the message is written for the user."""


def sanitize_filename(name: str | bytes) -> str:
    """A safe, flat file name from a browser-supplied one: no folders, no traversal, no control characters.

    Keeps the extension (lower-cased) however long the name, so the type check and the parser still see it.
    Bytes and names that are not valid UTF-8 (surrogate escapes) are decoded with replacement characters.

    :param name: the name as the client sent it (may hold ``/``, ``\\``, ``..``, NUL, odd Unicode).
    :returns: a non-empty name with only letters, digits and ``._-()+,`` and spaces, at most 120 characters.
    """
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    name = str(name or "").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = unicodedata.normalize("NFKC", name)
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


def _inside(folder: Path, name: str) -> Path:
    target = (folder / name).resolve()
    if target.parent != folder:
        raise UploadError(f"refused to write {name!r} outside {folder}")
    return target


def save(name: str, data: bytes, folder: str | Path) -> Path:
    """Write ``data`` as ``folder/<sanitised name>`` atomically and return the path (same name: replaced).

    :raises UploadError: when the path would leave ``folder`` (cannot happen after sanitising; defence
        in depth).
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = _inside(folder, sanitize_filename(name))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@dataclass
class StagedUpload:
    """One upload moved into place: ``path`` is the document's source; ``replaced`` says an earlier upload
    of the same name with other content was replaced (kept aside until :meth:`UploadFolder.settle`)."""

    original_name: str
    name: str
    path: Path
    size: int
    replaced: bool = False
    backup: Path | None = None


def _unique(name: str, taken: set[str]) -> str:
    if name.lower() not in taken:
        return name
    stem, ext = os.path.splitext(name)
    i = 2
    while f"{stem}-{i}{ext}".lower() in taken:
        i += 1
    return f"{stem[: MAX_NAME_CHARS - len(ext) - 4]}-{i}{ext}"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class UploadFolder:
    """The upload folder of one tenant (service) or home (app), with its storage quota.

    :param folder: where uploads are kept (created on first use).
    :param quota_mb: the most all stored uploads may take together (``Settings.upload_quota_mb``).
    """

    def __init__(self, folder: str | Path, quota_mb: float) -> None:
        if quota_mb <= 0:
            raise ValueError(f"quota_mb must be > 0, not {quota_mb}")
        self.folder = Path(folder).expanduser().resolve()
        self.quota_mb = quota_mb
        with _FOLDER_LOCKS_GUARD:  # one batch at a time per folder (stage .. settle), across instances
            self.lock = _FOLDER_LOCKS.setdefault(self.folder, threading.Lock())

    def used_bytes(self) -> int:
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def stage(self, files: Iterable[tuple[str, IO[bytes] | bytes]], max_mb: float,
              ) -> tuple[list[StagedUpload], list[dict[str, str]]]:
        """Move uploads into the folder; returns the staged ones and refusals ``{"file_name", "error"}``.

        Call :meth:`settle` after ingesting them (holding :attr:`lock` from here to there).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / _STAGING
        staging.mkdir(exist_ok=True)
        staged: list[StagedUpload] = []
        refused: list[dict[str, str]] = []
        taken: set[str] = set()
        used = self.used_bytes()
        quota = self.quota_mb * 1048576
        for original, data in files:
            name = _unique(sanitize_filename(original), taken)
            fd, tmp_name = tempfile.mkstemp(dir=staging, suffix=".part")
            tmp = Path(tmp_name)
            size = 0
            limit = max_mb * 1048576
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                    size = len(data)
                else:
                    while size <= limit and (block := data.read(1 << 20)):
                        out.write(block)
                        size += len(block)
            problem = validate(name, size, max_mb)
            target = _inside(self.folder, name)
            old = target.stat().st_size if target.is_file() else 0
            if problem is None and used - old + size > quota:
                problem = (f"would take this key's stored uploads to {(used - old + size) / 1048576:.1f} MB, "
                           f"over the {self.quota_mb:g} MB quota (delete documents or raise "
                           "DOCRAG_UPLOAD_QUOTA_MB)")
            if problem is not None:
                tmp.unlink(missing_ok=True)
                refused.append({"file_name": str(original), "error": f"{name} {problem}"})
                continue
            taken.add(name.lower())
            up = StagedUpload(str(original), name, target, size)
            if old or target.exists():
                if _sha256(target) == _sha256(tmp):
                    tmp.unlink()
                    staged.append(up)
                    continue
                up.backup = Path(tempfile.mkstemp(dir=staging, suffix=".prev")[1])
                os.replace(target, up.backup)
                up.replaced = True
            os.replace(tmp, target)
            used += size - old
            staged.append(up)
        return staged, refused

    def settle(self, staged: list[StagedUpload], failed: set[str]) -> None:
        """After the ingest: drop rejected uploads (bringing back what they replaced) and the backups."""
        for up in staged:
            if str(up.path) in failed:
                up.path.unlink(missing_ok=True)
                if up.backup is not None:
                    os.replace(up.backup, up.path)
                up.replaced = False
            elif up.backup is not None:
                up.backup.unlink(missing_ok=True)
            up.backup = None
        shutil.rmtree(self.folder / _STAGING, ignore_errors=True)

    def remove(self, source: str | Path) -> bool:
        """Delete a stored upload (its document was deleted); False when ``source`` is not in this folder."""
        p = Path(source)
        if p.parent != self.folder or not p.is_file():
            return False
        p.unlink()
        return True
