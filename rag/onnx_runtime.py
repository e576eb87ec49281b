"""CPU inference through ONNX Runtime: export, optimize, quantize and cache a transformers model once.

Why not sentence-transformers' own ``backend="onnx"``/``"openvino"``: both load through Optimum
(``optimum-onnx`` pins ``transformers<4.58``, ``optimum-intel`` ``transformers<5.6``), which cannot be installed
next to our ``transformers==5.23``. ONNX Runtime itself can, so this module does the three steps Optimum would:

1. **export** with ``torch.onnx.export(dynamo=True)`` (the TorchScript exporter bakes transformers 5's
   shape-dependent mask code into constants and gives wrong outputs on other shapes), dynamic batch and length;
2. **optimize** with ONNX Runtime's transformer optimizer (SkipLayerNorm, BiasGelu fusions): the ``fp32`` variant;
3. **quantize** the optimized graph's MatMul weights to int8, per channel, activations quantized at run time
   (``quantize_dynamic``, the recipe of sentence-transformers' ``export_dynamic_quantized_onnx_model``), except
   the feed-forward output projections, which stay fp32 (see :func:`_ffn_output_matmuls`): the ``int8`` variant.

The result is cached under ``<model cache>/onnx/<name>-<task>-<variant>-<hash>/`` keyed by the hash of the
source folder's files, written in a temporary folder and renamed into place (concurrent callers are safe). The
folder also holds every non-weight file of the source (config, tokenizer, sentence-transformers files), so:

- for a sentence-transformers folder (embedder, cross-encoder) ``modules.json`` names :class:`OrtTransformer`,
  and ``SentenceTransformer(folder, trust_remote_code=True)`` / ``CrossEncoder(...)`` run on ONNX Runtime with
  sentence-transformers' own tokenization, length-sorted batching, pooling and normalisation;
- any other model (token classifier, extractive reader) is run by :class:`OrtModel`, a drop-in for the
  transformers model call: ``OrtModel.from_folder(folder)(**tokenizer_output).logits`` (or ``.start_logits`` /
  ``.end_logits`` for question answering).

```python
from rag.onnx_runtime import export_onnx, OrtModel
folder = export_onnx("path/to/squad-model", "question-answering", "int8")   # cached after the first call
out = OrtModel.from_folder(folder)(**tokenizer(question, context, return_tensors="pt"))
out.start_logits, out.end_logits                                            # torch tensors, as transformers gives
```

``python -m rag.onnx_runtime`` exports the packaged/shipped defaults (run by ``scripts/setup.sh``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rag.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

# task -> (transformers auto class, output names in order)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "feature-extraction": ("AutoModel", ("last_hidden_state",)),
    "sequence-classification": ("AutoModelForSequenceClassification", ("logits",)),
    "token-classification": ("AutoModelForTokenClassification", ("logits",)),
    "question-answering": ("AutoModelForQuestionAnswering", ("start_logits", "end_logits")),
}
VARIANTS = ("fp32", "int8")
MODEL_FILE = "model.onnx"
META_FILE = "onnx.json"
# bump when the export recipe changes: every cached folder is then rebuilt
EXPORT_VERSION = "2"
_WEIGHT_FILES = {"model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "training_args.bin",
                 "compact.json", "model.int8.safetensors"}
_ST_TRANSFORMER_TYPES = {"sentence_transformers.models.Transformer",
                         "sentence_transformers.base.modules.transformer.Transformer",
                         "sentence_transformers.base.modules.Transformer"}
ORT_TRANSFORMER_TYPE = "rag.onnx_runtime.OrtTransformer"


# --- export ---------------------------------------------------------------------------------------------
def _source_hash(model_dir: Path, task: str, variant: str) -> str:
    h = hashlib.sha256(f"{EXPORT_VERSION}\x00{task}\x00{variant}".encode())
    for p in sorted(model_dir.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and p.suffix != ".md":
            h.update(str(p.relative_to(model_dir)).encode())
            h.update(str(p.stat().st_size).encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


def onnx_cache_root() -> Path:
    from rag.models import cache_root

    return cache_root() / "onnx"


def cached_folder(model_dir: str | os.PathLike, task: str, variant: str,
                  cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`export_onnx` puts (or has put) this model's ONNX folder."""
    src = Path(model_dir)
    root = Path(cache_dir) if cache_dir is not None else onnx_cache_root()
    name = src.parent.name if src.name == "model" else src.name  # packaged models keep weights in .../<pkg>/model
    return root / f"{name}-{task}-{variant}-{_source_hash(src, task, variant)}"


