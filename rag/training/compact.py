"""Writing shipped models in compact int8 form (training's half; reading and the fp32 rebuild used at run time
live in :mod:`rag.compact`, re-exported here for the trainers).

Only torch, safetensors and the standard library are imported here (the module also runs on the GPU box).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rag.compact import (  # noqa: F401 - the trainers' names for the run-time half
    FORMAT,
    META,
    SCALE_SUFFIX,
    WEIGHTS,
    compact_hash,
    dequantize_rowwise,
    load_compact_state_dict,
    materialize,
)

_SKIP = {"model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "training_args.bin"}


def quantize_rowwise(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: returns ``(q int8 [rows, cols], scale fp16 [rows])``."""
    w = w.detach().float()
    amax = w.abs().amax(dim=1)
    scale = (amax / 127.0).clamp(min=1e-12).to(torch.float16)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # fp16 underflow of tiny rows
    q = torch.round(w / scale.float().unsqueeze(1)).clamp_(-127, 127).to(torch.int8)
    return q, scale


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
                tensors[key], tensors[key + SCALE_SUFFIX] = q, s
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


def folder_size(path: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
