"""The model pool: each model loaded once per process and shared by every graph that uses it."""

from __future__ import annotations

import pytest

from rag import models
from rag.engine import ModelPool

pytestmark = pytest.mark.integration


def _ranker(top_k: int):
    from haystack_integrations.components.rankers.sentence_transformers import (
        SentenceTransformersSimilarityRanker,
    )

    reranker = models.resolve_reranker("")
    if reranker is None:
        pytest.skip("no packaged reranker")
    return SentenceTransformersSimilarityRanker(model=reranker.path, device=None, top_k=top_k, scale_score=False)


def test_equal_components_share_one_load() -> None:
    pool = ModelPool()
    a, b = pool.warm(_ranker(5)), pool.warm(_ranker(20))  # top_k is run-time: the same model
    assert pool.loads == 1 and len(pool.loaded()) == 1
    assert a is not b and a._cross_encoder is b._cross_encoder is not None
    docs = __import__("haystack").Document
    out = b.run(query="capital of France", documents=[docs(content="Paris is the capital of France."),
                                                      docs(content="Bananas are yellow.")])
    assert out["documents"][0].content.startswith("Paris") and b.top_k == 20


def test_different_load_parameters_load_again() -> None:
    from haystack_integrations.components.rankers.sentence_transformers import (
        SentenceTransformersSimilarityRanker,
    )

    pool = ModelPool()
    pool.warm(_ranker(5))
    other = SentenceTransformersSimilarityRanker(model=models.resolve_reranker("").path, device=None,
                                                 model_kwargs={"dtype": "float32"})
    pool.warm(other)
    assert pool.loads == 2


def test_parser_passwords_are_a_run_time_input(tmp_path) -> None:
    from ingest.parse import UnstructuredFileParser

    note = tmp_path / "n.txt"
    note.write_text("Plain text needs no password.")
    parser = UnstructuredFileParser()
    out = parser.run(sources=[str(note)], passwords={"*": "secret"})
    assert out["documents"] and parser.passwords == {}  # nothing of the run stays on the component
