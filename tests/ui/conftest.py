"""Fixtures for the app's tests: a tmp docrag home per test module, ingested once, shared with AppTest.

The app caches ONE ``DocRAG`` per home (``ui.common.get_rag``); the fixtures ingest through that same
cached object, so AppTest runs in this process reuse it (an embedded store folder opens once per process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from uitest import app_env


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory: pytest.TempPathFactory, docs_dir: Path) -> Iterator[Path]:
    """A home with fake-memo.pdf and handbook-1p.docx ingested through the app's cached DocRAG."""
    from ui.common import get_rag

    home = tmp_path_factory.mktemp("ui-home").resolve()
    with pytest.MonkeyPatch.context() as mp:
        app_env(mp, home)
        d = get_rag(str(home))
        report = d.ingest([docs_dir / "fake-memo.pdf", docs_dir / "handbook-1p.docx"])
    assert not report.failed, report.failed
    yield home
    d.close()
    get_rag.clear()
