"""``docrag serve``: the HTTP API (FastAPI + uvicorn) over :class:`rag.api.DocRAG`.

The app itself lives in :mod:`rag.server` (routers, services, keys, limits, cache); this module parses the
command line and runs uvicorn::

    DOCRAG_API_KEYS="team-a:$(openssl rand -hex 24)" docrag serve --host 127.0.0.1 --port 8000
    curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8000/documents

OpenAPI docs are at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rag.config import Settings
from rag.errors import DocragError
from rag.server import create_app
from rag.server.keys import KeyRing, hash_key

__all__ = ["build_parser", "create_app", "main"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docrag serve", description="Serve the docrag HTTP API.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--home", default=None, help="docrag home (default DOCRAG_HOME or .docrag)")
    p.add_argument("--keys-file", default=None, help="API keys file (default DOCRAG_API_KEYS_FILE)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--hash-key", metavar="KEY", default=None,
                   help="print the sha256 form of KEY for a keys file (NAME:sha256:HEX) and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``docrag serve``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.hash_key is not None:
        print(hash_key(args.hash_key))
        return 0
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.load(home=args.home, api_keys_file=args.keys_file)
        keys = KeyRing.from_settings(settings.api_keys, settings.api_keys_file, settings.collection)
    except DocragError as e:
        print(f"docrag serve: {e}", file=sys.stderr)
        return 2
    if not len(keys):
        print("docrag serve: no API keys configured; set DOCRAG_API_KEYS=name:key[,...] or "
              "DOCRAG_API_KEYS_FILE (see `docrag serve --help`)", file=sys.stderr)
        return 2
    import uvicorn

    from rag.server import owner
    from rag.server.collection_service import CollectionRegistry

    registry = CollectionRegistry(settings)
    try:  # hold the home's own collection now: the CLI and app then find this process and go through it
        registry.get(settings.collection).rag.library  # noqa: B018
    except DocragError as e:
        print(f"docrag serve: {e}", file=sys.stderr)
        return 1
    if settings.embedded:
        local = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        owner.hold(settings, keys, f"http://{local}:{args.port}")
    app = create_app(settings, registry=registry, keys=keys)
    logger.info("serving %d key(s) on http://%s:%d (docs at /docs); store: %s", len(keys), args.host, args.port,
                settings.qdrant_url or f"embedded at {settings.store_path}")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    finally:
        registry.close()
        owner.clear(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
