"""GPU generation benchmark: time to first token and decode tokens/s of docrag's generators on CUDA.

Measures the product's own generator components, not bare libraries:

- ``TransformersChatGenerator`` (the transformers backend) in each of ``--dtypes``, through its streaming
  callback, next to a bare ``model.generate`` on the same prompt (the cost of our streaming/stop handling);
- ``LlamaCppChatGenerator`` with every layer offloaded (``n_gpu_layers=-1``, what ``generator_backend=auto``
  picks on CUDA) when llama-cpp-python was built with CUDA and a GGUF is given or can be made.

The prompt is a RAG prompt of ``--chunks`` chunks of ``--chunk-words`` words rendered with the model's chat
template; every run decodes exactly ``--max-tokens`` tokens (EOS suppressed) so runs are comparable.
``--model`` is an HF causal-LM folder; when it holds no weights (a config + tokenizer only, so that it fits the
GPU machine's 64 MiB tree) the model is randomly initialised with that architecture — speed does not depend on
the weights. ``--gguf convert`` writes that model as GGUF with llama.cpp's converter (``--converter``) and
quantizes it to ``--gguf-type`` with llama-cpp-python's own quantizer::

    python3 -m evals.gpu_generate_bench --model .carry/smollm2-hf --gguf convert --out evals/reports/gen.json
    python3 -m evals.gpu_generate_bench --device cpu --max-tokens 16 --runs 1 --variants fp32   # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("evals.gpu_generate_bench")

KNOBS: dict[str, Any] = {
    "model": ".carry/smollm2-hf",  # HF folder; config-only = random init of that architecture
    "device": "cuda",
    "variants": "bf16,bf16+compile,fp16+compile",  # dtype[+compile] (static KV cache + CUDA graphs)
    "chunks": 5,
    "chunk_words": 180,            # docrag's default chunk size
    "max_tokens": 256,
    "runs": 3,
    "gguf": "",                    # a .gguf path, "convert" (from --model), or "" (skip llama.cpp)
    "gguf_type": "q4_1",           # quantization of the converted GGUF (the default model is Q4_1)
    "converter": "",               # llama.cpp's convert_hf_to_gguf.py (needed for --gguf convert)
    "out": "",
    "seed": 0,
    "child": "",                   # internal: "llama" = the llama.cpp part alone, in a process without torch
}

WORDS = ["the", "protein", "binding", "cell", "study", "results", "patients", "treatment", "model", "data", "analysis", "effect", "group", "increase", "levels", "method", "observed", "significant", "response", "control", "clinical", "expression", "samples"]


def rag_messages(chunks: int, chunk_words: int, seed: int, as_dicts: bool = False) -> list[Any]:
    import random

    rnd = random.Random(seed)
    ctx = "\n\n".join(f"[{i + 1}] " + " ".join(rnd.choice(WORDS) for _ in range(chunk_words))
                      for i in range(chunks))
    system = "Answer from the numbered sources only and cite them like [1]."
    user = f"Sources:\n{ctx}\n\nQuestion: what do the sources say about treatment?\nAnswer:"
    if as_dicts:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    from haystack.dataclasses import ChatMessage

    return [ChatMessage.from_system(system), ChatMessage.from_user(user)]


def ensure_weights(folder: str, seed: int) -> tuple[str, str]:
    """The model folder, or a random-init copy of its architecture when it holds no weights."""
    p = Path(folder)
    if any(p.glob("*.safetensors")) or any(p.glob("*.bin")):
        return folder, "given"
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    cfg = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    out = Path(tempfile.mkdtemp(prefix="gen-random-"))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return str(out), "random init (same architecture)"


def _timed_stream(run: Any) -> dict[str, float]:
    stamps: list[float] = []
    t0 = time.perf_counter()
    reply = run(lambda _chunk: stamps.append(time.perf_counter()))
    t1 = time.perf_counter()
    usage = reply.meta.get("usage") or {}
    n = int(usage.get("completion_tokens") or 0)
    first = stamps[0] - t0 if stamps else t1 - t0
    decode_s = t1 - (stamps[0] if stamps else t0)
    return {"ttft_s": first, "total_s": t1 - t0, "completion_tokens": n, "prompt_tokens": usage.get("prompt_tokens"),
            "decode_tok_s": (n - 1) / decode_s if n > 1 and decode_s > 0 else 0.0}


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = ("ttft_s", "decode_tok_s", "total_s")
    return {**{k: round(statistics.median(r[k] for r in runs), 4) for k in keys},
            "completion_tokens": runs[-1]["completion_tokens"], "prompt_tokens": runs[-1]["prompt_tokens"],
            "runs": len(runs)}


def _mem(device: str) -> dict[str, float]:
    import torch

    if not device.startswith("cuda"):
        return {}
    return {"max_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)}


def bench_transformers(model: str, cfg: dict[str, Any], variant: str) -> dict[str, Any]:
    import torch

    from rag.components.transformers_chat_generator import TransformersChatGenerator

    device = cfg["device"]
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    dtype, _, flag = variant.partition("+")
    gen = TransformersChatGenerator(model=model, device=device, dtype=dtype, compile=flag == "compile",
                                    generation_kwargs={"max_tokens": cfg["max_tokens"]})
    t = time.perf_counter()
    gen.warm_up()
    load_s = time.perf_counter() - t
    msgs = rag_messages(cfg["chunks"], cfg["chunk_words"], cfg["seed"])
    g = {"max_tokens": cfg["max_tokens"], "min_tokens": cfg["max_tokens"], "temperature": 0.0, "repeat_penalty": 1.15}
    t = time.perf_counter()
    gen.run(msgs, generation_kwargs={**g, "max_tokens": 8, "min_tokens": 8})  # warm-up (kernels, compile)
    warm_s = time.perf_counter() - t
    runs = [_timed_stream(lambda cb, gen=gen: gen.run(msgs, generation_kwargs=g, streaming_callback=cb)["replies"][0])
            for _ in range(cfg["runs"])]
    # the same decode with bare generate(): what our component's streaming and prompt handling cost
    tok, m = gen._tokenizer, gen._model
    chat = [{"role": x.role.value, "content": x.text} for x in msgs]
    enc = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True).to(m.device)
    bare = []
    extra = {}
    for _ in range(cfg["runs"]):
        if gen._cache is not None:  # the same static cache (compiled decode) as the component
            gen._cache.reset()
            extra = {"past_key_values": gen._cache}
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.inference_mode():
            out = m.generate(**enc, max_new_tokens=cfg["max_tokens"], min_new_tokens=cfg["max_tokens"],
                             do_sample=False, pad_token_id=tok.pad_token_id, **extra)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        bare.append((out.shape[1] - enc["input_ids"].shape[1]) / (time.perf_counter() - t))
    res = {"backend": "transformers", "variant": variant, **gen.loaded, "load_s": round(load_s, 2),
           "first_call_s": round(warm_s, 2), **_summary(runs),
           "bare_generate_tok_s": round(statistics.median(bare), 1), **_mem(device)}
    res["overhead_vs_bare"] = round(1 - (res["completion_tokens"] / res["total_s"]) / res["bare_generate_tok_s"], 3)
    del gen, m
    return res


def make_gguf(model: str, cfg: dict[str, Any]) -> str:
    """Convert ``model`` to GGUF with llama.cpp's converter, then quantize it with llama-cpp-python."""
    import llama_cpp

    if not cfg["converter"] or not Path(cfg["converter"]).is_file():
        raise FileNotFoundError("--gguf convert needs --converter pointing at llama.cpp's convert_hf_to_gguf.py")
    work = Path(tempfile.mkdtemp(prefix="gguf-"))
    f16 = work / "model-f16.gguf"
    env = {**os.environ, "PYTHONPATH": str(Path(cfg["converter"]).parent / "gguf-py")}
    subprocess.run([sys.executable, cfg["converter"], model, "--outtype", "f16", "--outfile", str(f16)],
                   check=True, env=env, capture_output=True)
    qtype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{cfg['gguf_type'].upper()}")
    out = work / f"model-{cfg['gguf_type']}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = qtype
    if llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), params) != 0:
        raise RuntimeError(f"quantizing {f16} to {cfg['gguf_type']} failed")
    f16.unlink()
    return str(out)


