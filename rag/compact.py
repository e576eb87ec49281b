"""Shipped models in compact int8 form, at run time: the fp32 rebuild (``materialize``).

Format ``docrag-int8-rowwise-v1`` (one folder; written by :func:`rag.training.compact.save_compact`):

- ``model.int8.safetensors``: every floating-point tensor of rank 2 (all Linear weights, the word, position
  and token-type embeddings, the classifier) as symmetric per-row int8 ``q`` with an fp16 scale per row
  (``<name>`` and ``<name>.__scale__``; ``w ~= q * scale``, ``scale = max|row| / 127``); other floating
  tensors (biases, LayerNorm) as fp16; integer buffers unchanged. ``int8=False`` stores everything fp16.
- ``compact.json``: format, name, source dtype per tensor, and which tensors were quantized.
- every other file of the source folder (config, tokenizer, sentence-transformers files), copied as is.

``materialize`` rebuilds a normal Hugging Face / sentence-transformers folder (fp32 ``model.safetensors``)
once under ``$DOCRAG_HOME/cache/models/<name>-<hash>`` (else ``~/.cache/docrag/models/...``), written in a
temporary folder and renamed into place, so concurrent callers are safe; later calls return the same path.

Only torch, safetensors and the standard library are imported here (the trainers import it on the GPU box);
writing the format is training's half (:mod:`rag.training.compact`).
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
SCALE_SUFFIX = ".__scale__"


def dequantize_rowwise(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float().unsqueeze(1)



def load_compact_state_dict(compact_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The fp32 (or original integer) state dict stored in a compact folder."""
    compact_dir = Path(compact_dir)
    meta = json.loads((compact_dir / META).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{compact_dir}: unknown compact format {meta.get('format')!r}")
    raw = load_file(str(compact_dir / WEIGHTS))
    out: dict[str, torch.Tensor] = {}
    for key, t in raw.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        if key + SCALE_SUFFIX in raw:
            out[key] = dequantize_rowwise(t, raw[key + SCALE_SUFFIX])
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
