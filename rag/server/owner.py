"""Who owns an embedded store: the process holding it serves HTTP so that other processes go through it.

Qdrant Edge lets one process open a shard. While ``docrag serve`` or the Streamlit app holds a home, it writes
``<store>/owner.json`` (pid, URL, who, a per-run local key for the home's default collection; mode 0600), and
the CLI, finding the store locked, sends its ``ingest``/``list``/``ask``/``search``/``show``/``delete`` there
(:func:`remote`) instead of failing. ``docrag serve`` runs the service in the foreground; the app runs the same
service (same routers, same :class:`CollectionRegistry`) in a thread on a free local port
(:func:`hold_in_process`), and its pages use that registry's ``DocRAG`` objects, so both see one library.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings

if TYPE_CHECKING:
    from rag.server.collection_service import CollectionRegistry
    from rag.server.keys import KeyRing

logger = logging.getLogger(__name__)

OWNER_FILE = "owner.json"


def owner_path(settings: Settings) -> Path:
    return settings.store_path / OWNER_FILE


def new_local_key() -> str:
    return "local-" + secrets.token_hex(24)


def publish(settings: Settings, url: str, by: str = "docrag serve", key: str | None = None) -> str:
    """Write the owner file for this process (with ``key``, else a new local key); returns the key."""
    key = key or new_local_key()
    p = owner_path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "url": url, "key": key, "collection": settings.collection, "by": by}, f)
    tmp.replace(p)
    return key


def hold(settings: Settings, keys: KeyRing, url: str, by: str = "docrag serve") -> None:
    """Publish this process as the store's owner and let the local key it writes reach the home's collection."""
    keys.add_local(publish(settings, url, by), settings.collection)


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
    by = owner.get("by", "docrag serve")
    print(f"docrag: the store is held by `{by}` (pid {owner['pid']}); going through {owner['url']}",
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
        print(f"docrag {cmd}: the store is held by `{by}` at {owner['url']}; stop it first",
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


class BackgroundService:
    """The HTTP service over ``registry`` in a daemon thread on a free local port, published as the owner.

    :param settings: the home's settings (its store is the one held).
    :param registry: the collections this process already uses (the app's pages use the same objects).
    :param by: who holds the store, for the CLI's message.
    """

    def __init__(self, settings: Settings, registry: CollectionRegistry, by: str) -> None:
        self.settings = settings
        self.registry = registry
        self.by = by
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Bind 127.0.0.1 on a free port, serve, write the owner file; returns the URL."""
        import uvicorn

        from rag.server.app import create_app
        from rag.server.keys import KeyRing

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        key = new_local_key()
        keys = KeyRing([], self.settings.collection)  # only the local key of the owner file
        keys.add_local(key, self.settings.collection)
        app = create_app(self.settings, registry=self.registry, keys=keys)
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="docrag-owner-http")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._server.started:
            raise RuntimeError(f"the docrag HTTP service did not start on {self.url}")
        publish(self.settings, self.url, self.by, key)  # only once it answers
        atexit.register(self._at_exit)
        logger.info("%s holds %s and serves the CLI on %s", self.by, self.settings.store_path, self.url)
        return self.url

    def _at_exit(self) -> None:
        logging.getLogger("uvicorn.error").disabled = True  # its "Finished server process" line may meet closed streams
        self.stop()

    def stop(self) -> None:
        """Remove the owner file and stop serving (the registry stays open: its owner closes it)."""
        clear(self.settings)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


_HELD: dict[str, CollectionRegistry] = {}
_HELD_LOCK = threading.Lock()


def hold_in_process(settings: Settings, by: str) -> CollectionRegistry:
    """This process's one :class:`CollectionRegistry` of the home; for an embedded store, the first call also
    opens the home's collection and serves it over HTTP (:class:`BackgroundService`) so that the CLI goes
    through this process. A Qdrant server needs no owner: then it is only the registry."""
    from rag.server.collection_service import CollectionRegistry

    home = str(settings.home.expanduser().resolve())
    with _HELD_LOCK:
        registry = _HELD.get(home)
        if registry is None:
            registry = CollectionRegistry(settings)
            if settings.embedded:
                registry.get(settings.collection).rag.library  # noqa: B018 - hold the store before publishing
                BackgroundService(settings, registry, by).start()
            _HELD[home] = registry
        return registry
