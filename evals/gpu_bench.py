"""GPU benchmark, honest: real chunk lengths, plain sentence-transformers at its best batch size, medians.

Imports only torch, transformers, sentence-transformers, numpy and ``rag.gpu_embed`` / ``rag.training.compact``
(which import nothing else), so it runs on a bare CUDA machine. Its inputs are made here on the CPU first::

    python -m evals.gpu_bench_data --out .carry/gpu_bench          # real chunks + the packaged MiniLM
    python3 -m evals.gpu_bench --data .carry/gpu_bench --out "$OUT/gpu_bench.json"          # on the GPU
    python -m evals.gpu_bench --device cpu --distinct 24 --sizes 48 --repeats 1 --sweep-n 24 --rerank-pairs 24 \\
        --st-batch-sizes 16 --fast-batch-sizes 16 --ce-batch-sizes 16 --tokenizer-threads 2   # CPU smoke test

What it measures (every throughput the median of ``repeats`` runs after a warm-up):

- **baseline**: ``SentenceTransformer.encode`` in ``dtype`` at the best of ``st_batch_sizes`` (swept on
  ``sweep_n`` chunks), ``convert_to_tensor=True`` (no per-batch host copy), at each of ``sizes`` chunks;
- **fast path** (``rag.gpu_embed.FastEncoder``: the same model and modules, pre-tokenised waves on the
  Rust tokenizer's threads, a producer thread, pinned non-blocking copies) at its best of ``fast_batch_sizes``;
- the host and device ceilings: tokenise-only chunks/s (1 thread and ``tokenizer_threads``), and the model
  alone on batches already on the GPU;
- agreement: cosine of each path's embedding to plain sentence-transformers **fp32** on every distinct chunk;
- cross-encoder (the shipped ``models/reranker``): ``CrossEncoder.predict`` at its best of
  ``ce_batch_sizes`` against the fast path, pairs/s on ``rerank_pairs`` real (query, chunk) pairs of mixed
  lengths, and the largest logit difference to fp32 ``predict``.

Texts beyond the distinct chunks repeat them in order (same lengths distribution; the JSON says how many are
distinct). Every knob is in ``KNOBS``; ``--key=value`` overrides it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("evals.gpu_bench")

KNOBS: dict[str, Any] = {
    "data": ".carry/gpu_bench",     # chunks.json + minilm/ from evals.gpu_bench_data
    "reranker": "models/reranker",  # cross-encoder folder (compact or plain); empty: no cross-encoder figures
    "device": "cuda",
    "dtype": "fp16",                # both paths; the fp32 library run is the reference for agreement
    "sizes": "10000,100000",        # chunks embedded per measurement
    "repeats": 3,
    "sweep_n": 10_000,              # chunks for the batch-size sweeps
    "st_batch_sizes": "32,64,128,256,512,1024",
    "fast_batch_sizes": "256,512,1024",
    "ce_batch_sizes": "32,64,128,256,512",
    "rerank_pairs": 20_000,
    "distinct": 0,                  # use only this many distinct chunks and pairs (0 = all; small for a smoke test)
    "max_length": 256,              # the embedder's max_seq_length; the reranker's trained length
    "tokenizer_threads": min(16, os.cpu_count() or 1),
    # the fast path tokenises in this many worker processes (0 = threads); the default leaves two cores to the
    # process that feeds the GPU
    "tokenizer_processes": max(0, (os.cpu_count() or 1) - 2) if (os.cpu_count() or 1) >= 8 else 0,
    "out": "",
}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if device.startswith("cuda") else None


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def timed(fn: Callable[[], Any], n: int, repeats: int, device: str,
          warm: Callable[[], Any] | None = None) -> dict[str, Any]:
    """``warm`` (default ``fn``) once, then ``repeats`` timed runs: the median items/s of ``n`` items, and the runs."""
    (warm or fn)()
    _sync(device)
    _reset_peak(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return {"n": n, "per_s": round(statistics.median(rates), 1), "runs_per_s": [round(r, 1) for r in rates],
            "max_allocated_gib": _peak_gib(device)}


def _cosines(a: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (a * ref).sum(axis=1)
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6), "chunks": len(cos)}


def load_data(folder: Path) -> dict[str, Any]:
    path = folder / "chunks.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `python -m evals.gpu_bench_data --out {folder}` on the CPU first")
    return json.loads(path.read_text(encoding="utf-8"))


def model_folder(path: Path, cache: Path) -> str:
    """A loadable fp32 folder: a compact one (``compact.json``) is rebuilt once under ``cache``."""
    if (path / "compact.json").is_file():
        from rag.training.compact import materialize

        return materialize(path, cache)
    if (path / "config.json").is_file():
        return str(path)
    raise SystemExit(f"{path} is not a model folder (config.json or compact.json)")


def _ints(v: str) -> list[int]:
    return [int(x) for x in str(v).split(",") if x]


def _nothing(_: dict[str, Any]) -> None:
    pass


def bench_embed(cfg: dict[str, Any], model: str, chunks: list[str],
                checkpoint: Callable[[dict[str, Any]], None] = _nothing) -> dict[str, Any]:
    """Embedding figures; ``checkpoint(out)`` is called with what is measured so far after each part."""
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.gpu_embed import FastEncoder
    from rag.models import torch_dtype_of

    device, dtype, reps = cfg["device"], cfg["dtype"], cfg["repeats"]
    distinct = len(chunks)

    def texts(n: int) -> list[str]:
        return [chunks[i % distinct] for i in range(n)]

    out: dict[str, Any] = {"distinct_chunks": distinct}
    ref_st = SentenceTransformer(model, device=device, model_kwargs={"dtype": torch.float32})
    ref_st.max_seq_length = cfg["max_length"]
    ref = ref_st.encode(chunks, batch_size=256, convert_to_numpy=True, show_progress_bar=False)
    lengths = [len(x) for x in ref_st.tokenizer(chunks, truncation=True, max_length=cfg["max_length"])["input_ids"]]
    out["tokens_per_chunk"] = {"min": int(min(lengths)), "median": float(np.median(lengths)),
                               "mean": round(float(np.mean(lengths)), 1), "max": int(max(lengths)),
                               "truncated_share": round(float(np.mean(np.array(lengths) >= cfg["max_length"])), 4)}
    del ref_st

    st = SentenceTransformer(model, device=device, model_kwargs={"dtype": torch_dtype_of(dtype)})
    st.max_seq_length = cfg["max_length"]

    def st_run(items: list[str], bs: int) -> Any:
        return st.encode(items, batch_size=bs, convert_to_tensor=True, show_progress_bar=False)

    sweep_texts = texts(cfg["sweep_n"])
    warm_texts = sweep_texts[:1024]
    sweep = {bs: timed(lambda b=bs: st_run(sweep_texts, b), len(sweep_texts), 1, device,
                       warm=lambda b=bs: st_run(warm_texts, b))["per_s"] for bs in _ints(cfg["st_batch_sizes"])}
    st_bs = max(sweep, key=sweep.get)
    out["plain_st_batch_sweep"] = {"chunks": len(sweep_texts), "dtype": dtype, "per_s": sweep, "best": st_bs}
    logger.info("plain sentence-transformers %s sweep: %s (best %d)", dtype, sweep, st_bs)
    checkpoint(out)

    enc = {bs: FastEncoder(model, device=device, dtype=dtype, max_length=cfg["max_length"], batch_size=bs,
                           tokenizer_threads=cfg["tokenizer_threads"], tokenizer_processes=cfg["tokenizer_processes"])
           for bs in _ints(cfg["fast_batch_sizes"])}
    fsweep = {bs: timed(lambda e=e: e.embed(sweep_texts), len(sweep_texts), 1, device,
                        warm=lambda e=e: e.embed(warm_texts))["per_s"] for bs, e in enc.items()}
    fast_bs = max(fsweep, key=fsweep.get)
    fast = enc[fast_bs]
    for bs, e in enc.items():
        if bs != fast_bs:
            e.close()
    out["fast_batch_sweep"] = {"chunks": len(sweep_texts), "dtype": dtype, "per_s": fsweep, "best": fast_bs}
    logger.info("fast path %s sweep: %s (best %d)", dtype, fsweep, fast_bs)
    checkpoint(out)

    plain_emb = st_run(chunks, st_bs).float().cpu().numpy()
    fast_emb = fast.embed(chunks)
    out["cosine_to_plain_st_fp32"] = {f"plain_st_{dtype}": _cosines(plain_emb, ref),
                                      f"fast_{dtype}": _cosines(fast_emb, ref)}
    out["cosine_fast_to_plain_st_same_dtype"] = _cosines(fast_emb, plain_emb)

    sizes: dict[str, Any] = {}
    out["sizes"] = sizes  # filled size by size (a checkpoint after each)
    for n in _ints(cfg["sizes"]):
        items = texts(n)
        row = {"plain_st": {**timed(lambda i=items: st_run(i, st_bs), n, reps, device,
                                    warm=lambda: st_run(sweep_texts, st_bs)), "batch_size": st_bs},
               "fast": {**timed(lambda i=items: fast.embed(i), n, reps, device, warm=lambda: fast.embed(sweep_texts)),
                        "batch_size": fast_bs}}
        row["speedup"] = round(row["fast"]["per_s"] / row["plain_st"]["per_s"], 2)
        sizes[str(n)] = row
        logger.info("%d chunks: plain %s/s, fast %s/s", n, row["plain_st"]["per_s"], row["fast"]["per_s"])
        checkpoint(out)

    # ceilings: the host (tokenise only) and the device (the model on batches already on the GPU)
    tok_texts = texts(max(_ints(cfg["sizes"])))
    ceilings: dict[str, Any] = {}
    fast.tokenizer_processes = 0
    for threads in sorted({1, cfg["tokenizer_threads"]}):
        fast.tokenizer_threads = threads
        ceilings[f"tokenize_threads_{threads}_per_s"] = timed(lambda: fast.tokenize(tok_texts), len(tok_texts), 1,
                                                               "cpu", warm=lambda: fast.tokenize(warm_texts))["per_s"]
    fast.tokenizer_threads, fast.tokenizer_processes = cfg["tokenizer_threads"], cfg["tokenizer_processes"]
    if fast.tokenizer_processes:
        ceilings[f"tokenize_processes_{fast.tokenizer_processes}_per_s"] = timed(
            lambda: fast.tokenize(tok_texts), len(tok_texts), 1, "cpu", warm=lambda: fast.tokenize(warm_texts))["per_s"]
    ceilings["library_preprocess_per_s"] = timed(
        lambda: [st.preprocess(sweep_texts[i:i + st_bs]) for i in range(0, len(sweep_texts), st_bs)],
        len(sweep_texts), 1, "cpu")["per_s"]
    tok = fast.tokenize(sweep_texts)
    order = np.argsort(-tok.lengths, kind="stable")
    batches = []
    for b in range(0, len(order), fast_bs):
        sel = order[b:b + fast_bs]
        width = int(tok.lengths[sel].max())
        mask = (np.arange(width)[None, :] < tok.lengths[sel][:, None]).astype(np.int64)
        batches.append([torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in
                        (tok.ids[sel, :width], mask, tok.type_ids[sel, :width])])

    def model_only() -> None:
        with torch.inference_mode():
            for ids, mask, tt in batches:
                fast._forward(ids, mask, tt)

    ceilings["model_only_per_s"] = timed(model_only, len(sweep_texts), reps, device)["per_s"]
    out["ceilings"] = ceilings
    out["tokenizer_processes"] = fast.tokenizer_processes
    fast.close()
    return out


def bench_rerank(cfg: dict[str, Any], model: str, data: dict[str, Any],
                 checkpoint: Callable[[dict[str, Any]], None] = _nothing) -> dict[str, Any]:
    """Cross-encoder figures; ``checkpoint(out)`` is called with what is measured so far after each part."""
    import torch
    from sentence_transformers import CrossEncoder

    from rag.gpu_embed import FastEncoder
    from rag.models import torch_dtype_of

    device, dtype, reps = cfg["device"], cfg["dtype"], cfg["repeats"]
    chunks, queries = data["chunks"], data["queries"]
    distinct = [(queries[q], chunks[c]) for q, c in data["pairs"]]
    n = cfg["rerank_pairs"]
    pairs = [distinct[i % len(distinct)] for i in range(n)]
    qs, ps = [q for q, _ in pairs], [p for _, p in pairs]
    identity = torch.nn.Identity()
    out: dict[str, Any] = {"pairs": n, "distinct_pairs": len(distinct), "queries": len(queries)}
    ref_ce = CrossEncoder(model, num_labels=1, device=device, max_length=cfg["max_length"],
                          model_kwargs={"dtype": torch.float32})
    ref = ref_ce.predict(distinct, batch_size=128, activation_fn=identity, show_progress_bar=False)
    del ref_ce
    ce = CrossEncoder(model, num_labels=1, device=device, max_length=cfg["max_length"],
                      model_kwargs={"dtype": torch_dtype_of(dtype)})

    def ce_run(items: list[tuple[str, str]], bs: int) -> Any:
        return ce.predict(items, batch_size=bs, activation_fn=identity, convert_to_tensor=True,
                          show_progress_bar=False)

    sweep_pairs = pairs[:cfg["sweep_n"]]
    warm_pairs = sweep_pairs[:1024]
    sweep = {bs: timed(lambda b=bs: ce_run(sweep_pairs, b), len(sweep_pairs), 1, device,
                       warm=lambda b=bs: ce_run(warm_pairs, b))["per_s"] for bs in _ints(cfg["ce_batch_sizes"])}
    ce_bs = max(sweep, key=sweep.get)
    out["plain_cross_encoder_batch_sweep"] = {"per_s": sweep, "best": ce_bs}
    checkpoint(out)
    enc = {bs: FastEncoder(model, device=device, dtype=dtype, max_length=cfg["max_length"], batch_size=bs,
                           tokenizer_threads=cfg["tokenizer_threads"], tokenizer_processes=cfg["tokenizer_processes"],
                           kind="rerank")
           for bs in _ints(cfg["fast_batch_sizes"])}
    fsweep = {bs: timed(lambda e=e: e.score(qs[:len(sweep_pairs)], ps[:len(sweep_pairs)]), len(sweep_pairs), 1,
                        device, warm=lambda e=e: e.score(qs[:1024], ps[:1024]))["per_s"] for bs, e in enc.items()}
    fast_bs = max(fsweep, key=fsweep.get)
    fast = enc[fast_bs]
    for bs, e in enc.items():
        if bs != fast_bs:
            e.close()
    out["fast_batch_sweep"] = {"per_s": fsweep, "best": fast_bs}
    checkpoint(out)
    out["plain_cross_encoder"] = {**timed(lambda: ce_run(pairs, ce_bs), n, reps, device), "batch_size": ce_bs}
    out["fast"] = {**timed(lambda: fast.score(qs, ps), n, reps, device), "batch_size": fast_bs}
    out["speedup"] = round(out["fast"]["per_s"] / out["plain_cross_encoder"]["per_s"], 2)
    plain_d = ce_run(distinct, ce_bs).float().cpu().numpy()
    fast_d = fast.score([q for q, _ in distinct], [p for _, p in distinct])
    out["max_abs_logit_diff_to_fp32"] = {f"plain_{dtype}": round(float(np.abs(plain_d - ref).max()), 5),
                                         f"fast_{dtype}": round(float(np.abs(fast_d - ref).max()), 5)}
    logger.info("rerank: plain %s pairs/s (batch %d), fast %s pairs/s (batch %d)",
                out["plain_cross_encoder"]["per_s"], ce_bs, out["fast"]["per_s"], fast_bs)
    fast.close()
    return out


def device_info(device: str) -> dict[str, Any]:
    import sentence_transformers
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__, "cpu_count": os.cpu_count(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """All measurements for ``cfg`` (the knobs); returns the JSON-able result."""
    import torch

    from rag.gpu_embed import attention_backend

    device = cfg["device"]
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here: pass --device=cpu for a smoke test")
    if device == "cpu" and cfg["dtype"] == "fp16":
        cfg["dtype"] = "fp32"
    folder = Path(cfg["data"])
    data = load_data(folder)
    if cfg["distinct"]:
        k = cfg["distinct"]
        data["chunks"] = data["chunks"][:k]
        data["pairs"] = [[q, c % k] for q, c in data["pairs"][:k]]
    cache = Path(tempfile.mkdtemp(prefix="gpu-bench-models-"))
    t0 = time.perf_counter()
    embedder = model_folder(folder / "minilm", cache)
    reranker = model_folder(Path(cfg["reranker"]), cache) if cfg["reranker"] else ""
    result: dict[str, Any] = {"config": dict(cfg), "env": device_info(device),
                              "attention": attention_backend(device, cfg["dtype"]),
                              "data": {"counts": data.get("counts"), "chunk_size_words": data.get("chunk_size_words")},
                              "model_load_s": round(time.perf_counter() - t0, 2)}
    def checkpoint(section: str) -> Callable[[dict[str, Any]], None]:
        # what is measured so far goes to --out at once, marked partial: a call cut off by its time limit keeps it
        def write(part: dict[str, Any]) -> None:
            if cfg["out"]:
                _write({**result, section: part, "partial": True}, cfg["out"])
        return write

    result["embed"] = bench_embed(cfg, embedder, data["chunks"], checkpoint("embed"))
    result["rerank"] = bench_rerank(cfg, reranker, data, checkpoint("rerank")) if reranker else {}
    emb, rr = result["embed"], result["rerank"]
    result["summary"] = {
        "device": result["env"].get("gpu", device), "dtype": cfg["dtype"],
        **{f"embed_{n}_chunks_per_s_fast": row["fast"]["per_s"] for n, row in emb["sizes"].items()},
        **{f"embed_{n}_chunks_per_s_plain_st": row["plain_st"]["per_s"] for n, row in emb["sizes"].items()},
        **{f"embed_{n}_speedup": row["speedup"] for n, row in emb["sizes"].items()},
        "plain_st_best_batch": emb["plain_st_batch_sweep"]["best"],
        "cosine_fast_to_plain_st_fp32_min": emb["cosine_to_plain_st_fp32"][f"fast_{cfg['dtype']}"]["min"],
        "tokenize_per_s": max(v for k, v in emb["ceilings"].items() if k.startswith("tokenize")),
        "model_only_per_s": emb["ceilings"]["model_only_per_s"],
        **({"rerank_pairs_per_s_fast": rr["fast"]["per_s"],
            "rerank_pairs_per_s_plain": rr["plain_cross_encoder"]["per_s"], "rerank_speedup": rr["speedup"]} if rr else {}),
        "target_20k_chunks_per_s_met": all(row["fast"]["per_s"] >= 20_000 for row in emb["sizes"].values()),
        "target_cosine_0999_met": emb["cosine_to_plain_st_fp32"][f"fast_{cfg['dtype']}"]["min"] >= 0.999,
    }
    return result


def parse_args(argv: list[str]) -> dict[str, Any]:
    """``--key=value`` / ``--key value`` overrides of KNOBS; an unknown key fails."""
    p = argparse.ArgumentParser(prog="python -m evals.gpu_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in KNOBS.items():
        p.add_argument(f"--{k.replace('_', '-')}", dest=k, type=type(v), default=v)
    return {**KNOBS, **vars(p.parse_args(argv))}


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m evals.gpu_bench`` and ``evals.bench gpu``; returns the exit code.

    :param argv: ``--key=value`` overrides of KNOBS; None means none (the caller's own ``sys.argv`` is not read).
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv or [])
    emit(run(cfg), cfg["out"])
    return 0


def emit(result: dict[str, Any], out: str) -> None:
    """Print a bench result as JSON and write it to ``out`` when given."""
    print(json.dumps(result, indent=2))
    if out:
        _write(result, out)


def _write(result: dict[str, Any], out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
