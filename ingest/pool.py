"""A bounded pool of parse worker processes: a file that stalls or bloats is killed, not the caller.

Each worker is a child Python process (``python -m ingest.worker``) that parses one file at a time with
:class:`ingest.parse.UnstructuredFileParser`. The pool enforces, per file, the wall-clock limit
(``ParseLimits.timeout_s``) and the resident-memory ceiling (``ParseLimits.memory_mb``, watched every
50 ms, plus an address-space rlimit in the worker as a backstop) by killing the worker; the next file gets
a fresh one. The static limits (zip size, pages, pixels, text size) are checked inside the worker before
parsing.

```python
from ingest.limits import ParseLimits
from ingest.pool import ParsePool

with ParsePool(workers=2) as pool:
    fut = pool.submit("report.pdf", options={"ocr": False}, limits=ParseLimits(timeout_s=60))
    result = fut.result()            # ParseResult: documents, warnings, or error + limit
    for r in pool.map(["a.docx", "b.txt"], progress=lambda done, total, r: print(done, total, r.source)):
        ...
```

The pool is thread-safe; :func:`shared_pool` gives the process-wide one that the indexing graph uses.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any, Self

from haystack import Document

from ingest.limits import ParseLimits, over_budget, raise_hint

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")
_POLL_S = 0.05
_START_TIMEOUT_S = 120.0
_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass
class ParseResult:
    """The outcome of parsing one file: element ``documents`` and ``warnings``, or a one-line ``error``.

    ``limit`` names the :class:`ParseLimits` field when the file was refused for a limit (else None);
    ``peak_rss_mb`` is the worker's peak resident memory so far (0 when parsed in-process).
    """

    source: str
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    limit: str | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def failure(self) -> dict[str, str]:
        """The row for a ``failures`` list (the parser component's contract)."""
        return {"source": self.source, "error": self.error or ""}


ProgressFn = Callable[[int, int, ParseResult], None]


def _send(stream: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            raise EOFError("worker closed its pipe")
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def _recv(fd: int) -> Any:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, n))  # our own child process


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process in kB (Linux); empty where /proc is not there."""
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, val = line.split(":", 1)
                    out[key] = int(val.split()[0])
    except OSError:
        pass
    return out


class _Worker:
    """One child process and the protocol to it; owned by one pool thread."""

    def __init__(self, memory_mb: int) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
        self.memory_mb = memory_mb
        self.proc = subprocess.Popen(  # our own module
            [sys.executable, "-m", "ingest.worker", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True)
        self.fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([self.fd], [], [], _START_TIMEOUT_S)
        if not ready or _recv(self.fd) != "ready":
            self.kill()
            raise RuntimeError("parse worker did not start (run `python -m ingest.worker` to see why)")
        self.peak_kb = 0

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        for s in (self.proc.stdin, self.proc.stdout):
            try:
                s.close()
            except OSError:
                pass

    def run(self, path: str, meta: dict[str, Any] | None, options: dict[str, Any], limits: ParseLimits,
            ) -> ParseResult:
        t0 = time.monotonic()
        _send(self.proc.stdin, (path, meta, options, limits.to_dict()))
        ceiling_kb = limits.memory_mb * 1024
        while True:
            ready, _, _ = select.select([self.fd], [], [], _POLL_S)
            status = _proc_status(self.proc.pid)
            self.peak_kb = max(self.peak_kb, status.get("VmHWM", 0), status.get("VmRSS", 0))
            elapsed = time.monotonic() - t0
            if ready:
                try:
                    kind, payload = _recv(self.fd)
                except EOFError:
                    return self._died(path, elapsed, limits)
                res = ParseResult(path, seconds=elapsed, peak_rss_mb=self.peak_kb / 1024)
                if kind == "ok":
                    docs, res.warnings = payload
                    res.documents = [Document(content=c, meta=m) for c, m in docs]
                else:
                    res.error, res.limit = payload
                return res
            if status.get("VmRSS", 0) > ceiling_kb:
                self.kill()
                return ParseResult(path, error=over_budget("memory_mb", limits.memory_mb), limit="memory_mb",
                                   seconds=elapsed, peak_rss_mb=self.peak_kb / 1024)
            if elapsed > limits.timeout_s:
                self.kill()
                return ParseResult(path, error=over_budget("timeout_s", limits.timeout_s), limit="timeout_s",
                                   seconds=elapsed, peak_rss_mb=self.peak_kb / 1024)
            if not self.alive:
                return self._died(path, elapsed, limits)

    def _died(self, path: str, elapsed: float, limits: ParseLimits) -> ParseResult:
        self.kill()
        code = self.proc.returncode
        # the address-space rlimit turns a runaway allocation into MemoryError or a crash of the worker
        return ParseResult(path, error=f"the parse worker died (exit {code}), most likely over its "
                           f"{limits.memory_mb} MB memory ceiling {raise_hint('memory_mb')}",
                           limit="memory_mb", seconds=elapsed, peak_rss_mb=self.peak_kb / 1024)


_Job = tuple[str, "dict[str, Any] | None", "dict[str, Any]", ParseLimits, Future]


class ParsePool:
    """``workers`` parse processes fed from one queue; a worker is started on first use and after a kill.

    :param workers: how many files are parsed at once (>= 1).
    :raises ValueError: for ``workers < 1``.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.workers = workers
        self._jobs: Queue[_Job | None] = Queue()
        self._threads: list[threading.Thread] = []
        self._procs: list[_Worker | None] = [None] * workers
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_threads(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            while len(self._threads) < self.workers:
                t = threading.Thread(target=self._serve, args=(len(self._threads),), daemon=True,
                                     name=f"parse-worker-{len(self._threads)}")
                self._threads.append(t)
                t.start()

    def _serve(self, slot: int) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            path, meta, options, limits, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                w = self._procs[slot]
                if w is None or not w.alive or w.memory_mb != limits.memory_mb:
                    if w is not None:
                        w.kill()
                    w = self._procs[slot] = _Worker(limits.memory_mb)
                res = w.run(path, meta, options, limits)
                if not w.alive:
                    self._procs[slot] = None
                fut.set_result(res)
            except BaseException as e:  # noqa: BLE001 - the caller gets it from the future
                w = self._procs[slot]
                if w is not None:
                    w.kill()
                self._procs[slot] = None
                fut.set_exception(e)
        w = self._procs[slot]
        if w is not None:
            w.kill()
            self._procs[slot] = None

    def submit(self, path: str | Path, meta: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
               limits: ParseLimits | None = None) -> Future[ParseResult]:
        """Queue one file; the future resolves to a :class:`ParseResult` (it never raises for a bad file).

        :param path: the file.
        :param meta: merged into every element's meta.
        :param options: :class:`ingest.parse.UnstructuredFileParser` options (pdf_strategy, ocr,
            ocr_languages, passwords).
        :param limits: the budget (default :class:`ParseLimits`).
        """
        self._start_threads()
        fut: Future[ParseResult] = Future()
        self._jobs.put((str(path), meta, dict(options or {}), limits or ParseLimits(), fut))
        return fut

    def map(self, paths: Iterable[str | Path], metas: Iterable[dict[str, Any] | None] | None = None,
            options: dict[str, Any] | None = None, limits: ParseLimits | None = None,
            progress: ProgressFn | None = None, ahead: int | None = None) -> Iterator[ParseResult]:
        """Parse many files, up to ``workers`` at once; results come back in input order.

        :param progress: called as ``progress(done, total, result)`` as each file finishes (any order).
        :param ahead: queue at most this many files beyond the ones already handed back (None: all at once),
            so a slow consumer (the ingest's embedder) bounds the parsed results held in memory. Files still
            queued when the iterator is closed early are cancelled.
        """
        paths = list(paths)
        metas = list(metas) if metas is not None else [None] * len(paths)
        if len(metas) != len(paths):
            raise ValueError(f"{len(metas)} metas for {len(paths)} paths")
        window = len(paths) if ahead is None else max(1, ahead)
        done = [0]
        lock = threading.Lock()

        def report(f: Future) -> None:
            with lock:
                done[0] += 1
                n = done[0]
            if not f.cancelled() and not f.exception():
                progress(n, len(paths), f.result())

        futs: list[Future[ParseResult]] = []

        def top_up(upto: int) -> None:
            while len(futs) < min(upto, len(paths)):
                i = len(futs)
                f = self.submit(paths[i], metas[i], options, limits)
                if progress:
                    f.add_done_callback(report)
                futs.append(f)

        try:
            for i in range(len(paths)):
                top_up(i + 1 + window)
                yield futs[i].result()
                futs[i] = None  # type: ignore[call-overload]  # the caller holds the result now
        finally:
            for f in futs:
                if f is not None:
                    f.cancel()

    def close(self) -> None:
        """Stop the workers (after the files already queued)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for t in threads:
            t.join(timeout=5)


_shared: ParsePool | None = None
_shared_lock = threading.Lock()


def shared_pool(workers: int) -> ParsePool:
    """The process-wide pool (one per process, so the worker count is a process-wide bound).

    A different ``workers`` replaces it once the old pool's queued files are done.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared.workers != workers or _shared._closed:
            old, _shared = _shared, ParsePool(workers)
            if old is not None:
                old.close()
        return _shared


@atexit.register
def _close_shared() -> None:
    if _shared is not None:
        _shared.close()
