"""The answer cache: answers keyed by (collection, collection version, question, query settings).

Every ingest or delete bumps the collection's version, so older answers can no longer be hit; they are
dropped at once too, to free memory.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any


class AnswerCache:
    """A bounded LRU of answer dicts.

    :param max_entries: entries kept across all collections; 0 turns the cache off.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def version(self, collection: str) -> int:
        with self._lock:
            return self._versions.get(collection, 0)

    def invalidate(self, collection: str) -> int:
        """Bump ``collection``'s version and drop its answers; returns the new version."""
        with self._lock:
            self._versions[collection] = self._versions.get(collection, 0) + 1
            for k in [k for k in self._data if k[0] == collection]:
                del self._data[k]
            return self._versions[collection]

    def key(self, collection: str, question: str, params: dict[str, Any], fingerprint: str) -> tuple[str, str]:
        norm = " ".join(question.split()).lower()
        blob = json.dumps({"v": self.version(collection), "q": norm, "p": params, "s": fingerprint},
                          sort_keys=True, default=str)
        return collection, hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def peek(self, key: tuple[str, str]) -> dict[str, Any] | None:
        """Like :meth:`get` without counting a miss (the double check under the collection lock)."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
            return value

    def put(self, key: tuple[str, str], value: dict[str, Any], version: int) -> None:
        """Store an answer computed at ``version``; ignored when an ingest/delete happened meanwhile."""
        if not self.max_entries:
            return
        with self._lock:
            if self._versions.get(key[0], 0) != version:
                return
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._data), "hits": self.hits, "misses": self.misses}
