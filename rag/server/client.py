"""``DocRAGClient``: the HTTP service with the shape of :class:`rag.api.DocRAG`, returning the same dicts as
the ``to_dict()`` contracts. The Streamlit app (or any script) can use it instead of the in-process API::

    from rag.server.client import DocRAGClient
    c = DocRAGClient("http://127.0.0.1:8000", key="...")
    c.ingest(["memo.pdf"]); c.ask("Who signed the memo?")["answer"]
    for token in c.ask_stream("Who signed it?"): print(token, end="")
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import DocragError


class ServiceError(DocragError):
    """The service answered with an error status; ``status`` holds it (401, 404, 413, 429, ...)."""

    def __init__(self, status: int, detail: str, retry_after: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}: {detail}")


class DocRAGClient:
    """A thin client of ``docrag serve``.

    :param url: the service's base URL.
    :param key: an API key (sent as ``Authorization: Bearer``).
    :param timeout: seconds per request.
    :param client: an ``httpx.Client`` to use instead (e.g. FastAPI's ``TestClient``).
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", key: str = "", timeout: float = 300.0,
                 client: Any = None) -> None:
        import httpx

        self._http = client or httpx.Client(base_url=url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self._http.request(method, path, headers=self._headers, **kwargs)
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ServiceError(r.status_code, str(detail), r.headers.get("retry-after"))
        return r.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/whoami")

    def ingest(self, paths: list[str | Path], force: bool = False) -> dict[str, Any]:
        files = [Path(p) for p in paths]
        handles = [open(p, "rb") for p in files]  # noqa: SIM115 - closed below
        try:
            return self._call("POST", "/documents", params={"force": force},
                              files=[("files", (p.name, h)) for p, h in zip(files, handles, strict=True)])
        finally:
            for h in handles:
                h.close()

    def list_documents(self) -> list[dict[str, Any]]:
        return self._call("GET", "/documents")

    def show(self, source: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/documents/{source}")

    def delete(self, source: str) -> dict[str, Any]:
        return self._call("DELETE", f"/documents/{source}")

    def search(self, query: str, top_k: int | None = None, rerank: bool | None = None,
               filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._call("POST", "/search", json={"query": query, "top_k": top_k, "rerank": rerank,
                                                    "filters": filters})

    def ask(self, question: str, top_k: int | None = None, filters: dict[str, Any] | None = None,
            rerank: bool | None = None) -> dict[str, Any]:
        return self._call("POST", "/ask", json={"question": question, "top_k": top_k, "rerank": rerank,
                                                 "filters": filters})

    def ask_stream(self, question: str, top_k: int | None = None, filters: dict[str, Any] | None = None,
                   rerank: bool | None = None) -> Iterator[str]:
        """Yields answer tokens; the final answer dict is then in ``self.last_answer``."""
        self.last_answer: dict[str, Any] | None = None
        body = {"question": question, "top_k": top_k, "rerank": rerank, "filters": filters, "stream": True}
        with self._http.stream("POST", "/ask", headers=self._headers, json=body) as r:
            if r.status_code >= 400:
                r.read()
                raise ServiceError(r.status_code, r.text, r.headers.get("retry-after"))
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: "):])
                    if event == "token":
                        yield data["text"]
                    elif event == "answer":
                        self.last_answer = data
                    elif event == "error":
                        raise ServiceError(500, data.get("error", "stream failed"))

    def summarize(self, source: str) -> dict[str, Any]:
        return self._call("POST", "/summarize", json={"source": source})

    def entities(self, source: str | None = None, label: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("source", source), ("label", label)) if v}
        return self._call("GET", "/entities", params=params)

    def close(self) -> None:
        self._http.close()
