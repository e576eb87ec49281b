"""Constants and the test settings of the service tests (imported by conftest and the test modules)."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings

KEY_A, KEY_B, KEY_C = "key-alpha-0123456789", "key-beta-9876543210", "key-gamma-5550123456"
AUTH_A = {"Authorization": f"Bearer {KEY_A}"}
AUTH_B = {"Authorization": f"Bearer {KEY_B}"}
AUTH_C = {"Authorization": f"Bearer {KEY_C}"}  # the upload tests' own collection

BRIDGE = """The Zephyr Bridge

The Zephyr Bridge is a stone arch bridge over the river Wend in the town of Brackenford.
It was designed by the engineer Margaret Hollis and opened in 1887. The bridge has seven arches and is
212 metres long. Its keystones were cut from granite quarried at Tolley Hill.

In 1952 the Zephyr Bridge was widened to carry motor traffic. A plaque on the east parapet names the
masons who built it. The town council of Brackenford maintains the bridge today.
"""

LIGHTHOUSE = """The Quillon Lighthouse

The Quillon Lighthouse stands on Gannet Point. It was first lit in 1903 and its lamp is visible for
twenty-two nautical miles. The keeper's cottage is now a small museum about shipwrecks of the coast.
"""


def service_settings(home: Path, **overrides: object) -> Settings:
    """The test profile for the service: small chunks, short answers, no reranker or NER (fast on 2 cores)."""
    values: dict[str, object] = {
        "home": home, "api_keys": f"alpha:{KEY_A},beta:{KEY_B},gamma:{KEY_C}", "chunk_size": 60, "chunk_overlap": 10,
        "top_k": 2, "retrieve_k": 4, "max_tokens": 24, "n_ctx": 1024, "rerank": False, "extract_entities": False,
        "device": "cpu", "rate_limit_per_minute": 100_000, "max_upload_mb": 1.0,
        "max_zip_mb": 16.0}
    values.update(overrides)
    return Settings(**values)
