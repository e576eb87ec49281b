"""Nothing leaves the machine: every library's telemetry and hub access is switched off, once, on import.

Imported first by ``ingest/__init__`` and ``rag/__init__`` (ingest is the lowest layer and never imports
rag), so the CLI, the Python API, the app, the service and the parse workers all run with it before Haystack,
unstructured, Hugging Face, Streamlit or Qdrant is imported (Haystack reads ``HAYSTACK_TELEMETRY_ENABLED`` when it is imported). Values already set in the
environment win (``setdefault``); ``DOCRAG_ALLOW_DOWNLOADS=1`` lets the Hugging Face hub download models.
"""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "HAYSTACK_TELEMETRY_ENABLED": "False",  # Haystack's PostHog usage events
    "SCARF_NO_ANALYTICS": "true",  # unstructured's Scarf pixel
    "DO_NOT_TRACK": "1",  # unstructured and others honour it
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",  # Streamlit's browser-side usage stats
    "QDRANT__TELEMETRY_DISABLED": "true",  # a Qdrant server started from this environment
    "ANONYMIZED_TELEMETRY": "False",
}
HUB_OFFLINE_ENV: dict[str, str] = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def apply() -> None:
    """Set the variables above where they are unset (idempotent)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if os.environ.get("DOCRAG_ALLOW_DOWNLOADS") != "1":
        for key, value in HUB_OFFLINE_ENV.items():
            os.environ.setdefault(key, value)


apply()
