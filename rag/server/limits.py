"""Per-key rate limiting (token bucket) and the request body size limit (ASGI middleware)."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests in a burst, refilled at ``per_minute / 60`` per second.

    :param per_minute: requests allowed per minute and key; must be >= 1.
    :raises ValueError: for a non-positive ``per_minute``.
    """

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``. Returns 0 when allowed, else the seconds until a token is free."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))


class BodySizeLimitMiddleware:
    """Answers ``413`` when a request body is larger than ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before anything is read; a chunked body is
    counted as it is received and refused once it crosses the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received = 0
        started = refused = False

        async def counting_receive() -> dict:
            # over the limit: answer 413 now and tell the app the client left (its own reply is dropped);
            # raising here would be turned into a 400 by the framework's body parsing
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started:
                        refused = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body is larger than the limit of {self.max_bytes} bytes "
                                     "(DOCRAG_MAX_UPLOAD_MB)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
