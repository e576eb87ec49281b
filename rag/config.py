"""The one typed settings object of docrag.

Values come from, in increasing priority:

1. the defaults below,
2. a TOML file (``DOCRAG_CONFIG`` or ``<home>/docrag.toml`` or ``./docrag.toml``), either flat or with the
   keys under a ``[docrag]`` table,
3. ``DOCRAG_<FIELD>`` environment variables (e.g. ``DOCRAG_QDRANT_URL``, ``DOCRAG_CHUNK_SIZE``),
4. keyword overrides passed in code (``Settings.load(home=..., top_k=...)``).

Only this module reads the TOML file and the environment; components get plain values.
Unknown TOML keys fail loudly (a typo must not silently do nothing).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.limits import ParseLimits
from rag.errors import ConfigError

ENV_PREFIX = "DOCRAG_"


class Settings(BaseModel):
    """All docrag settings. See the README's *Configuration* section for each field."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- storage -------------------------------------------------------------------------------
    home: Path = Field(default=Path(".docrag"), description="Working directory for the store, caches and logs.")
    qdrant_url: str | None = Field(default=None, description="Qdrant server URL; embedded store when unset.")
    qdrant_path: Path | None = Field(default=None, description="Embedded Qdrant folder (default <home>/qdrant).")
    qdrant_api_key: str | None = None
    qdrant_timeout: int = Field(default=30, ge=1)
    collection: str = Field(default="docrag", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    shard_number: int = Field(default=1, ge=1, description="Shards when the collection is created on a server.")
    replication_factor: int = Field(default=1, ge=1, description="Replicas of each shard on a Qdrant cluster.")
    hybrid_prefetch: int | None = Field(
        default=None, ge=1, description="Hybrid candidates per side (dense, BM25) before fusion; None = "
        "max(100, top_k).")
    fusion: Literal["rrf", "dbsf"] = Field(default="rrf", description="How hybrid search fuses its two sides "
                                           "(RRF k=2 beat k=60 and DBSF on SQuAD dev: evals/reports/fusion-dev.json).")
    rrf_k: int = Field(default=2, ge=1, description="RRF constant (Qdrant's default is 2).")
    hnsw_threshold: int = Field(
        default=100_000, ge=0, description="Embedded store: HNSW-index the dense vectors from this many chunks "
        "on (exact search below; 0 = never). See the README's benchmarks.")
    hnsw_ef: int = Field(default=128, ge=1, description="HNSW search beam once indexed.")

    # --- ingestion -----------------------------------------------------------------------------
    chunk_size: int = Field(default=180, ge=16, le=4096, description="Target chunk length in words.")
    chunk_overlap: int = Field(default=30, ge=0, description="Words repeated between consecutive chunks.")
    max_file_mb: float = Field(default=100.0, gt=0, description="Files larger than this are refused.")
    # parse budget per file (ingest.limits.ParseLimits); each refusal names the setting that raises it
    parse_workers: int = Field(default=1, ge=0, description="Parse worker processes (time/memory limits "
                               "are enforced there); 0 = parse in-process, static limits only.")
    parse_timeout_s: float = Field(default=300.0, gt=0, description="Wall-clock seconds one file may parse.")
    parse_memory_mb: int = Field(default=3072, gt=0, description="Resident memory ceiling of a parse worker.")
    max_text_mb: float = Field(default=20.0, gt=0, description="Text-like files (txt, md, csv, html, ...).")
    max_zip_mb: float = Field(default=1024.0, gt=0, description="Uncompressed size of DOCX/XLSX/PPTX/ODT/EPUB.")
    max_zip_members: int = Field(default=10_000, gt=0, description="Members of a zip container.")
    max_pages: int = Field(default=5_000, gt=0, description="Pages of a PDF, slides of a PPTX, sheets of XLSX.")
    max_image_mpix: float = Field(default=100.0, gt=0, description="Megapixels of an image (PDF pages are "
                                  "OCRed at a lower dpi instead).")
    pdf_strategy: Literal["fast", "unstructured", "ocr_only", "auto"] = "fast"
    ocr: bool = Field(default=True, description="OCR image-only PDF pages and images with tesseract.")
    ocr_languages: str = "eng"
    embed_batch_size: int = Field(default=64, ge=1)
    ingest_batch_chunks: int = Field(default=256, ge=1, description="Chunks of several files that go through NER, embedding and the store write together (pipelined ingest).")
    extract_entities: bool = Field(default=True, description="Run NER at ingest time and store entities.")

    # --- models (HF id, local path, or empty for the packaged default) -------------------------
    embedder: str = ""
    reranker: str = Field(default="", description="Cross-encoder; empty = shipped models/reranker; 'none' = off.")
    generator: str = Field(default="", description="GGUF file, a short name installed by `docrag models install` "
                           "(e.g. qwen2.5-coder-0.5b), or an HF causal-LM id/folder for the transformers backend; "
                           "empty = packaged SmolLM2-135M-Instruct Q4_1.")
    generator_backend: Literal["auto", "llama_cpp", "transformers"] = Field(
        default="auto", description="auto = llama.cpp for a GGUF on CPU; transformers for HF models and on CUDA "
        "(see rag.graph.generator_backend).")
    generator_quantization: Literal["none", "4bit", "8bit"] = Field(
        default="none", description="transformers backend on CUDA: load weights in 4/8 bit with bitsandbytes.")
    reader: str = Field(default="", description="Extractive QA model; empty = shipped models/reader; 'none' = off.")
    ner_model: str = Field(default="", description="'spacy', a token-classification model, or empty = best.")
    summarizer: str = Field(default="", description="empty/'extractive' = central sentences (our embedder, MMR); "
                            "'generator' = the GGUF model; else a T5/seq2seq id or path (output fact-checked).")
    device: str = Field(default="auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    model_dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="Torch precision of the embedder, reranker, NER and reader: auto = fp16 on "
        "CUDA (embedder, reranker), bf16 on CPUs with native bf16 (see rag.models.torch_dtype).")
    inference_backend: Literal["auto", "torch", "onnx"] = Field(
        default="auto", description="Embedder, reranker, NER and reader runtime: auto = torch on CUDA and on "
        "CPUs with native bf16 (AMX-BF16, AVX512-BF16; in bf16, see model_dtype), ONNX Runtime (int8 where its "
        "quality gate passed) on the other CPUs (see rag.models.inference_backend).")

    # --- query ---------------------------------------------------------------------------------
    top_k: int = Field(default=5, ge=1, le=100, description="Chunks given to the generator.")
    retrieve_k: int = Field(default=20, ge=1, le=1000, description="Candidates fetched before reranking.")
    rerank: bool = True
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    n_gpu_layers: int | None = Field(
        default=None, ge=-1, description="llama.cpp layers on the GPU (-1 = all); None = all on CUDA, else 0.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1, le=8192)
    repeat_penalty: float = Field(default=1.15, ge=1.0, le=2.0)
    max_question_chars: int = Field(default=2000, ge=10, le=100_000,
                                    description="Longer questions are refused (the app's input stops there).")
    min_rerank_score: float = Field(
        default=-4.0, description="Without a reader: below this best reranker logit the question is declined."
    )
    answer_mode: Literal["evidence", "extractive", "generator"] = Field(
        default="evidence", description="evidence = reader spans -> calibrated decline -> generator writes from the "
        "spans, checked against them (falls back to the span); extractive = the reader's span only; generator = "
        "the generator over whole chunks (no reader).")
    min_confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Decline below this calibrated answer probability; None = the "
        "threshold calibrated with the shipped reader (models/reader/calibration.json).")
    reader_top_k: int = Field(default=5, ge=1, le=50, description="Reranked chunks the reader reads.")
    reader_sentence_switch: float = Field(
        default=2.0, ge=0.0, le=20.0, description="The reader's best prose span moves to the best span of another "
        "sentence of its window holding more of the question's content words when that span's margin is at most this "
        "much lower (0 = never); chosen on the calibration articles (rag.components.extractive_reader).")
    reader_rerank_weight: float = Field(
        default=1.1, ge=0.0, le=10.0, description="The reader ranks its spans by margin + this x the chunk's "
        "cross-encoder logit, so the chunk an answer comes from weighs the reranker's judgement too (0 = margin "
        "alone); chosen on the calibration articles (README, *The reader and its calibration*).")
    passage_answers: bool = Field(
        default=True, description="Answer a question about what the documents say (\"What does the memo say about "
        "X?\") with the sentences of the chunks the reranker is sure it is about (calibrated, models/reranker/"
        "calibration.json) instead of declining for want of a span; false = span answers only.")
    answer_rerank_k: int | None = Field(
        default=10, ge=1, le=1000, description="Fused candidates the cross-encoder rescores for an answer (the "
        "first of the retrieve_k; search and the retrieval evals rescore all retrieve_k); None = retrieve_k. "
        "10 was chosen with `python -m evals.answer_depth` on the calibration articles.")

    # --- service -------------------------------------------------------------------------------
    api_keys: str = Field(default="", description="Comma-separated API keys for `docrag serve`.")
    api_keys_file: Path | None = None
    rate_limit_per_minute: int = Field(default=60, ge=1)
    max_upload_mb: float = Field(default=50.0, gt=0)
    upload_quota_mb: float = Field(default=2048.0, gt=0, description="Stored uploads per tenant (service) "
                                   "or per home (app).")

    @field_validator("home", "qdrant_path", "api_keys_file", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        if isinstance(v, str) and v:
            return Path(os.path.expanduser(v))
        return v or None if v == "" else v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})")
        return self

    # --- derived -------------------------------------------------------------------------------
    def parse_limits(self) -> ParseLimits:
        """The per-file parse budget as the plain values ``ingest`` takes."""
        return ParseLimits(max_file_mb=self.max_file_mb, max_text_mb=self.max_text_mb, max_zip_mb=self.max_zip_mb,
                           max_zip_members=self.max_zip_members, max_pages=self.max_pages,
                           max_image_mpix=self.max_image_mpix, timeout_s=self.parse_timeout_s,
                           memory_mb=self.parse_memory_mb)

    @property
    def store_path(self) -> Path:
        return self.qdrant_path or (self.home / "qdrant")

    @property
    def embedded(self) -> bool:
        return not self.qdrant_url

    def store_config(self, collection: str | None = None, embedding_dim: int = 384) -> Any:
        """The store layer's plain-value config (``ingest.store.StoreConfig``) for a collection."""
        from ingest.store.schema import StoreConfig

        return StoreConfig(collection=collection or self.collection, embedding_dim=embedding_dim,
                           path=self.store_path, url=self.qdrant_url, api_key=self.qdrant_api_key,
                           timeout=self.qdrant_timeout, shard_number=self.shard_number,
                           replication_factor=self.replication_factor, prefetch_limit=self.hybrid_prefetch,
                           fusion=self.fusion, rrf_k=self.rrf_k, hnsw_threshold=self.hnsw_threshold,
                           hnsw_ef=self.hnsw_ef)

    def public_dict(self) -> dict[str, Any]:
        """Settings without secrets, for reports and logs."""
        d = self.model_dump(mode="json")
        for k in ("qdrant_api_key", "api_keys"):
            if d.get(k):
                d[k] = "***"
        return d

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from defaults, TOML, ``DOCRAG_*`` env vars and ``overrides`` (highest priority)."""
        values: dict[str, Any] = {}
        env = _env_values()
        home = overrides.get("home") or env.get("home") or ".docrag"
        path = _find_toml(config_file, Path(os.path.expanduser(str(home))))
        if path is not None:
            values.update(_read_toml(path))
        values.update(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "settings"
            raise ConfigError(
                f"invalid setting {loc!r}: {first['msg']} (check DOCRAG_{loc.upper()} or docrag.toml)"
            ) from e


def _env_values() -> dict[str, Any]:
    fields = Settings.model_fields
    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.startswith(ENV_PREFIX) or key == "DOCRAG_CONFIG":
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name in fields:
            out[name] = value
    return out


def _find_toml(explicit: str | Path | None, home: Path) -> Path | None:
    if explicit is None:
        explicit = os.environ.get("DOCRAG_CONFIG")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist (set DOCRAG_CONFIG to a readable TOML file)")
        return p
    for p in (home / "docrag.toml", Path("docrag.toml")):
        if p.is_file():
            return p
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    if "docrag" in data and isinstance(data["docrag"], dict):
        data = data["docrag"]
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {path}")
    return data
