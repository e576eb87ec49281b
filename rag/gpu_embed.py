"""High-throughput encoder inference for GPUs: bi-encoder embeddings and cross-encoder scores.

Imports only torch, transformers and numpy (no Haystack), so ``evals/gpu_bench.py`` runs on a bare CUDA box.
What makes it fast, in order of effect:

1. **Half precision weights** (fp16 or bf16) and **large batches** (hundreds of 256-token sequences).
2. **Length bucketing**: texts are sorted by token count so a batch pads to its own longest text; a batch
   whose texts all have one length is run without an attention mask, which lets torch SDPA pick its flash
   kernel. With the optional ``gpu`` extra (``flash-attn``) the model uses ``flash_attention_2`` instead,
   which unpads (varlen) any batch.
3. **Host/device overlap**: a producer thread tokenizes (the Rust tokenizer releases the GIL; shards run in
   parallel threads) and packs batches into pinned memory while the GPU runs earlier batches; copies go
   through a side CUDA stream with ``non_blocking=True``; results stay on the GPU until one final copy.

```python
enc = FastEncoder("path/to/all-MiniLM-L6-v2", device="cuda", dtype="fp16", batch_size=512)
enc.warm_up()
vectors = enc.embed(texts)            # (n, 384) float32, L2-normalised mean pooling
scores = enc.score(queries, passages) # cross-encoder logits (needs a sequence-classification head)
```
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DTYPES = ("fp32", "fp16", "bf16")


def attention_backend(device: str, dtype: str) -> str:
    """``flash_attention_2`` when flash-attn is installed and usable here, else torch ``sdpa``."""
    if device.startswith("cuda") and dtype in ("fp16", "bf16") and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return "sdpa"


@dataclass
class _Batch:
    index: Any  # torch int64 tensor of original positions
    input_ids: Any
    attention_mask: Any | None  # None when every row has the batch's length
    token_type_ids: Any | None
    tokens: int


@dataclass
class _Tokens:
    """A tokenized wave: ids (n, width) int32 zero-padded, lengths (n,), type ids for pairs."""

    ids: np.ndarray
    lengths: np.ndarray
    type_ids: np.ndarray | None

    @classmethod
    def concat(cls, parts: list[_Tokens]) -> _Tokens:
        if len(parts) == 1:
            return parts[0]
        width = max(p.ids.shape[1] for p in parts)

        def pad(a: np.ndarray) -> np.ndarray:
            return a if a.shape[1] == width else np.pad(a, ((0, 0), (0, width - a.shape[1])))

        tt = np.concatenate([pad(p.type_ids) for p in parts]) if parts[0].type_ids is not None else None
        return cls(np.concatenate([pad(p.ids) for p in parts]), np.concatenate([p.lengths for p in parts]), tt)


def _encode_arrays(backend: Any, texts: list[str], pairs: list[str] | None) -> _Tokens:
    """Encode with a ``tokenizers.Tokenizer`` (truncation already enabled) into padded int32 arrays."""
    inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
    encode = getattr(backend, "encode_batch_fast", None) or backend.encode_batch  # fast: no char offsets
    encs = encode(inputs, add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int32, count=len(encs))
    width = int(lengths.max()) if len(encs) else 1
    if len(encs) and int(lengths.min()) == width:  # one C-level conversion when nothing needs padding
        ids = np.array([e.ids for e in encs], dtype=np.int32)
        tt = np.array([e.type_ids for e in encs], dtype=np.int32) if pairs is not None else None
    else:
        ids = np.zeros((len(encs), width), dtype=np.int32)
        tt = np.zeros((len(encs), width), dtype=np.int32) if pairs is not None else None
        for j, e in enumerate(encs):
            ids[j, :lengths[j]] = e.ids
            if tt is not None:
                tt[j, :lengths[j]] = e.type_ids
    return _Tokens(ids, lengths, tt)


_WORKER_BACKEND: Any = None


def _init_worker(tokenizer_json: str, max_length: int) -> None:
    global _WORKER_BACKEND
    from tokenizers import Tokenizer

    _WORKER_BACKEND = Tokenizer.from_file(tokenizer_json)
    _WORKER_BACKEND.no_padding()
    _WORKER_BACKEND.enable_truncation(max_length)


def _encode_in_worker(job: tuple[list[str], list[str] | None]) -> _Tokens:
    return _encode_arrays(_WORKER_BACKEND, *job)


class FastEncoder:
    """Batched encoder inference with length bucketing, half precision and host/device overlap.

    :param model: a local model folder (sentence-transformers or plain transformers layout).
    :param device: ``cuda``, ``cuda:1`` or ``cpu``.
    :param dtype: ``fp16``, ``bf16`` or ``fp32`` (``fp32`` is used on CPU whatever is asked).
    :param max_length: tokens per text (longer texts are truncated).
    :param batch_size: texts per batch.
    :param tokenizer_threads: parallel tokenizer shards.
    :param kind: ``embed`` (mean-pooled, normalised vectors) or ``rerank`` (sequence-classification logits).
    :param compile: run the model through ``torch.compile``.
    :param tokenizer_processes: tokenize in this many worker processes (spawned; they load only
        ``tokenizer.json``) instead of threads; 0 = threads.
    :raises ValueError: on an unknown dtype or kind, or a non-positive size.
    """

    def __init__(self, model: str, device: str = "cuda", dtype: str = "fp16", max_length: int = 256,
                 batch_size: int = 512, tokenizer_threads: int = 16, kind: str = "embed",
                 compile: bool = False, tokenizer_processes: int = 0) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if kind not in ("embed", "rerank"):
            raise ValueError(f"kind must be 'embed' or 'rerank', got {kind!r}")
        for name, value in (("max_length", max_length), ("batch_size", batch_size),
                            ("tokenizer_threads", tokenizer_threads)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.model_path = model
        self.device = device
        self.dtype = "fp32" if device == "cpu" else dtype
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer_threads = tokenizer_threads
        self.kind = kind
        self.compile = compile
        self.tokenizer_processes = max(0, tokenizer_processes)
        self._procs = None
        self._backend = None
        self.attention = attention_backend(device, self.dtype)
        self.model = None
        self.tokenizer = None

    # --- loading -----------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load tokenizer and model once; logs the attention backend chosen."""
        if self.model is not None:
            return
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, use_fast=True)
        backend = getattr(self.tokenizer, "_tokenizer", None)  # the Rust tokenizer behind the fast one
        if backend is None:
            raise ValueError(f"{self.model_path} has no fast (Rust) tokenizer: FastEncoder needs tokenizer.json "
                             "or a tokenizer transformers can convert")
        backend.no_padding()
        backend.enable_truncation(self.max_length)
        self._backend = backend
        if self.tokenizer_processes:
            import multiprocessing as mp
            import os
            import tempfile
            from concurrent.futures import ProcessPoolExecutor

            path = os.path.join(tempfile.mkdtemp(prefix="fastenc-"), "tokenizer.json")
            backend.save(path)
            self._procs = ProcessPoolExecutor(self.tokenizer_processes, mp_context=mp.get_context("spawn"),
                                              initializer=_init_worker, initargs=(path, self.max_length))
        cls = AutoModel if self.kind == "embed" else AutoModelForSequenceClassification
        kwargs: dict[str, Any] = {"dtype": torch_dtype, "attn_implementation": self.attention}
        if self.kind == "rerank":
            kwargs["num_labels"] = 1
        try:
            model = cls.from_pretrained(self.model_path, **kwargs)
        except (ImportError, ValueError) as e:  # e.g. flash-attn present but unusable with this build
            logger.warning("attention %s unavailable (%s): falling back to sdpa", self.attention, e)
            self.attention = kwargs["attn_implementation"] = "sdpa"
            model = cls.from_pretrained(self.model_path, **kwargs)
        self.model = model.to(self.device).eval()
        if self.compile:
            self.model = torch.compile(self.model, dynamic=False)
        logger.info("FastEncoder %s on %s: %s, attention=%s, batch=%d", self.kind, self.device, self.dtype,
                    self.attention, self.batch_size)

    # --- host side ---------------------------------------------------------------------------------
    def _tokenize(self, texts: list[str], pairs: list[str] | None) -> _Tokens:
        """Token ids of ``texts`` (and ``pairs``) as padded arrays, tokenized in parallel shards: worker
        processes when ``tokenizer_processes`` > 0, else threads (the Rust tokenizer releases the GIL)."""
        n = len(texts)
        workers = self.tokenizer_processes or self.tokenizer_threads
        shards = max(1, min(workers, n // 256 or 1))
        bounds = [(n * i // shards, n * (i + 1) // shards) for i in range(shards)]
        jobs = [(texts[a:b], pairs[a:b] if pairs is not None else None) for a, b in bounds]
        if self._procs is not None:
            parts = list(self._procs.map(_encode_in_worker, jobs))
        elif shards == 1:
            parts = [_encode_arrays(self._backend, *jobs[0])]
        else:
            with ThreadPoolExecutor(shards) as pool:
                parts = list(pool.map(lambda job: _encode_arrays(self._backend, *job), jobs))
        return _Tokens.concat(parts)

    def _batches(self, texts: list[str], pairs: list[str] | None, wave: int) -> Iterator[_Batch]:
        """Tokenize ``wave`` texts at a time (one wave ahead), sort each by length and pack pinned batches."""
        import torch

        pin = self.device.startswith("cuda")
        starts = list(range(0, len(texts), wave))
        ahead = ThreadPoolExecutor(1)  # tokenizes wave k+1 while wave k is packed and consumed

        def submit(s0: int) -> Any:
            return ahead.submit(self._tokenize, texts[s0:s0 + wave], pairs[s0:s0 + wave] if pairs else None)

        def tensor(a: np.ndarray | None) -> Any:
            if a is None:
                return None
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t.pin_memory() if pin else t

        future = submit(starts[0]) if starts else None
        try:
            for i, start in enumerate(starts):
                tok = future.result()
                if i + 1 < len(starts):
                    future = submit(starts[i + 1])
                order = np.argsort(tok.lengths, kind="stable")
                for b in range(0, len(order), self.batch_size):
                    sel = order[b:b + self.batch_size]
                    lens = tok.lengths[sel]
                    width = int(lens.max())
                    uniform = bool(lens.min() == width)
                    ids = tok.ids[sel, :width]
                    tt = tok.type_ids[sel, :width] if tok.type_ids is not None else None
                    mask = None if uniform else (np.arange(width)[None, :] < lens[:, None]).astype(np.int32)
                    yield _Batch(index=tensor(sel.astype(np.int64) + start), input_ids=tensor(ids),
                                 attention_mask=tensor(mask), token_type_ids=tensor(tt), tokens=int(lens.sum()))
        finally:
            ahead.shutdown(wait=False)

    def _prefetch(self, it: Iterator[_Batch], depth: int = 64) -> Iterator[_Batch]:
        """Run the host-side iterator in a producer thread, ``depth`` batches ahead."""
        q: queue.Queue = queue.Queue(maxsize=depth)
        done = object()
        error: list[BaseException] = []

        def produce() -> None:
            try:
                for item in it:
                    q.put(item)
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                error.append(e)
            finally:
                q.put(done)

        threading.Thread(target=produce, daemon=True).start()
        while (item := q.get()) is not done:
            yield item
        if error:
            raise error[0]

    # --- device side -------------------------------------------------------------------------------
    def _run(self, texts: list[str], pairs: list[str] | None, wave: int) -> np.ndarray:
        import torch

        self.warm_up()
        cuda = self.device.startswith("cuda")
        copy_stream = torch.cuda.Stream(device=self.device) if cuda else None
        out_dim = self.model.config.hidden_size if self.kind == "embed" else 1
        out_dtype = torch.float32
        out = torch.empty((len(texts), out_dim), dtype=out_dtype, device=self.device)
        pending: list[Any] = []  # keep pinned host tensors alive until their copies finish
        with torch.inference_mode():
            for batch in self._prefetch(self._batches(texts, pairs, wave)):
                if cuda:
                    with torch.cuda.stream(copy_stream):
                        dev = [t.to(self.device, non_blocking=True) if t is not None else None
                               for t in (batch.index, batch.input_ids, batch.attention_mask, batch.token_type_ids)]
                    torch.cuda.current_stream().wait_stream(copy_stream)
                    for t in dev:
                        if t is not None:
                            t.record_stream(torch.cuda.current_stream())
                    pending.append(batch)
                    if len(pending) > 16:
                        pending.pop(0)
                else:
                    dev = [batch.index, batch.input_ids, batch.attention_mask, batch.token_type_ids]
                index, ids, mask, tt = dev  # int32 on the wire, int64 for the embedding lookups
                kwargs = {"input_ids": ids.long(), "attention_mask": mask}
                if tt is not None:
                    kwargs["token_type_ids"] = tt.long()
                result = self.model(**kwargs)
                if self.kind == "embed":
                    h = result.last_hidden_state.float()  # (B, T, H)
                    if mask is None:
                        pooled = h.mean(dim=1)
                    else:
                        m = mask.unsqueeze(-1).to(h.dtype)
                        pooled = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                else:
                    pooled = result.logits.float()  # (B, 1)
                out.index_copy_(0, index, pooled)
        return out.cpu().numpy()

    def device_throughput(self, n: int, length: int | None = None) -> float:
        """Sequences per second of the model alone on random ids (no tokenizer, no copies): the ceiling."""
        import torch

        self.warm_up()
        length = length or self.max_length
        vocab = self.model.config.vocab_size
        ids = torch.randint(1000, vocab, (self.batch_size, length), device=self.device)
        steps = max(1, n // self.batch_size)
        with torch.inference_mode():
            self.model(input_ids=ids)
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                self.model(input_ids=ids)
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
        return steps * self.batch_size / (time.perf_counter() - t0)

    def close(self) -> None:
        """Stop the tokenizer worker processes, if any."""
        if self._procs is not None:
            self._procs.shutdown(cancel_futures=True)
            self._procs = None

    def embed(self, texts: list[str], wave: int = 16384) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, in input order: ``(len(texts), hidden)`` float32."""
        if self.kind != "embed":
            raise ValueError("this FastEncoder was built with kind='rerank': use score()")
        return self._run(list(texts), None, wave)

    def score(self, queries: list[str], passages: list[str], wave: int = 16384) -> np.ndarray:
        """Cross-encoder logits for (query, passage) pairs, in input order: ``(n,)`` float32."""
        if self.kind != "rerank":
            raise ValueError("this FastEncoder was built with kind='embed': use embed()")
        if len(queries) != len(passages):
            raise ValueError(f"{len(queries)} queries but {len(passages)} passages")
        return self._run(list(queries), list(passages), wave)[:, 0]
