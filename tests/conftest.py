"""Shared fixtures: the data folder, and one ingested store reused by read-only tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import ingest.offline  # noqa: F401 - telemetry off before any test module imports Haystack or unstructured
from evals.datasets import data_dir as find_data_dir

REPO = Path(__file__).resolve().parent.parent
DATA = find_data_dir()
DOCS = DATA / "docs"
BAD = DOCS / "bad"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"test data folder {DATA} is absent (set DOCRAG_DATA)")
    return DATA


@pytest.fixture
def one_torch_thread():
    """The tiny models do tiny matrix products: extra torch threads only add sync cost (and crawl on busy cores).
    A test module takes it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def docs_dir(data_dir: Path) -> Path:
    return data_dir / "docs"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's DOCRAG_* settings or a docrag.toml in the working directory."""
    for key in list(os.environ):
        if key.startswith("DOCRAG_") and key not in ("DOCRAG_DATA", "DOCRAG_MODELS_DIR"):
            monkeypatch.delenv(key, raising=False)
