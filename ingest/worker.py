"""The parse worker process of :mod:`ingest.pool`: ``python -m ingest.worker MEMORY_MB``.

Reads ``(path, meta, options, limits)`` jobs as length-prefixed pickles on stdin and answers each with
``("ok", ([(content, meta), ...], warnings))`` or ``("error", (reason, limit))``. Its own stdout is moved
to stderr first, so a library that prints cannot break the protocol. The address space is capped at
``MEMORY_MB`` plus headroom for the libraries' reserved-but-unused mappings; the pool watches the resident
memory itself and kills the worker at ``MEMORY_MB``.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import sys
from pathlib import Path
from typing import Any

# virtual address space that the imported libraries reserve without using it (thread stacks, arenas)
_AS_HEADROOM_MB = 4096


def _limit_memory(memory_mb: int) -> None:
    cap = (memory_mb + _AS_HEADROOM_MB) * 1048576
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent goes (even by kill -9), so no orphan worker parses on."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _warm_up(parser: Any) -> None:
    """Parse a tiny text once, so the partitioner's lazy imports do not count against the first file's limit."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="docrag-warm-") as d:
        p = Path(d) / "warm-up.txt"
        p.write_text("Warm-up note.\n\nThe parse worker is ready.\n", encoding="utf-8")
        try:
            parser.parse_file(p)
        except Exception:  # noqa: BLE001, S110 - a warm-up failure shows again on the first real file
            pass
        import pypdfium2  # noqa: F401
        from PIL import Image  # noqa: F401


def main() -> None:
    _die_with_parent()
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 3072
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    _limit_memory(memory_mb)

    from ingest.errors import IngestError
    from ingest.limits import LimitExceededError, ParseLimits, over_budget
    from ingest.parse import UnstructuredFileParser
    from ingest.pool import _HEADER, _send

    parsers: dict[str, UnstructuredFileParser] = {}
    _warm_up(UnstructuredFileParser(workers=0))
    _send(proto_out, "ready")
    while True:
        head = proto_in.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        (n,) = _HEADER.unpack(head)
        path, meta, options, limits = pickle.loads(proto_in.read(n))  # from our parent
        key = repr(sorted(options.items())) + repr(sorted(limits.items()))
        parser = parsers.get(key)
        if parser is None:
            parser = parsers[key] = UnstructuredFileParser(**options, limits=ParseLimits.from_dict(limits),
                                                           workers=0)
        reply: tuple[str, Any]
        try:
            docs, warnings = parser.parse_file(Path(path), meta)
            reply = ("ok", ([(d.content, d.meta) for d in docs], warnings))
        except LimitExceededError as e:
            reply = ("error", (e.reason, e.limit))
        except IngestError as e:
            reply = ("error", (e.reason, None))
        except MemoryError:
            reply = ("error", (over_budget("memory_mb", memory_mb), "memory_mb"))
        except Exception as e:  # noqa: BLE001 - the worker outlives a bad file
            reply = ("error", (" ".join(f"{type(e).__name__}: {e}".split())[:300], None))
        _send(proto_out, reply)


if __name__ == "__main__":
    main()