def export_onnx(model_dir: str | os.PathLike, task: str, variant: str = "int8",
                cache_dir: str | os.PathLike | None = None) -> Path:
    """Export a local transformers / sentence-transformers folder to ONNX once and return the cached folder.

    :param model_dir: a folder loadable by ``from_pretrained`` (fp32 weights; a shipped compact folder must be
        materialized first, ``rag.models`` does that).
    :param task: one of :data:`TASKS` (``feature-extraction`` for embedders, ``sequence-classification`` for
        cross-encoders, ``token-classification``, ``question-answering``).
    :param variant: ``int8`` (dynamically quantized) or ``fp32`` (graph-optimized only).
    :param cache_dir: parent of the cached folders (default ``<model cache>/onnx``).
    :returns: the folder with ``model.onnx``, ``onnx.json`` and the source's config/tokenizer files.
    :raises ValueError: unknown task or variant.
    :raises ModelNotFoundError: ``model_dir`` is not a model folder, or the export failed.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    src = Path(model_dir)
    if not (src / "config.json").is_file():
        raise ModelNotFoundError(f"{src} is not a transformers model folder (no config.json) to export to ONNX")
    target = cached_folder(src, task, variant, cache_dir)
    if (target / MODEL_FILE).is_file() and (target / META_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _export_into(src, task, variant, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MODEL_FILE).is_file():
                raise
    except ModelNotFoundError:
        raise
    except Exception as e:  # any exporter/optimizer failure: the caller falls back to torch
        raise ModelNotFoundError(f"ONNX export of {src} ({task}, {variant}) failed: {type(e).__name__}: {e}") from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Exported %s to ONNX (%s, %s) in %s", src, task, variant, target)
    return target


class _Outputs(torch.nn.Module):
    """Positional inputs -> a tuple of the named outputs (what the ONNX graph exposes)."""

    def __init__(self, model: Any, outputs: tuple[str, ...], with_token_types: bool) -> None:
        super().__init__()
        self.model = model
        self.outputs = outputs
        self.with_token_types = with_token_types

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        kwargs = {"token_type_ids": token_type_ids} if self.with_token_types else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return tuple(out[name] for name in self.outputs)


def _export_into(src: Path, task: str, variant: str, dst: Path) -> None:
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    auto_cls, outputs = TASKS[task]
    model = getattr(transformers, auto_cls).from_pretrained(str(src), attn_implementation="eager").eval()
    config = model.config
    with_types = getattr(config, "type_vocab_size", 0) > 0
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])
    # two texts of different lengths: padding in the example keeps the mask path general
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2178, 102, 0, 0, 0]], dtype=torch.long)
    example = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    if with_types:
        example["token_type_ids"] = torch.zeros_like(ids)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    raw = dst / "raw" / MODEL_FILE
    raw.parent.mkdir()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Outputs(model, outputs, with_types), tuple(example[n] for n in names), str(raw),
                          input_names=names, output_names=list(outputs),
                          dynamic_shapes={n: {0: batch, 1: seq} for n in names}, dynamo=True, optimize=True,
                          verbose=False)
    heads = getattr(config, "num_attention_heads", 0) or 0
    hidden = getattr(config, "hidden_size", 0) or 0
    opt_type = "bert" if config.model_type in ("bert", "roberta", "distilbert", "xlm-roberta", "electra") else None
    optimized = dst / "opt" / MODEL_FILE
    optimized.parent.mkdir()
    if opt_type:
        opt = optimize_model(str(raw), model_type=opt_type, num_heads=heads, hidden_size=hidden)
        fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(str(optimized))
    else:
        fused = {}
        shutil.copytree(raw.parent, optimized.parent, dirs_exist_ok=True)
    if variant == "int8":
        keep = _ffn_output_matmuls(optimized)
        quantize_dynamic(str(optimized), str(dst / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=keep)
    else:
        _save_single_file(optimized, dst / MODEL_FILE)
    shutil.rmtree(raw.parent)
    shutil.rmtree(optimized.parent)
    for item in src.iterdir():
        if item.name in _WEIGHT_FILES or item.name.startswith(".") or item.suffix == ".md":
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name)
        else:
            shutil.copy2(item, dst / item.name)
    _point_modules_at_ort(dst)
    import onnxruntime

    meta = {"source": str(src), "task": task, "variant": variant, "outputs": list(outputs), "inputs": names,
            "fused": fused, "export_version": EXPORT_VERSION, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__}
    (dst / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _ffn_output_matmuls(path: Path) -> list[str]:
    """MatMuls fed by a GELU: the feed-forward output projections, kept fp32 in the int8 variant.

    Their inputs have the widest activation range of the encoder, which per-tensor dynamic quantization handles
    worst: on 200 SQuAD passages quantizing them too gave MiniLM embeddings min cosine 0.989 to fp32 torch;
    keeping them fp32 gives 0.993 (mean 0.994 -> 0.997) for a third of the weight FLOPs left in fp32.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input and n.input[0] in producer
            and producer[n.input[0]].op_type in ("Gelu", "BiasGelu", "FastGelu")]


def _save_single_file(src: Path, dst: Path) -> None:
    """Re-save an ONNX model with its weights inside the file (the exporter may write an external .data file)."""
    import onnx

    onnx.save_model(onnx.load(str(src)), str(dst), save_as_external_data=False)


