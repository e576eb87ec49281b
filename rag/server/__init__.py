"""docrag's HTTP service (FastAPI), laid out PrivateGPT-style.

``<feature>_router.py`` files only authenticate, call :class:`~rag.server.collection_service.CollectionService`
and map its result; the service owns one :class:`~rag.api.DocRAG` per collection. ``create_app`` builds the
app from a :class:`~rag.config.Settings` (and, in tests, an injected registry)::

    from rag.server import create_app
    app = create_app(Settings.load(api_keys="team-a:s3cret"))
"""

from __future__ import annotations

from rag.server.app import create_app

__all__ = ["create_app"]