def bench_llama_cpp(gguf: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp with every layer on the GPU, driven through ``Llama.create_chat_completion`` as
    ``LlamaCppChatGenerator`` drives it (the Haystack component itself imports torch, see ``llama_part``)."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return {"backend": "llama_cpp", "error": "llama-cpp-python has no GPU offload (not a CUDA build)"}
    threads = os.cpu_count() or 1
    t = time.perf_counter()
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=4096, n_batch=512, n_gpu_layers=-1, verbose=False, seed=0,
                          n_threads=threads, n_threads_batch=threads)
    load_s = time.perf_counter() - t
    sys_msg, user_msg = rag_messages(cfg["chunks"], cfg["chunk_words"], cfg["seed"], as_dicts=True)
    g = {"temperature": 0.0, "repeat_penalty": 1.15, "logit_bias": {llm.token_eos(): -1e9}}

    def once(max_tokens: int) -> dict[str, float]:
        stamps: list[float] = []
        t0 = time.perf_counter()
        for chunk in llm.create_chat_completion([sys_msg, user_msg], max_tokens=max_tokens, stream=True, **g):
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        t1 = time.perf_counter()
        n = len(stamps)
        return {"ttft_s": stamps[0] - t0, "total_s": t1 - t0, "completion_tokens": n, "prompt_tokens": None,
                "decode_tok_s": (n - 1) / (t1 - stamps[0]) if n > 1 else 0.0}

    once(8)
    runs = [once(cfg["max_tokens"]) for _ in range(cfg["runs"])]
    return {"backend": "llama_cpp", "gguf": Path(gguf).name, "n_gpu_layers": -1, "load_s": round(load_s, 2),
            **_summary(runs), "note": "completion_tokens = streamed chunks with text"}


