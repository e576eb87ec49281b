"""Which files an ingest of some paths means: folders recurse, and never leave themselves.

A link inside a folder that points outside it (a file or a folder symlink, at any depth) is skipped and
reported, so that ingesting ``~/notes`` cannot read ``/etc/passwd`` through ``~/notes/x -> /etc/passwd``.
A path named directly is taken as given (the user named it).

```python
files, failures = expand_paths(["notes/", "extra.pdf"])
# failures: [{"source": "notes/x", "error": "skipped: a link to /etc/passwd, outside the folder notes"}]
```
"""

from __future__ import annotations

import os
from pathlib import Path


def _walk(root: Path) -> tuple[list[Path], list[dict[str, str]]]:
    real_root = root.resolve()
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in list(dirnames):
            link = here / d
            if link.is_symlink():
                dirnames.remove(d)
                target = link.resolve()
                if target.is_relative_to(real_root):
                    continue  # a link back into the folder: its files are reached the ordinary way
                skipped.append(_outside(link, target, root))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            f = here / name
            target = f.resolve()
            if f.is_symlink() and not target.is_relative_to(real_root):
                skipped.append(_outside(f, target, root))
            elif target.is_file():
                files.append(f)
    return files, skipped


def _outside(link: Path, target: Path, root: Path) -> dict[str, str]:
    return {"source": str(link), "error": f"skipped: a link to {target}, outside the folder {root} "
            "(ingest the target itself to include it)"}


def _bad_name(path: Path) -> dict[str, str] | None:
    """A failure for a file name that is not valid UTF-8 (it could not be stored or shown as text)."""
    try:
        os.fsencode(path.name).decode("utf-8")
    except UnicodeDecodeError:
        shown = os.fsencode(path.name).decode("utf-8", "replace")
        return {"source": os.fsencode(path).decode("utf-8", "replace"),
                "error": f"file name {shown!r} is not valid UTF-8; rename it (e.g. `convmv -f latin1 -t utf8`)"}
    return None


def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """Files to ingest, resolved and without repeats, and failures (missing paths, links out of a folder).

    Folders recurse; hidden files and folders (``.name``) are skipped; a file whose name is not valid UTF-8
    is reported (it could not be stored as text).
    """
    files: list[Path] = []
    failures: list[dict[str, str]] = []
    for p in (Path(os.path.expanduser(str(x))) for x in paths):
        if p.is_dir():
            found, skipped = _walk(p)
            files.extend(found)
            failures.extend(skipped)
        elif p.is_file():
            files.append(p)
        else:
            failures.append({"source": str(p), "error": "no such file or folder (check the path)"})
    seen: set[Path] = set()
    out = []
    for f in files:
        bad = _bad_name(f)
        if bad:
            failures.append(bad)
            continue
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out, failures