def _point_modules_at_ort(folder: Path) -> None:
    """In a sentence-transformers folder, make the root Transformer module the ONNX Runtime one."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return
    entries = json.loads(modules.read_text())
    for entry in entries:
        if entry.get("type") in _ST_TRANSFORMER_TYPES and entry.get("path", "") == "":
            entry["type"] = ORT_TRANSFORMER_TYPE
    modules.write_text(json.dumps(entries, indent=2) + "\n")


def is_ort_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MODEL_FILE).is_file() and (Path(path) / META_FILE).is_file()


# --- run ------------------------------------------------------------------------------------------------
class OrtOutput(dict):
    """Model outputs by name, readable as ``out["logits"]`` or ``out.logits`` (like transformers' ModelOutput)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e


def session_options(threads: int | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between ops: on shared cores (the app, llama.cpp, other processes) spinning threads
    # steal the CPU the next op needs (measured: 20-pair rerank median 8.6 s spinning vs 7.7 s not, busy 2 cores)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # no CPU memory arena: it keeps the peak of every batch shape it saw (measured, 4 text PDFs with NER through
    # the pipelined ingest in a fresh process: peak RSS 3,127 MB with the arena, 1,832 MB without, 43.7 s vs 42.3 s)
    so.enable_cpu_mem_arena = False
    if threads:
        so.intra_op_num_threads = threads
    return so


class OrtModel(torch.nn.Module):
    """An ONNX Runtime session behind the transformers model call: ``model(input_ids=..., attention_mask=...)``
    returns :class:`OrtOutput` with torch tensors (CPU). Holds no torch weights; ``.to()``/``.eval()`` are no-ops.
    """

    def __init__(self, onnx_path: str | os.PathLike, config: Any, outputs: tuple[str, ...] | list[str],
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__()
        self.config = config
        self.onnx_path = str(onnx_path)
        self.session = ort.InferenceSession(self.onnx_path, session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = list(outputs)
        # sentence-transformers reads .device from a model tensor; this one says "cpu"
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, threads: int | None = None) -> OrtModel:
        """Load a folder written by :func:`export_onnx`."""
        from transformers import AutoConfig

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        return cls(folder / MODEL_FILE, AutoConfig.from_pretrained(str(folder)), meta["outputs"], threads)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> OrtOutput:
        ids = input_ids.detach().cpu().numpy().astype(np.int64, copy=False)
        given = {"input_ids": ids,
                 "attention_mask": None if attention_mask is None else attention_mask.detach().cpu().numpy(),
                 "token_type_ids": None if token_type_ids is None else token_type_ids.detach().cpu().numpy()}
        if given["attention_mask"] is None:
            given["attention_mask"] = np.ones_like(ids)
        if given["token_type_ids"] is None:
            given["token_type_ids"] = np.zeros_like(ids)
        feeds = {name: given[name].astype(np.int64, copy=False) for name in self._inputs}
        values = self.session.run(self._outputs, feeds)
        return OrtOutput({name: torch.from_numpy(v) for name, v in zip(self._outputs, values, strict=True)})


def _ort_transformer_class() -> type:
    from sentence_transformers.base.modules.transformer import Transformer

    class OrtTransformer(Transformer):
        """sentence-transformers' Transformer module with the model call on ONNX Runtime (see module doc)."""

        def _load_model(self, model_name_or_path: str, transformer_task: str, config: Any, backend: str,
                        is_peft_model: bool, **model_kwargs: Any) -> Any:
            folder = Path(model_name_or_path)
            if not is_ort_folder(folder):
                raise ModelNotFoundError(f"{folder} holds no {MODEL_FILE}/{META_FILE} (export it with "
                                         "rag.onnx_runtime.export_onnx)")
            return OrtModel.from_folder(folder, threads=model_kwargs.get("num_threads"))

    OrtTransformer.__module__ = __name__
    OrtTransformer.__qualname__ = "OrtTransformer"
    return OrtTransformer


def __getattr__(name: str) -> Any:  # sentence-transformers imports OrtTransformer by name from modules.json
    if name == "OrtTransformer":
        cls = _ort_transformer_class()
        globals()["OrtTransformer"] = cls
        return cls
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> int:
    """Export the packaged/shipped default models (embedder, reranker, NER) to their gated ONNX variants."""
    import argparse

    from rag import models

    p = argparse.ArgumentParser(prog="python -m rag.onnx_runtime", description=main.__doc__)
    p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    failed = 0
    for kind in models.ONNX_VARIANTS:
        try:
            resolved = models.resolve_default(kind)
            if resolved is None or resolved.path == "en_core_web_sm":
                continue
            folder = export_onnx(resolved.path, models.ONNX_TASKS[kind], models.ONNX_VARIANTS[kind])
            print(f"[onnx] {kind}: {folder}")
        except (ModelNotFoundError, OSError) as e:
            failed += 1
            print(f"[onnx] {kind}: not exported ({e}); it runs on torch until exported", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
