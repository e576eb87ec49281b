"""A loopback load test: N concurrent askers against a running service for a bounded time.

``python -m rag.server.loadtest --url http://127.0.0.1:8000 --key KEY --concurrency 8 --seconds 20`` prints
JSON with the request count, p50/p95/max latency, the error count and the answer-cache hit share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

from rag.timings import percentile

DEFAULT_QUESTIONS = ["What is this document about?", "Who is mentioned in the documents?",
                     "When did it happen?", "Where is it located?"]


def run(url: str, key: str, questions: list[str] | None = None, concurrency: int = 8, seconds: float = 20.0,
        timeout: float = 300.0, unique: bool = False) -> dict[str, Any]:
    """Each of ``concurrency`` threads asks in a loop until ``seconds`` have passed; requests started before
    the deadline are waited for. Non-200 answers and transport errors count as errors. ``unique`` makes every
    question new (a numbered suffix), so no answer comes from the cache."""
    import httpx

    questions = questions or DEFAULT_QUESTIONS
    latencies: list[float] = []
    errors: list[str] = []
    cached = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def asker(i: int) -> None:
        nonlocal cached
        n = i
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout) as client:
            while time.perf_counter() < deadline:
                q = questions[n % len(questions)] + (f" (request {i}-{n})" if unique else "")
                n += 1
                t0 = time.perf_counter()
                try:
                    r = client.post("/ask", json={"question": q})
                    ok, body = r.status_code == 200, (r.json() if r.status_code == 200 else r.text[:200])
                    err = None if ok else f"HTTP {r.status_code}: {body}"
                except Exception as e:  # noqa: BLE001 - every failure is an error of the run
                    ok, body, err = False, None, f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if err:
                        errors.append(err)
                    elif body.get("cached"):
                        cached += 1

    t_start = time.perf_counter()
    threads = [threading.Thread(target=asker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    n = len(latencies)
    return {"concurrency": concurrency, "seconds": seconds, "unique_questions": unique, "wall_s": round(wall, 2), "requests": n,
            "errors": len(errors), "error_samples": errors[:5],
            "p50_s": round(percentile(latencies, 0.5), 4) if n else None,
            "p95_s": round(percentile(latencies, 0.95), 4) if n else None,
            "max_s": round(max(latencies), 4) if n else None,
            "mean_s": round(statistics.fmean(latencies), 4) if n else None,
            "cache_hit_share": round(cached / max(1, n - len(errors)), 3),
            "requests_per_s": round(n / wall, 2) if wall else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.server.loadtest", description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--key", required=True)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--question", action="append", help="repeatable; default: four generic questions")
    p.add_argument("--unique", action="store_true", help="never repeat a question (measures uncached asks)")
    args = p.parse_args(argv)
    result = run(args.url, args.key, args.question, args.concurrency, args.seconds, unique=args.unique)
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
