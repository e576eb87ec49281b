"""``make run``: hold the home's embedded store and serve the CLI from this process, then run the Streamlit app
in it (``python -m ui.run [streamlit run options]``).

Streamlit runs ``ui/app.py`` only when a browser session opens; started this way the app owns the store from
the start, like ``docrag serve``: :func:`rag.server.owner.hold_in_process` opens the home's collection, serves
it over HTTP on a free local port and writes ``<home>/qdrant/owner.json``, so ``docrag ingest|list|ask`` from
another terminal go through the app (the pages use the same ``DocRAG`` objects). The owner file is removed
when the app exits. ``streamlit run ui/app.py`` works too: the store is then held from the first session on.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "ui" / "app.py"


def main(argv: list[str] | None = None) -> int:
    import ingest.offline  # noqa: F401 - telemetry off before Streamlit and the libraries load

    # isort: split
    from streamlit.web import cli as streamlit_cli

    from rag.config import Settings
    from rag.errors import DocragError
    from rag.server import owner
    from ui.common import APP_OWNER, home

    try:
        owner.hold_in_process(Settings.load(home=home()), by=APP_OWNER)
    except DocragError as e:  # e.g. `docrag serve` holds it: the pages say so and retry on use
        logging.getLogger(__name__).warning("docrag app: %s", e)
    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    return streamlit_cli.main(prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main())
