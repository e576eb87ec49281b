"""Constants and helpers shared by the app's tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "ui" / "app.py"
# small generations keep the real SmolLM2 answers quick on CPU
TEST_ENV = {"DOCRAG_MAX_TOKENS": "48", "DOCRAG_TOP_K": "3"}
TIMEOUT = 180


def app_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for key, value in {**TEST_ENV, "DOCRAG_HOME": str(home)}.items():
        monkeypatch.setenv(key, value)
