"""API keys, hashed at rest, each bound to its own collection.

Key entries come from ``DOCRAG_API_KEYS`` (comma-separated) and/or ``api_keys_file`` (one per line, ``#``
comments). An entry is ``KEY``, ``NAME:KEY`` or ``NAME:sha256:HEX`` (a key stored only as its hash; print one
with ``docrag serve --hash-key KEY``). ``NAME`` (letters, digits, ``_``, ``-``) names the team and its
collection; an unnamed key gets ``k<first 10 hex digits of its hash>``.

Only SHA-256 digests are kept in memory; a request's bearer token is hashed and looked up, so plaintext
keys never live past parsing and the comparison does not depend on secret bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def hash_key(key: str) -> str:
    """``sha256:<hex>`` of a key: what a keys file may store instead of the key."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's team name, its collection and the key's digest (never the key)."""

    name: str
    collection: str
    key_hash: str


class KeyRing:
    """Maps key digests to principals.

    :param entries: ``KEY``, ``NAME:KEY`` or ``NAME:sha256:HEX`` strings.
    :param collection_prefix: collection names are ``<prefix>_<name>``.
    :raises ConfigError: on a malformed entry or a name used by two different keys.
    """

    def __init__(self, entries: list[str], collection_prefix: str = "docrag") -> None:
        self._by_digest: dict[str, Principal] = {}
        for raw in entries:
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            name, digest = self._parse(entry)
            collection = f"{collection_prefix}_{name}"[:64]
            # several keys may share a NAME: they are one team and see one collection
            self._by_digest[digest] = Principal(name=name, collection=collection, key_hash=digest)

    @staticmethod
    def _parse(entry: str) -> tuple[str, str]:
        if _HASHED.match(entry):
            raise ConfigError("a hashed key needs a name: write NAME:sha256:HEX")
        name, sep, rest = entry.partition(":")
        if sep and _NAME.match(name) and rest:
            m = _HASHED.match(rest)
            digest = m.group(1).lower() if m else hashlib.sha256(rest.encode("utf-8")).hexdigest()
            return name, digest
        digest = hashlib.sha256(entry.encode("utf-8")).hexdigest()
        return "k" + digest[:10], digest

    @classmethod
    def from_settings(cls, api_keys: str, api_keys_file: Path | None, collection_prefix: str) -> KeyRing:
        entries = [e for e in api_keys.split(",") if e.strip()]
        if api_keys_file is not None:
            try:
                entries += api_keys_file.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise ConfigError(f"cannot read the API keys file {api_keys_file}: {e} "
                                  "(check DOCRAG_API_KEYS_FILE)") from e
        return cls(entries, collection_prefix)

    def add_local(self, key: str, collection: str) -> None:
        """A key for this host's own processes (the CLI next to ``docrag serve``) to the home's collection."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        self._by_digest[digest] = Principal(name="local", collection=collection, key_hash=digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str) -> Principal | None:
        """The principal of a bearer token, or None."""
        if not token:
            return None
        return self._by_digest.get(hashlib.sha256(token.encode("utf-8")).hexdigest())

    def principals(self) -> list[Principal]:
        return list(self._by_digest.values())
