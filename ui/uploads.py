"""Upload handling for the app: the one implementation is :mod:`rag.uploads` (shared with the service).

```python
name = sanitize_filename("../../etc/passwd.pdf")      # "passwd.pdf"
problem = validate(name, size=len(data), max_mb=50)     # None, or a message for the user
folder = UploadFolder(home / "uploads", quota_mb=2048)  # staged uploads, quota, rejected ones removed
```
"""

from __future__ import annotations

from rag.uploads import (
    MAX_NAME_CHARS,
    StagedUpload,
    UploadError,
    UploadFolder,
    sanitize_filename,
    save,
    validate,
)

__all__ = ["MAX_NAME_CHARS", "StagedUpload", "UploadError", "UploadFolder", "sanitize_filename", "save", "validate"]