def llama_part(model: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The llama.cpp measurement in a child process that never imports torch: a CUDA build of llama-cpp-python
    and PyTorch's CUDA wheels crash in one process on the measured image (segfault at model load)."""
    out = Path(tempfile.mkdtemp(prefix="llama-part-")) / "result.json"
    cmd = [sys.executable, "-m", "evals.gpu_generate_bench", "--child", "llama", "--model", model, "--out", str(out),
           *[a for k in ("gguf", "gguf_type", "converter", "max_tokens", "runs", "chunks", "chunk_words")
             for a in (f"--{k.replace('_', '-')}", str(cfg[k]))]]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        return {"backend": "llama_cpp", "error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    return json.loads(out.read_text())


def llama_child(cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        gguf = make_gguf(cfg["model"], cfg) if cfg["gguf"] == "convert" else cfg["gguf"]
        return bench_llama_cpp(gguf, cfg)
    except Exception as e:  # noqa: BLE001
        return {"backend": "llama_cpp", "error": f"{type(e).__name__}: {e}"[:500]}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch
    import transformers

    device = cfg["device"]
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here: pass --device=cpu for a smoke test")
    model, origin = ensure_weights(cfg["model"], cfg["seed"])
    env: dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__,
                           "cpu_count": os.cpu_count()}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(device)
    result: dict[str, Any] = {"config": cfg, "model_origin": origin, "env": env, "generators": []}
    for variant in [v for v in cfg["variants"].split(",") if v]:
        try:
            result["generators"].append(bench_transformers(model, cfg, variant))
        except Exception as e:  # noqa: BLE001 - report and go on with the next one
            result["generators"].append({"backend": "transformers", "variant": variant,
                                         "error": f"{type(e).__name__}: {e}"[:500]})
        logger.info("%s", result["generators"][-1])
    if cfg["gguf"]:
        result["generators"].append(llama_part(model, cfg))
        logger.info("%s", result["generators"][-1])
    return result


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m evals.gpu_generate_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in KNOBS.items():
        p.add_argument(f"--{k.replace('_', '-')}", dest=k, type=type(v), default=v)
    cfg = {**KNOBS, **vars(p.parse_args(argv or []))}
    if cfg["child"] == "llama":
        Path(cfg["out"]).write_text(json.dumps(llama_child(cfg)))
        return 0
    from evals.gpu_bench import emit

    emit(run(cfg), cfg["out"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
