"""Bulk encoder inference on a GPU: sentence-transformers' own models, minus its host-side stalls.

Imports only torch, transformers, sentence-transformers and numpy (no Haystack), so ``evals/gpu_bench.py`` runs
on a bare CUDA box. The model, its pooling and normalisation are sentence-transformers' own
(``SentenceTransformer`` / ``CrossEncoder`` modules, half precision, torch SDPA); what is added is only what
``encode``/``predict`` do not do themselves (measured in ``evals.gpu_bench``):

1. **Pre-tokenising a whole wave in parallel** with the Rust tokenizer (``tokenizer_threads`` shards; the
   tokenizer releases the GIL), instead of tokenising each batch in the loop that feeds the GPU; or, with
   ``tokenizer_processes``, in that many worker processes started once, one single-threaded tokenizer each: reading
   the ids out of the encodings is Python work under one GIL, which threads cannot spread over the cores.
2. **Host/device overlap**: a producer thread tokenises the next wave and packs length-sorted batches into
   pinned memory while the GPU runs earlier ones (the first wave is one batch and each next one twice the size
   before it, up to ``wave``, so the GPU starts early: :func:`wave_bounds`); copies are ``non_blocking``; results stay on the GPU until
   one final copy (``encode`` synchronises on every batch to move it to the host).

Length sorting is the same as ``encode``'s (one argsort per wave). Unpadded (varlen) attention needs
flash-attn (``gpu`` extra), which the benchmark machine does not have: with it installed the model loads with
``flash_attention_2`` (see :func:`attention_backend`).

```python
enc = FastEncoder("path/to/all-MiniLM-L6-v2", device="cuda", dtype="fp16", batch_size=512)
vectors = enc.embed(texts)            # (n, 384) float32, as SentenceTransformer.encode gives them
scores = enc.score(queries, passages) # cross-encoder logits, as CrossEncoder.predict without activation
```
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import multiprocessing
import os
import queue
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.models import check_dtype, torch_dtype_of

logger = logging.getLogger(__name__)


def attention_backend(device: str, dtype: str) -> str:
    """``flash_attention_2`` when flash-attn is installed and usable here, else torch ``sdpa``."""
    if device.startswith("cuda") and dtype in ("fp16", "bf16") and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return "sdpa"


@dataclass
class _Tokens:
    """A tokenised wave: ids (n, width) int32 zero-padded, lengths (n,), type ids (n, width) int32."""

    ids: np.ndarray
    lengths: np.ndarray
    type_ids: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Tokens]) -> _Tokens:
        if len(parts) == 1:
            return parts[0]
        width = max(p.ids.shape[1] for p in parts)

        def pad(a: np.ndarray) -> np.ndarray:
            return a if a.shape[1] == width else np.pad(a, ((0, 0), (0, width - a.shape[1])))

        return cls(np.concatenate([pad(p.ids) for p in parts]), np.concatenate([p.lengths for p in parts]),
                   np.concatenate([pad(p.type_ids) for p in parts]))


def wave_bounds(n: int, wave: int, first: int) -> list[tuple[int, int]]:
    """(start, end) of each wave over ``n`` texts: the first is ``first`` texts (one batch), each next one twice
    the one before, up to ``wave``. The GPU starts after one batch is tokenised instead of a whole wave (at 10k
    texts, one 16k wave left nothing to overlap); the waves after it are large, as the tokenizer pool wants."""
    out, s0, size = [], 0, max(1, min(first, wave))
    while s0 < n:
        out.append((s0, min(n, s0 + size)))
        s0, size = s0 + size, min(wave, size * 2)
    return out


def _encode_arrays(backend: Any, texts: list[str], pairs: list[str] | None) -> _Tokens:
    """Encode with a ``tokenizers.Tokenizer`` (truncation already enabled) into padded int32 arrays.

    The ids of all encodings are read in one pass into a flat array and scattered into the padded matrix under
    the length mask (a row-by-row copy holds the GIL longer: on 2 cores it took 7% of the time beside the Rust
    encoding, the flat pass about half that; on many cores the encoding gets faster and this part does not).
    """
    inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
    encode = getattr(backend, "encode_batch_fast", None) or backend.encode_batch  # fast: no char offsets
    encs = encode(inputs, add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int32, count=len(encs))
    width = int(lengths.max()) if len(encs) else 1
    total = int(lengths.sum())
    filled = np.arange(width)[None, :] < lengths[:, None]
    ids = np.zeros((len(encs), width), dtype=np.int32)
    ids[filled] = np.fromiter(itertools.chain.from_iterable(e.ids for e in encs), dtype=np.int32, count=total)
    tt = np.zeros((len(encs), width), dtype=np.int32)
    if pairs is not None:
        tt[filled] = np.fromiter(itertools.chain.from_iterable(e.type_ids for e in encs), dtype=np.int32,
                                 count=total)
    return _Tokens(ids, lengths, tt)


_WORKER_TOKENIZER: Any = None  # the tokenizer of a tokenizer worker process (FastEncoder.tokenizer_processes)


def _start_tokenizer_worker(spec: str, max_length: int) -> None:
    """Initialiser of a tokenizer worker: one single-threaded Rust tokenizer (the pool is the parallelism)."""
    global _WORKER_TOKENIZER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(spec)
    tok.no_padding()
    tok.enable_truncation(max_length)
    _WORKER_TOKENIZER = tok


def _encode_in_worker(job: tuple[list[str], list[str] | None]) -> _Tokens:
    tokens = _encode_arrays(_WORKER_TOKENIZER, *job)
    if job[1] is None:  # no pairs: the type ids are all zero, made where they are used instead of sent back
        tokens.type_ids = np.zeros((0, 0), dtype=np.int32)
    return tokens


class FastEncoder:
    """A ``SentenceTransformer`` (``kind="embed"``) or ``CrossEncoder`` (``kind="rerank"``) run in bulk.

    :param model: a local sentence-transformers (embed) or sequence-classification (rerank) folder.
    :param device: ``cuda``, ``cuda:1`` or ``cpu``.
    :param dtype: ``fp16``, ``bf16`` or ``fp32`` (weights and activations).
    :param max_length: tokens per text or pair (longer ones are truncated, as the library does).
    :param batch_size: sequences per forward pass.
    :param tokenizer_threads: parallel tokenizer shards per wave (threads of this process).
    :param tokenizer_processes: 0 = tokenise in threads; N > 0 = in N worker processes (spawned once, at the first
        wave, one single-threaded tokenizer each), for hosts where reading out the encodings under one GIL is the
        ceiling. :meth:`close` stops them.
    :param kind: ``embed`` or ``rerank``.
    :raises ValueError: on an unknown dtype or kind, or a non-positive size.
    """

    def __init__(self, model: str, device: str = "cuda", dtype: str = "fp16", max_length: int = 256,
                 batch_size: int = 512, tokenizer_threads: int = 16, kind: str = "embed",
                 tokenizer_processes: int = 0) -> None:
        check_dtype(dtype)
        if kind not in ("embed", "rerank"):
            raise ValueError(f"kind must be 'embed' or 'rerank', got {kind!r}")
        for name, value in (("max_length", max_length), ("batch_size", batch_size),
                            ("tokenizer_threads", tokenizer_threads)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if tokenizer_processes < 0:
            raise ValueError(f"tokenizer_processes must be >= 0, got {tokenizer_processes}")
        self.model_path = model
        self.device = device
        self.dtype = dtype
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer_threads = tokenizer_threads
        self.tokenizer_processes = tokenizer_processes
        self._pool: ProcessPoolExecutor | None = None
        self.kind = kind
        self.attention = attention_backend(device, dtype)
        self.model: Any = None  # the SentenceTransformer or CrossEncoder
        self._backend: Any = None
        self._extra: dict[str, Any] = {}

    # --- loading -----------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the model once, as sentence-transformers loads it, in ``dtype``."""
        if self.model is not None:
            return
        kwargs = {"dtype": torch_dtype_of(self.dtype), "attn_implementation": self.attention}
        if self.kind == "embed":
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(self.model_path, device=self.device, model_kwargs=kwargs)
            self.model.max_seq_length = self.max_length
        else:
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(self.model_path, num_labels=1, device=self.device,
                                      max_length=self.max_length, model_kwargs=kwargs)
        self.model.eval()
        rust = getattr(self.model.tokenizer, "_tokenizer", None)  # the Rust tokenizer behind the fast one
        if rust is None:
            raise ValueError(f"{self.model_path} has no fast (Rust) tokenizer: FastEncoder needs tokenizer.json")
        from tokenizers import Tokenizer

        # a copy: transformers sets padding/truncation on its own backend at every call
        backend = Tokenizer.from_str(rust.to_str())
        backend.no_padding()
        backend.enable_truncation(self.max_length)
        self._backend = backend
        # what the library's own preprocessing adds beside the tensors (sentence-transformers 6: the modality)
        probe = self.model.preprocess(["a"] if self.kind == "embed" else [("a", "b")])
        self._extra = {k: v for k, v in probe.items() if not hasattr(v, "shape")}
        logger.info("FastEncoder %s on %s: %s, attention=%s, batch=%d", self.kind, self.device, self.dtype,
                    self.attention, self.batch_size)

    # --- host side ---------------------------------------------------------------------------------
    def tokenize(self, texts: list[str], pairs: list[str] | None = None) -> _Tokens:
        """Token ids of ``texts`` (and ``pairs``) as padded arrays, in ``tokenizer_threads`` parallel shards.

        Texts are stripped first, as sentence-transformers' ``tokenize`` does.
        """
        self.warm_up()
        texts = [t.strip() for t in texts]
        pairs = [p.strip() for p in pairs] if pairs is not None else None
        n = len(texts)
        workers = self.tokenizer_processes or self.tokenizer_threads
        shards = max(1, min(workers, n // 256 or 1))
        bounds = [(n * i // shards, n * (i + 1) // shards) for i in range(shards)]
        jobs = [(texts[a:b], pairs[a:b] if pairs is not None else None) for a, b in bounds]
        if self.tokenizer_processes:
            parts = list(self._process_pool().map(_encode_in_worker, jobs))
            for part in parts:
                if part.type_ids.shape != part.ids.shape:
                    part.type_ids = np.zeros_like(part.ids)
            return _Tokens.concat(parts)
        if shards == 1:
            return _encode_arrays(self._backend, *jobs[0])
        with ThreadPoolExecutor(shards) as pool:
            return _Tokens.concat(list(pool.map(lambda job: _encode_arrays(self._backend, *job), jobs)))

    def _process_pool(self) -> ProcessPoolExecutor:
        """The tokenizer worker processes, started once (spawned: this process may hold CUDA and threads)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.tokenizer_processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_tokenizer_worker, initargs=(self._backend.to_str(), self.max_length))
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
        return self._pool

    def close(self) -> None:
        """Stop the tokenizer worker processes, if any (the next wave starts them again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _batches(self, texts: list[str], pairs: list[str] | None, wave: int) -> Iterator[tuple[Any, ...]]:
        """Tokenise ``wave`` texts at a time (one wave ahead), sort each by length, pack pinned batches of
        (positions, ids, mask, type ids)."""
        import torch

        pin = self.device.startswith("cuda")
        bounds = wave_bounds(len(texts), wave, self.batch_size)
        ahead = ThreadPoolExecutor(1)  # tokenises wave k+1 while wave k is packed and consumed

        def submit(span: tuple[int, int]) -> Any:
            s0, e0 = span
            return ahead.submit(self.tokenize, texts[s0:e0], pairs[s0:e0] if pairs else None)

        def tensor(a: np.ndarray) -> Any:
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t.pin_memory() if pin else t

        future = submit(bounds[0]) if bounds else None
        try:
            for i, (start, _) in enumerate(bounds):
                tok = future.result()
                if i + 1 < len(bounds):
                    future = submit(bounds[i + 1])
                order = np.argsort(-tok.lengths, kind="stable")  # longest first, as encode does
                for b in range(0, len(order), self.batch_size):
                    sel = order[b:b + self.batch_size]
                    lens = tok.lengths[sel]
                    width = int(lens.max())
                    mask = (np.arange(width)[None, :] < lens[:, None]).astype(np.int32)
                    yield (tensor(sel.astype(np.int64) + start), tensor(tok.ids[sel, :width]), tensor(mask),
                           tensor(tok.type_ids[sel, :width]))
        finally:
            ahead.shutdown(wait=False)

    @staticmethod
    def _prefetch(it: Iterator[Any], depth: int = 32) -> Iterator[Any]:
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
    def _forward(self, ids: Any, mask: Any, type_ids: Any) -> Any:
        """The library's own module stack (transformer, pooling, normalisation / score head) on one batch."""
        feats = {"input_ids": ids.long(), "attention_mask": mask.long(), "token_type_ids": type_ids.long(),
                 **self._extra}
        return self.model(feats)["sentence_embedding" if self.kind == "embed" else "scores"].float()

    def _run(self, texts: list[str], pairs: list[str] | None, wave: int) -> np.ndarray:
        import torch

        self.warm_up()
        cuda = self.device.startswith("cuda")
        copy_stream = torch.cuda.Stream(device=self.device) if cuda else None
        out: Any = None
        keep: list[Any] = []  # pinned host tensors stay alive until their copies are done
        with torch.inference_mode():
            for batch in self._prefetch(self._batches(texts, pairs, wave)):
                if cuda:
                    with torch.cuda.stream(copy_stream):
                        dev = [t.to(self.device, non_blocking=True) for t in batch]
                    torch.cuda.current_stream().wait_stream(copy_stream)
                    for t in dev:
                        t.record_stream(torch.cuda.current_stream())
                    keep.append(batch)
                    if len(keep) > 8:
                        keep.pop(0)
                else:
                    dev = list(batch)
                index, ids, mask, tt = dev
                result = self._forward(ids, mask, tt)
                if out is None:
                    out = torch.empty((len(texts), result.shape[1]), dtype=torch.float32, device=self.device)
                out.index_copy_(0, index, result)
        if out is None:
            return np.zeros((0, 1), dtype=np.float32)
        return out.cpu().numpy()

    def embed(self, texts: list[str], wave: int = 16384) -> np.ndarray:
        """Embeddings in input order, ``(len(texts), dim)`` float32 (the model's own pooling/normalisation)."""
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
