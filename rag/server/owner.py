"""Who owns an embedded store: ``docrag serve`` publishes itself so that other processes go through it.

Qdrant Edge lets one process open a shard. While ``docrag serve`` holds a home, it writes
``<store>/owner.json`` (pid, URL, a per-run local key for the home's default collection; mode 0600), and the
CLI, finding the store locked, sends its ``ingest``/``list``/``ask``/``search``/``show``/``delete`` there
(:func:`remote`) instead of failing.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from rag.config import Settings

OWNER_FILE = "owner.json"


def owner_path(settings: Settings) -> Path:
    return settings.store_path / OWNER_FILE


def publish(settings: Settings, url: str) -> str:
    """Write the owner file for this process; returns the local key it holds."""
    key = "local-" + secrets.token_hex(24)
    p = owner_path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "url": url, "key": key, "collection": settings.collection}, f)
    tmp.replace(p)
    return key


def read(settings: Settings) -> dict[str, Any] | None:
    """The live owner of the home's store, or None (no file, or its process is gone)."""
    try:
        data = json.loads(owner_path(settings).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def clear(settings: Settings) -> None:
    """Remove this process's owner file (a stale one is harmless: :func:`read` checks the pid)."""
    p = owner_path(settings)
    try:
        if json.loads(p.read_text()).get("pid") == os.getpid():
            p.unlink()
    except (OSError, ValueError):
        pass


def remote(args: Any, owner: dict[str, Any]) -> int:
    """Run a CLI command through the owning service; same output as the local command (``--json`` too)."""
    import sys

    from rag.server.client import DocRAGClient

    c = DocRAGClient(owner["url"], key=owner["key"])
    print(f"docrag: the store is held by `docrag serve` (pid {owner['pid']}); going through {owner['url']}",
          file=sys.stderr)
    filters = {k: v for k, v in (("source", getattr(args, "source", None)), ("page", getattr(args, "page", None)),
                                 ("entity", getattr(args, "entity", None))) if v} or None
    cmd = args.command
    if cmd == "ingest":
        from rag.api import DocRAG

        files, _ = DocRAG.expand_paths(args.paths)
        out = c.ingest([str(f) for f in files], force=args.force)
        failed = out.get("failed") or []
    elif cmd == "list":
        out, failed = c.list_documents(), []
    elif cmd == "show":
        out, failed = c.show(args.source), []
    elif cmd == "delete":
        out, failed = c.delete(args.source), []
    elif cmd == "search":
        out, failed = c.search(args.query, top_k=args.top_k, rerank=not args.no_rerank, filters=filters), []
    elif cmd == "ask":
        out, failed = c.ask(args.question, top_k=args.top_k, rerank=not args.no_rerank, filters=filters), []
    else:
        print(f"docrag {cmd}: the store is held by `docrag serve` at {owner['url']}; stop it first",
              file=sys.stderr)
        return 1
    if getattr(args, "json", False) or cmd not in ("ask", "list"):
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    elif cmd == "ask":
        print(out["answer"])
        for cit in out.get("citations", []):
            print(f"  [{cit['ref']}] {cit['file_name']} p.{cit['page']}: \"{cit['quote']}\"")
    else:
        for d in out:
            print(f"{d['chunks']:6d} chunks {d['pages']:5d} pages  {d.get('file_type') or '?':5s} {d['source']}")
        print(f"{len(out)} documents")
    return 3 if failed else 0
