"""docrag's ingestion stages: file checks, bounded parsing (worker pool), chunking, sparse vectors, store."""

import ingest.offline  # noqa: F401 - telemetry off before Haystack or unstructured is imported
