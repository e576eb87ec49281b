"""Compact int8 storage for shipped models, and the fp32 rebuild used at run time.

Format ``docrag-int8-rowwise-v1`` (one folder):

- ``model.int8.safetensors``: every floating-point tensor of rank 2 (all Linear weights, the word, position
  and token-type embeddings, the classifier) as symmetric per-row int8 ``q`` with an fp16 scale per row
  (``<name>`` and ``<name>.__scale__``; ``w ~= q * scale``, ``scale = max|row| / 127``); other floating
  tensors (biases, LayerNorm) as fp16; integer buffers unchanged. ``int8=False`` stores everything fp16.
- ``compact.json``: format, name, source dtype per tensor, and which tensors were quantized.
- every other file of the source folder (config, tokenizer, sentence-transformers files), copied as is.

``materialize`` rebuilds a normal Hugging Face / sentence-transformers folder (fp32 ``model.safetensors``)
once under ``$DOCRAG_HOME/cache/models/<name>-<hash>`` (else ``~/.cache/docrag/models/...``), written in a
temporary folder and renamed into place, so concurrent callers are safe; later calls return the same path.

Only torch, safetensors and the standard library are imported here (the module also runs on the GPU box).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT = "docrag-int8-rowwise-v1"
WEIGHTS = "model.int8.safetensors"
META = "compact.json"
_SCALE = ".__scale__"
_SKIP = {"model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "training_args.bin"}


def quantize_rowwise(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: returns ``(q int8 [rows, cols], scale fp16 [rows])``."""
    w = w.detach().float()
    amax = w.abs().amax(dim=1)
    scale = (amax / 127.0).clamp(min=1e-12).to(torch.float16)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # fp16 underflow of tiny rows
    q = torch.round(w / scale.float().unsqueeze(1)).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_rowwise(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float().unsqueeze(1)


def _load_state_dict(hf_model_dir: Path) -> dict[str, torch.Tensor]:
    st = hf_model_dir / "model.safetensors"
    if st.is_file():
        return load_file(str(st))
    index = hf_model_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(hf_model_dir / f)))
        return out
    raise FileNotFoundError(f"{hf_model_dir} holds no model.safetensors (save the model with safetensors)")


def save_compact(hf_model_dir: str | os.PathLike, out_dir: str | os.PathLike, *, int8: bool = True,
                 name: str | None = None) -> Path:
    """Write the compact form of the model folder ``hf_model_dir`` into ``out_dir`` (created or replaced).

    :param hf_model_dir: a folder saved by ``save_pretrained`` (transformers or sentence-transformers).
    :param out_dir: destination folder; existing compact files in it are overwritten.
    :param int8: per-row int8 for rank-2 float tensors; False keeps every float tensor as fp16.
    :param name: the model's name in the cache folder (default: the destination folder's name).
    :returns: ``out_dir`` as a Path.
    """
    src, dst = Path(hf_model_dir), Path(out_dir)
    if src.resolve() == dst.resolve():
        raise ValueError("save_compact needs a destination other than the source folder")
    state = _load_state_dict(src)
    dst.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    dtypes: dict[str, str] = {}
    quantized: list[str] = []
    for key, t in state.items():
        dtypes[key] = str(t.dtype).replace("torch.", "")
        if t.is_floating_point():
            if int8 and t.dim() == 2:
                q, s = quantize_rowwise(t)
                tensors[key], tensors[key + _SCALE] = q, s
                quantized.append(key)
            else:
                tensors[key] = t.detach().to(torch.float16).contiguous()
        else:
            tensors[key] = t.detach().contiguous()
    save_file(tensors, str(dst / WEIGHTS), metadata={"format": FORMAT})
    for item in src.iterdir():
        if item.name in _SKIP or item.name.startswith(("model-0", ".")) or item.name in (WEIGHTS, META):
            continue
        target = dst / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    meta = {"format": FORMAT, "name": name or dst.name, "int8": int8, "dtypes": dtypes, "quantized": quantized}
    (dst / META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return dst


def load_compact_state_dict(compact_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The fp32 (or original integer) state dict stored in a compact folder."""
    compact_dir = Path(compact_dir)
    meta = json.loads((compact_dir / META).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{compact_dir}: unknown compact format {meta.get('format')!r}")
    raw = load_file(str(compact_dir / WEIGHTS))
    out: dict[str, torch.Tensor] = {}
    for key, t in raw.items():
        if key.endswith(_SCALE):
            continue
        if key + _SCALE in raw:
            out[key] = dequantize_rowwise(t, raw[key + _SCALE])
        elif t.is_floating_point():
            out[key] = t.float()
        else:
            out[key] = t
    return out


def compact_hash(compact_dir: str | os.PathLike) -> str:
    """sha256 over the compact folder's files (names and bytes), first 12 hex digits."""
    h = hashlib.sha256()
    root = Path(compact_dir)
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in _DOCS and not p.name.endswith(".json.gz"):
            h.update(str(p.relative_to(root)).encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


# Files of a compact folder that document or evaluate the model (not part of it, not hashed).
_DOCS = {"MODEL_CARD.md", "metrics.json", "DEFAULT"}


def cache_root() -> Path:
    from rag.models import cache_root as root  # the one definition, importable without torch

    return root()


_NOT_MODEL = _DOCS | {WEIGHTS, META}


def materialize(compact_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """Rebuild the fp32 model folder of ``compact_dir`` in the cache (once) and return its path.

    :param compact_dir: a folder written by ``save_compact``.
    :param cache_dir: parent of the rebuilt folders (default: ``cache_root()``).
    :returns: path of a folder loadable by ``from_pretrained`` / ``CrossEncoder``.
    :raises FileNotFoundError: ``compact_dir`` is not a compact model folder.
    """
    src = Path(compact_dir)
    if not (src / META).is_file() or not (src / WEIGHTS).is_file():
        raise FileNotFoundError(f"{src} is not a compact model folder (no {META} / {WEIGHTS})")
    meta = json.loads((src / META).read_text())
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / f"{meta.get('name') or src.name}-{compact_hash(src)}"
    if (target / "model.safetensors").is_file():
        return str(target)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        state = load_compact_state_dict(src)
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        for item in src.iterdir():
            if item.name in _NOT_MODEL or item.name.endswith(".json.gz"):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def folder_size(path: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
