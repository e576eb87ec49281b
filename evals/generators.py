"""Generator benchmark (``make bench-generators``, ``python -m evals.bench generators``).

For every installed generator (``docrag models list``), in a fresh process each so that RSS is the model's
own: load time, time to first token p50, whole answer p50, decode tokens/s and RSS, through the generator
the query graph uses (``rag.graph.build_generator``: llama.cpp's ``LlamaCppChatGenerator`` on CPU) with the
graph's own prompt and decoding options (``--style evidence``: the evidence-first graph's, the default;
``--style chunks``: the generator-only graph's). Prompts are short: a question plus evidence sentences
(see :func:`bench_one`), built from SQuAD 2.0 course-split answerable questions
(``squad/dev-v2.0.json``; never the 19 test articles of the official dev set). The same run scores the
replies (SQuAD F1 against the gold answers, share of replies containing a gold answer, NOT_FOUND share):
a reading test with the evidence given, not the open-book eval (``docrag eval answers --generator NAME``).

```bash
python -m evals.generators --prompts 20                     # every installed generator
python -m evals.generators --models smollm2-135m,qwen2.5-coder-0.5b --prompts 10
```
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "evals" / "reports" / "bench-generators.json"


def evidence_prompts(n: int, seed: int = 0, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """``n`` seeded answerable course-split questions, each with three evidence sentences (gold first is
    not guaranteed: the order is shuffled so position gives nothing away)."""
    from evals.bench import DATA
    from evals.datasets import squad
    from ingest.chunk import _SENTENCE_END

    data = json.loads(((data_dir or DATA) / squad.FILE).read_text(encoding="utf-8"))["data"]
    rng = random.Random(seed)
    items = []
    for article in data:
        paras = article["paragraphs"]
        for pi, para in enumerate(paras):
            for qa in para["qas"]:
                if not qa.get("is_impossible") and qa.get("answers"):
                    items.append((article, pi, qa))
    rng.shuffle(items)
    out = []
    for article, pi, qa in items:
        text = article["paragraphs"][pi]["context"]
        sents, starts, pos = [], [], 0
        for s in _SENTENCE_END.split(text):
            pos = text.find(s, pos)
            sents.append(s)
            starts.append(pos)
        start = qa["answers"][0]["answer_start"]
        gi = max(i for i, st in enumerate(starts) if st <= start)
        if qa["answers"][0]["text"] not in sents[gi] or len(sents) < 2:
            continue  # the answer crosses a sentence boundary
        neighbour = sents[gi + 1] if gi + 1 < len(sents) else sents[gi - 1]
        others = [p["context"] for j, p in enumerate(article["paragraphs"]) if j != pi]
        if not others:
            continue
        distractor = rng.choice(_SENTENCE_END.split(rng.choice(others)))
        evidence = [sents[gi], neighbour, distractor]
        rng.shuffle(evidence)
        words = distractor.split()
        k = rng.randint(0, max(0, len(words) - 3))
        spans = [{"sentence": sents[gi], "text": qa["answers"][0]["text"]},
                 {"sentence": distractor, "text": " ".join(words[k:k + 3])}]
        out.append({"question": qa["question"], "answers": list(dict.fromkeys(a["text"] for a in qa["answers"])),
                    "evidence": evidence, "spans": spans, "title": article["title"].replace("_", " ")})
        if len(out) == n:
            break
    return out


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _mapped_mb(path: Path) -> float:
    """Resident MB of this process's mappings of ``path``: the weights llama.cpp mmaps, counted on their own.

    The process's RSS delta across a load is not the model's size: other objects freed meanwhile (an earlier
    test's graph, the allocator trimming) can make it negative."""
    import psutil

    target = str(path.resolve())
    return sum(m.rss for m in psutil.Process().memory_maps(grouped=True) if m.path == target) / 2**20


def bench_one(name: str, prompts: list[dict[str, Any]], warmup: int = 1, style: str = "evidence") -> dict[str, Any]:
    """Load one generator the way the graph does and time it on ``prompts`` (this process only).

    ``style``: ``evidence`` = the evidence-first graph's prompt and decoding (sentences with their answer
    words: the gold sentence with the gold answer, as a perfect reader gives it, and a distractor sentence
    with three of its words); ``chunks`` = the generator-only graph's numbered sources (three sentences)."""
    from haystack import Document

    from evals import metrics
    from rag import model_registry
    from rag.config import Settings
    from rag.graph import build_generator, build_prompt_builder, generation_kwargs, generator_backend

    settings = Settings.load(generator=name)
    path = model_registry.resolve(name) if name in model_registry.REGISTRY else Path(name)
    gc.collect()
    rss0 = _rss_mb()
    evidence = style == "evidence"
    gen = build_generator(settings, generation_kwargs(settings, evidence=evidence))
    t0 = time.perf_counter()
    gen.warm_up()
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    builder = build_prompt_builder(evidence=evidence)
    rows = []
    for i, p in enumerate(prompts[:warmup] + prompts):
        if evidence:
            variables: dict[str, Any] = {"evidence": p["spans"], "query": p["question"]}
        else:
            variables = {"documents": [Document(content=s, meta={"title_path": p["title"]}) for s in p["evidence"]],
                         "query": p["question"]}
        messages = builder.run(template_variables=variables)["prompt"]
        stamps: list[float] = []
        t = time.perf_counter()
        reply = gen.run(messages=messages, streaming_callback=lambda c, s=stamps: c.content and
                        s.append(time.perf_counter()))["replies"][0].text or ""
        total = time.perf_counter() - t
        if i < warmup:
            continue
        model = getattr(gen, "_model", None)
        prompt_text = "\n".join(m.text or "" for m in messages)
        n_prompt = len(model.tokenize(prompt_text.encode())) if model is not None else None
        answer = metrics.strip_citations(reply)
        rows.append({"ttft_s": stamps[0] - t if stamps else total, "total_s": total, "tokens": len(stamps),
                     "decode_tps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 else None,
                     "prompt_tokens": n_prompt, "reply": reply,
                     "f1": metrics.squad_scores(answer, p["answers"])["f1"],
                     "contains": metrics.contains_answer(answer, p["answers"]),
                     "not_found": "NOT_FOUND" in reply or "NOT FOUND" in reply})

    rss_weights = _mapped_mb(path)  # after the generations, so every page they read is in

    def p50(key: str) -> float | None:
        vals = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    return {
        "name": name, "path": str(path), "size_mb": round(path.stat().st_size / 1e6, 1),
        "architecture": model_registry.gguf_architecture(path), "backend": generator_backend(settings, str(path)),
        "n_threads": settings.n_threads or os.cpu_count(), "load_s": round(load_s, 3),
        "ttft_p50_s": p50("ttft_s"), "total_p50_s": p50("total_s"), "decode_tokens_per_s_p50": p50("decode_tps"),
        "reply_tokens_p50": p50("tokens"), "prompt_tokens_p50": p50("prompt_tokens"),
        "prompt_tokens_min": min((r["prompt_tokens"] or 0) for r in rows) if rows else None,
        "prompt_tokens_max": max((r["prompt_tokens"] or 0) for r in rows) if rows else None,
        "rss_model_mb": round(rss_weights, 1), "rss_load_delta_mb": round(rss_loaded - rss0, 1), "rss_mb": round(rss_loaded, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "evidence_f1": round(statistics.fmean(r["f1"] for r in rows), 3) if rows else None,
        "evidence_contains_answer": round(statistics.fmean(r["contains"] for r in rows), 3) if rows else None,
        "evidence_not_found": round(statistics.fmean(r["not_found"] for r in rows), 3) if rows else None,
        "prompts": len(rows), "warmup_prompts": warmup, "prompt_style": style,
        "samples": [{"reply": r["reply"][:200], "f1": round(r["f1"], 3)} for r in rows[:5]],
    }


def run(names: list[str] | None = None, n_prompts: int = 20, seed: int = 0, data_dir: Path | None = None,
        warmup: int = 1, out: Path = REPORT, style: str = "evidence") -> dict[str, Any]:
    """Benchmark each generator in its own subprocess; returns the report (written to ``out`` after each)."""
    from evals.report import machine
    from rag import model_registry

    if not names:
        names = [r["name"] for r in model_registry.list_models() if r["installed"]]
    prompts = evidence_prompts(n_prompts, seed, data_dir)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    for name in names:
        cmd = [sys.executable, "-m", "evals.generators", "--one", name, "--prompts", str(n_prompts),
               "--seed", str(seed), "--warmup", str(warmup), "--style", style] + (["--data-dir", str(data_dir)] if data_dir else [])
        print(f"[generators] {name} ...", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
        if proc.returncode != 0:
            results[name] = {"name": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
        else:
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        results[name]["loadavg_1min_before_after"] = [round(load, 1), round(os.getloadavg()[0], 1)]
        print(f"[generators] {name}: {table_row(results[name])}", file=sys.stderr, flush=True)
        report = {"machine": {**machine(), "loadavg_1_5_15_before": [round(x, 1) for x in load_before],
                              "loadavg_1_5_15_after": [round(x, 1) for x in os.getloadavg()]},
                  "seed": seed, "prompts": len(prompts), "prompt_style": style,
                  "prompt_set": "SQuAD 2.0 course split (squad/dev-v2.0.json), answerable questions; evidence: "
                                "the gold sentence with the gold answer as answer words + a same-article "
                                "distractor sentence (evidence-first prompt); chunks: gold, neighbour and "
                                "distractor sentences as numbered sources (generator-only prompt)",
                  "generators": results}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    return report


HEADER = ("| generator | arch | size MB | load s | TTFT p50 s | answer p50 s | decode tok/s | RSS MB | "
          "F1 (evidence given) | contains answer |\n|---|---|---|---|---|---|---|---|---|---|")


def table_row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['name']} | error: {r['error']} |"
    return (f"| {r['name']} | {r['architecture']} | {r['size_mb']:.0f} | {r['load_s']:.2f} | {r['ttft_p50_s']:.2f} | "
            f"{r['total_p50_s']:.2f} | {r['decode_tokens_per_s_p50'] or 0:.1f} | {r['rss_model_mb']:.0f} | "
            f"{r['evidence_f1']:.2f} | {r['evidence_contains_answer']:.2f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.generators", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="", help="comma-separated short names or GGUF paths (default: installed)")
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--warmup", type=int, default=1, help="untimed generations before the timed ones")
    p.add_argument("--style", choices=["evidence", "chunks"], default="evidence",
                   help="the evidence-first graph's prompt (default) or the generator-only graph's")
    p.add_argument("--out", default=str(REPORT), help="report JSON (default evals/reports/bench-generators.json)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: one generator, JSON out
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.one:
        prompts = evidence_prompts(args.prompts, args.seed, data_dir)
        print(json.dumps(bench_one(args.one, prompts, args.warmup, args.style)))
        return 0
    report = run([m for m in args.models.split(",") if m] or None, args.prompts, args.seed, data_dir,
                 args.warmup, Path(args.out), args.style)
    print(HEADER)
    for r in report["generators"].values():
        print(table_row(r))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
