"""One loader per data set, one text per record: training reads what the graph embeds and reranks (fast)."""

from __future__ import annotations

import pytest
from haystack import Document

from evals.datasets import scifact as sf_eval
from ingest.chunk import ElementChunker
from ingest.context import embedded_text, record_meta, record_text
from rag.training import data

needs_data = pytest.mark.skipif(not (data.data_root() / "beir" / "scifact").is_dir(),
                                reason=f"data folder {data.data_root()} is absent (set DOCRAG_DATA)")


def test_record_text_is_what_the_chunk_embeds() -> None:
    """A one-chunk record through the ingest path (record meta -> chunker -> header) gives record_text."""
    title, text = "Normans", "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."
    meta = {"source": "r1", "file_name": "r1", "file_hash": "h", **record_meta(title)}
    chunk = ElementChunker().run(documents=[Document(content=text, meta={**meta, "category": "NarrativeText"})])[
        "documents"][0]
    assert embedded_text(chunk.meta["context"], chunk.content) == record_text(title, text) == f"{title}\n{text}"
    assert chunk.meta["doc_title"] == title and chunk.meta["context"] == title


@needs_data
def test_scifact_splits_and_texts() -> None:
    train, dev, test = data.scifact("train"), data.scifact("dev"), data.scifact("test")
    assert not set(train.queries) & set(dev.queries) and not set(dev.queries) & set(test.queries)
    assert len(dev.queries) == round((len(train.queries) + len(dev.queries)) * sf_eval.DEV_FRACTION)
    ev = sf_eval.load(data.data_root(), "test")
    rec = ev.corpus[0]
    assert test.corpus[rec["source"]] == record_text(rec["title"], rec["text"])
    assert set(test.qrels) == {c.qid for c in ev.cases}
