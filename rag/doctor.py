"""`python -m rag.doctor`: check that every default model and system tool is available offline."""

from __future__ import annotations

import shutil
import sys

from rag import models


def check() -> list[tuple[str, bool, str]]:
    rows: list[tuple[str, bool, str]] = []
    for name, fn in (("embedder", models.resolve_embedder), ("generator", models.resolve_generator),
                     ("spacy en_core_web_sm", models.resolve_spacy)):
        try:
            rows.append((name, True, str(fn())))
        except Exception as e:  # noqa: BLE001
            rows.append((name, False, str(e)))
    rr = models.resolve_reranker()
    rows.append(("reranker", True, str(rr) if rr else "none shipped (retrieval runs without reranking)"))
    for tool, pkg in (("tesseract", "tesseract-ocr"), ("soffice", "libreoffice-core (optional: .doc/.ppt)")):
        path = shutil.which(tool)
        rows.append((tool, bool(path) or "optional" in pkg, path or f"missing: apt-get install {pkg}"))
    for mod in ("llama_cpp", "unstructured_inference", "qdrant_client"):
        try:
            __import__(mod)
            rows.append((mod, True, "importable"))
        except Exception as e:  # noqa: BLE001
            rows.append((mod, False, f"import failed: {e}"))
    return rows


def main() -> int:
    rows = check()
    for name, ok, detail in rows:
        print(f"[doctor] {'ok ' if ok else 'ERR'} {name}: {detail}")
    return 0 if all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
