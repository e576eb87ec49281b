"""ExtractiveDocumentSummarizer on the packaged MiniLM: central, non-redundant sentences in document order."""

from __future__ import annotations

import time

import pytest
from haystack import Document

from rag import models
from rag.components.extractive_summarizer import ExtractiveDocumentSummarizer, split_sentences
from rag.summary_check import unsupported_facts

pytestmark = pytest.mark.integration

TEXT = ("The airplane overran runway 22 at 1430 local time. The runway is 1,500 feet long and was wet. "
        "The runway was wet after heavy rain. The captain had 12,000 flight hours. "
        "The first officer had 3,000 hours. Both pilots were certified by the FAA. "
        "The airplane was substantially damaged. No one was seriously injured. "
        "The probable cause was the pilots' failure to stop on the wet runway. Mr. Smith led the investigation.")


@pytest.fixture(scope="module")
def summarizer() -> ExtractiveDocumentSummarizer:
    s = ExtractiveDocumentSummarizer(model=models.resolve_embedder("").path, num_sentences=3)
    s.warm_up()
    return s


class TestExtractiveDocumentSummarizer:
    def test_init_rejects_bad_values(self) -> None:
        with pytest.raises(ValueError, match="diversity"):
            ExtractiveDocumentSummarizer(model="m", diversity=2.0)
        with pytest.raises(ValueError, match="num_sentences"):
            ExtractiveDocumentSummarizer(model="m", num_sentences=0)

    def test_to_dict_from_dict(self) -> None:
        s = ExtractiveDocumentSummarizer.from_dict(ExtractiveDocumentSummarizer(model="m", num_sentences=4).to_dict())
        assert (s.model, s.num_sentences) == ("m", 4)

    def test_shares_the_indexing_embedders_model(self, tmp_path) -> None:
        """Built as the engine builds it, the summarizer's encoder is the embedders' loaded model, not a copy."""
        from rag import graph
        from rag.config import Settings

        settings = Settings(home=tmp_path)
        embedder = graph.doc_embedder(settings)
        embedder.warm_up()
        s = ExtractiveDocumentSummarizer(device="cpu", **graph.embedder_kwargs(settings))
        s = ExtractiveDocumentSummarizer.from_dict(s.to_dict())
        s.warm_up()
        assert s._encoder is embedder.embedding_backend.model
        assert s.run([Document(content=TEXT, meta={"page_number": 1})])["summary"]

    def test_split_keeps_abbreviations(self) -> None:
        sents = [s for _, s in split_sentences("Mr. Smith went to the U.S. office. It was 1.5 km away.")]
        assert sents == ["Mr. Smith went to the U.S. office.", "It was 1.5 km away."]

    def test_run_picks_sentences_of_the_document_in_order_with_pages(self, summarizer) -> None:
        docs = [Document(content=TEXT[:200], meta={"page_number": 1}),
                Document(content=TEXT[170:], meta={"page_number": 2})]  # overlapping chunks, like the chunker's
        out = summarizer.run(documents=docs)
        sents = out["sentences"]
        assert out["backend"] == "extractive" and len(sents) == 3
        assert [s["index"] for s in sents] == sorted(s["index"] for s in sents)
        assert all(s["text"] in " ".join(TEXT.split()) for s in sents) and {s["page"] for s in sents} <= {1, 2}
        assert unsupported_facts(out["summary"], TEXT) == []
        texts = [s["text"] for s in sents]
        assert not ({"The runway is 1,500 feet long and was wet.", "The runway was wet after heavy rain."} <= set(texts))

    def test_run_is_fast_on_a_four_page_document(self, summarizer) -> None:
        docs = [Document(content=TEXT * 3, meta={"page_number": p}) for p in range(1, 5)]
        t0 = time.perf_counter()
        summarizer.run(documents=docs)
        assert time.perf_counter() - t0 < 5.0
