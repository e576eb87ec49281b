"""``docrag eval retrieval|answers|ner|summaries|all [...]`` (the lead's CLI forwards here: ``main(argv)``).

Exit codes: 0 ok, 1 gate failed (with ``--gate``), 2 usage or data error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from evals import datasets as dsets

EXIT_OK, EXIT_GATE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docrag eval", description="Retrieval, answer, NER and summary evals on the "
                                "real pipeline; writes JSON + Markdown reports under evals/reports/.")
    p.add_argument("task", choices=["retrieval", "answers", "ner", "summaries", "all"])
    p.add_argument("--dataset", action="append", choices=sorted(dsets.LOADERS),
                   help="dataset(s) for the task (default: scifact + msmarco / squad / conll2003 / xsum)")
    p.add_argument("--limit", type=int, default=None, help="cases per dataset (overrides CI/full sizes)")
    p.add_argument("--full", action="store_true", help="every case of each set (slow: hours for SQuAD answers)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.add_argument("--data-dir", default=None, help="data folder (DOCRAG_DATA, "
                   "default <repo>/../shared/data)")
    p.add_argument("--gate", action="store_true", help="fail (exit 1) when a metric is below evals/thresholds.toml")
    p.add_argument("--thresholds", default=None, help="thresholds file (default evals/thresholds.toml)")
    p.add_argument("--home", default=None, help="keep the eval stores here and reuse them between runs "
                   "(default: a temporary folder)")
    p.add_argument("--out", default=None, help="report folder (default evals/reports)")
    p.add_argument("--rerank-depth", type=int, default=None,
                   help="hybrid chunks the reranker rescores per query (default: the product's retrieve_k in the "
                        "CI-sized run, 50 with --full)")
    p.add_argument("--top-k", type=int, default=5, help="chunks given to the generator in the answer eval")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="Settings override for the evaluated pipeline, e.g. --set reranker=none")
    p.add_argument("--generator", default=None, metavar="NAME",
                   help="generator of the evaluated pipeline: a short name (docrag models list) or a .gguf path")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from evals import gate, report
    from evals.runner import TASKS, Options, run

    overrides = {}
    for item in args.set:
        if "=" not in item:
            print(f"docrag eval: --set wants KEY=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    if args.generator:
        overrides["generator"] = args.generator
    opts = Options(data_dir=Path(args.data_dir) if args.data_dir else None, full=args.full, limit=args.limit,
                   home=Path(args.home) if args.home else None, rerank_depth=args.rerank_depth,
                   answer_top_k=args.top_k, settings=overrides,
                   progress=None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    tasks = list(TASKS) if args.task == "all" else [args.task]
    datasets = args.dataset
    if args.task == "all" and datasets:
        print("docrag eval all: --dataset applies to one task; run the task by name", file=sys.stderr)
        return EXIT_USAGE
    try:
        rep = run(tasks, opts, datasets=datasets, argv=["eval", *argv])
    except (FileNotFoundError, ValueError) as e:
        print(f"docrag eval: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.gate:
        rep["gate"] = gate.check(rep["sections"], gate.load_thresholds(args.thresholds))
    j, m = report.write(rep, args.out)
    if args.json:
        print(json.dumps(rep, indent=2, default=str))
    else:
        print(report.sections_markdown(rep["sections"]))
        print(report.gate_markdown(rep.get("gate")))
        print(f"report: {j} and {m.name} ({rep['seconds']:.0f} s)")
    if args.gate and not rep["gate"]["passed"]:
        if args.json:
            print(report.gate_markdown(rep["gate"]), file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
