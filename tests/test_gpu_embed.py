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
