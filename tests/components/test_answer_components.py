from haystack import Document
from haystack.dataclasses import ChatMessage

from rag.components.cited_answer_builder import NO_ANSWER_TEXT, CitedAnswerBuilder, best_quote
from rag.components.relevance_gate import RelevanceGate

DOCS = [Document(id="a", content="The memo was signed by Jane Doe on 5 May. It concerns water deliveries.",
                 meta={"source": "/d/memo.pdf", "file_name": "memo.pdf", "page_number": 1, "page_numbers": [1]}),
        Document(id="b", content="Bottled water is delivered every Monday by Acme.",
                 meta={"source": "/d/ops.pdf", "file_name": "ops.pdf", "page_number": 3, "page_numbers": [3]})]


def reply(text: str) -> list[ChatMessage]:
    return [ChatMessage.from_assistant(text)]


class TestCitedAnswerBuilder:
    def test_valid_markers_become_citations_with_quotes(self) -> None:
        a = CitedAnswerBuilder().run(query="q", replies=reply("Jane Doe signed it [1]."), documents=DOCS)["answer"]
        assert not a["declined"] and a["citation_mode"] == "model"
        c = a["citations"][0]
        assert (c["source"], c["page"], c["chunk_id"]) == ("/d/memo.pdf", 1, "a")
        assert c["quote"] == "The memo was signed by Jane Doe on 5 May."

    def test_markers_to_unretrieved_chunks_are_dropped(self) -> None:
        a = CitedAnswerBuilder().run(query="q", replies=reply("Acme delivers on Monday [2, 9]."), documents=DOCS)
        assert a["answer"]["text"] == "Acme delivers on Monday [2]."
        assert [c["chunk_id"] for c in a["answer"]["citations"]] == ["b"]

    def test_unmarked_answer_is_attributed_to_supporting_chunk(self) -> None:
        a = CitedAnswerBuilder().run(query="q", replies=reply("Water is delivered every Monday by Acme."),
                                     documents=DOCS)["answer"]
        assert a["citation_mode"] == "attributed" and [c["chunk_id"] for c in a["citations"]] == ["b"]
        assert a["grounded"]

    def test_unsupported_answer_is_not_grounded(self) -> None:
        a = CitedAnswerBuilder().run(query="q", replies=reply("Paris is the capital of France."),
                                     documents=DOCS)["answer"]
        assert not a["citations"] and not a["grounded"]

    def test_declines(self) -> None:
        b = CitedAnswerBuilder()
        for raw in ("NOT_FOUND", "", "[7]", " [1]."):
            a = b.run(query="q", replies=reply(raw), documents=DOCS)["answer"]
            assert a["declined"] and a["text"] == NO_ANSWER_TEXT and not a["citations"], raw
        assert b.run(query="q", no_answer="q")["answer"]["declined"]

    def test_best_quote_picks_overlapping_sentence(self) -> None:
        assert best_quote("deliveries of water", DOCS[0].content) == "It concerns water deliveries."


class TestRelevanceGate:
    def test_passes_top_k_above_threshold(self) -> None:
        docs = [Document(content="x", score=s) for s in (3.0, 1.0, -5.0)]
        out = RelevanceGate(min_score=0.0, top_k=5).run(query="q", documents=docs)
        assert [d.score for d in out["documents"]] == [3.0, 1.0] and "no_answer" not in out

    def test_no_answer_when_nothing_passes(self) -> None:
        out = RelevanceGate(min_score=10.0).run(query="q", documents=[Document(content="x", score=1.0)])
        assert out == {"no_answer": "q"}
        assert RelevanceGate().run(query="q", documents=[]) == {"no_answer": "q"}

    def test_without_threshold_everything_passes(self) -> None:
        out = RelevanceGate(top_k=1).run(query="q", documents=[Document(content="x"), Document(content="y")])
        assert len(out["documents"]) == 1
