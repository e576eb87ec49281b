"""rag.gpu_embed.FastEncoder gives what sentence-transformers gives, on mixed lengths (run here on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from rag import models
from rag.gpu_embed import FastEncoder

pytestmark = pytest.mark.integration

TEXTS = ["  Short one. ", "Title · Section\n" + "A longer chunk of text about quarterly revenue and costs. " * 12,
         "Medium length text about the Stanley Cup finals and the teams that played.", "x",
         "word " * 400]  # over max_length: truncated like the library truncates


def test_embed_matches_sentence_transformers_on_mixed_lengths() -> None:
    from sentence_transformers import SentenceTransformer

    path = models.resolve_embedder().path
    ref = SentenceTransformer(path, device="cpu").encode(TEXTS, convert_to_numpy=True)
    enc = FastEncoder(path, device="cpu", dtype="fp32", batch_size=2, tokenizer_threads=2)
    got = enc.embed(TEXTS * 3, wave=4)  # several waves and batches, padded and truncated rows
    cos = (got / np.linalg.norm(got, axis=1, keepdims=True) * np.tile(ref, (3, 1))).sum(axis=1)
    assert cos.min() > 0.9999, cos


def test_score_matches_cross_encoder_logits() -> None:
    import torch
    from sentence_transformers import CrossEncoder

    path = models.resolve_reranker().path
    pairs = [("who won the cup?", t) for t in TEXTS]
    ref = CrossEncoder(path, num_labels=1, device="cpu", max_length=256).predict(
        pairs, activation_fn=torch.nn.Identity())
    enc = FastEncoder(path, device="cpu", dtype="fp32", batch_size=2, kind="rerank")
    got = enc.score([q for q, _ in pairs], [p for _, p in pairs])
    assert np.abs(got - ref).max() < 1e-3, (got, ref)



def test_flat_token_arrays_match_the_tokenizer_row_by_row() -> None:
    path = models.resolve_reranker().path
    texts = [f"{i} " + TEXTS[i % len(TEXTS)] for i in range(40)]
    questions = [f"question {i}?" for i in range(40)]
    enc = FastEncoder(path, device="cpu", dtype="fp32", tokenizer_threads=2, kind="rerank")
    for pairs in (None, texts):
        got = enc.tokenize(questions if pairs else texts, pairs)
        want = [enc._backend.encode(q, p) if pairs else enc._backend.encode(q)
                for q, p in zip(questions if pairs else texts, pairs or texts, strict=True)]
        assert got.lengths.max() == 256 and got.lengths.min() < 20  # truncated and short rows both present
        for row, e in enumerate(want):
            n = len(e.ids)
            assert got.lengths[row] == n and got.ids[row, :n].tolist() == e.ids and not got.ids[row, n:].any()
            assert got.type_ids[row, :n].tolist() == (e.type_ids if pairs else [0] * n)


def test_tokenizer_processes_give_the_same_arrays_and_vectors_as_threads() -> None:
    path = models.resolve_reranker().path
    texts = [f"{i} " + TEXTS[i % len(TEXTS)] for i in range(600)]  # over 256 per shard: two worker shards
    questions = [f"question {i}?" for i in range(600)]
    threads = FastEncoder(path, device="cpu", dtype="fp32", tokenizer_threads=2, kind="rerank")
    procs = FastEncoder(path, device="cpu", dtype="fp32", tokenizer_processes=2, kind="rerank")
    try:
        for first, pairs in ((texts, None), (questions, texts)):
            a, b = threads.tokenize(first, pairs), procs.tokenize(first, pairs)
            assert a.ids.shape == b.ids.shape and (a.ids == b.ids).all() and (a.lengths == b.lengths).all()
            assert (a.type_ids == b.type_ids).all() and bool(a.type_ids.any()) == (pairs is not None)
        assert np.abs(procs.score(questions[:8], texts[:8]) - threads.score(questions[:8], texts[:8])).max() < 1e-5
        workers = list(procs._pool._processes.values())
        assert len(workers) == 2
    finally:
        procs.close()
    assert procs._pool is None and all(not w.is_alive() for w in workers)
    with pytest.raises(ValueError, match="tokenizer_processes"):
        FastEncoder(path, device="cpu", tokenizer_processes=-1)


def test_the_gpu_bench_imports_without_haystack() -> None:
    """The device machine that runs ``evals.gpu_bench`` has torch and sentence-transformers only."""
    import subprocess
    import sys

    code = "import sys; sys.modules['haystack'] = None; import evals.gpu_bench, rag.gpu_embed; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_gpu_bench_keeps_what_it_measured_when_cut_off(tmp_path, monkeypatch) -> None:
    """A device call has a time limit: each measured part goes to --out at once, marked partial, and the whole
    result replaces it at the end (a smoke run on the CPU with a few chunks)."""
    import json

    from evals import gpu_bench

    data = tmp_path / "data"
    data.mkdir()
    (data / "minilm").symlink_to(models.resolve_embedder().path, target_is_directory=True)
    (data / "chunks.json").write_text(json.dumps({"chunks": TEXTS[:4], "queries": ["revenue?"],
                                                  "pairs": [[0, 1], [0, 2]], "counts": {"chunks": 4}}))
    out = tmp_path / "bench.json"
    args = ["--data", str(data), "--device", "cpu", "--reranker", "", "--sizes", "16", "--repeats", "1",
            "--sweep-n", "16", "--st-batch-sizes", "8", "--fast-batch-sizes", "8", "--tokenizer-processes", "0",
            "--out", str(out)]
    assert gpu_bench.main(args) == 0
    whole = json.loads(out.read_text())
    assert "partial" not in whole and whole["embed"]["sizes"]["16"]["fast"]["per_s"] > 0

    def cut_off(*_a, **_k):
        raise TimeoutError("the call's time limit")

    monkeypatch.setattr(gpu_bench, "bench_rerank", cut_off)
    with pytest.raises(TimeoutError):
        gpu_bench.main([*args[:5], "models/reranker", *args[6:]])
    partial = json.loads(out.read_text())
    assert partial["partial"] is True and partial["embed"]["sizes"]["16"]["fast"]["per_s"] > 0
    assert "rerank" not in partial


def test_waves_start_with_one_batch_and_double_up_to_the_wave_size() -> None:
    from itertools import pairwise

    from rag.gpu_embed import wave_bounds

    assert wave_bounds(0, 16384, 1024) == []
    assert wave_bounds(10_000, 16384, 1024) == [(0, 1024), (1024, 3072), (3072, 7168), (7168, 10_000)]
    spans = wave_bounds(100_000, 16384, 1024)
    assert [e - s for s, e in spans][:6] == [1024, 2048, 4096, 8192, 16384, 16384]
    assert spans[0][0] == 0 and spans[-1][1] == 100_000
    assert all(a[1] == b[0] for a, b in pairwise(spans))  # contiguous, nothing skipped or repeated
    assert wave_bounds(5, 4, 8) == [(0, 4), (4, 5)]  # a first batch larger than the wave is cut to the wave
