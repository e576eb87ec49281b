"""ui.conversations: chats saved per collection, listed, reloaded with their Answers, exported."""

from __future__ import annotations

import json
from pathlib import Path

from rag.api import Answer, Citation, Evidence, Hit
from ui import conversations as convs


def answer() -> Answer:
    hit = Hit(chunk_id="c1", source="/d/memo.pdf", file_name="memo.pdf", page=1, pages=[1], score=1.0,
              text="There were 20,000 bottles of water.")
    return Answer(question="How many bottles?", text="20,000 bottles [1].",
                  citations=[Citation(ref=1, source=hit.source, file_name="memo.pdf", page=1, pages=[1],
                                      chunk_id="c1", quote="20,000 bottles of water", start=10, end=33)],
                  documents=[hit], evidence=[Evidence(text="20,000", chunk_id="c1", start=10, end=16, score=0.9)],
                  confidence=0.9, mode="generated", timings={"total_s": 1.0})


class TestConversations:
    def test_save_list_load_round_trip(self, tmp_path: Path) -> None:
        conv = convs.new_conversation()
        conv["messages"] += [{"role": "user", "text": "How many bottles?"},
                             {"role": "assistant", "answer": answer()}]
        convs.save(tmp_path, "docrag", conv)
        other = convs.new_conversation()
        other["messages"].append({"role": "user", "text": "elsewhere"})
        convs.save(tmp_path, "work", other)
        listed = convs.list_conversations(tmp_path, "docrag")
        assert [c["title"] for c in listed] == ["How many bottles?"] and listed[0]["messages"] == 2
        back = convs.load(tmp_path, "docrag", conv["id"])
        a = back["messages"][1]["answer"]
        assert isinstance(a, Answer) and a.to_dict() == answer().to_dict()

    def test_bad_ids_and_missing_files(self, tmp_path: Path) -> None:
        assert convs.load(tmp_path, "docrag", "../../etc/passwd") is None
        assert convs.load(tmp_path, "docrag", "0123456789ab") is None
        assert not convs.delete(tmp_path, "docrag", "0123456789ab")

    def test_stopped_answer_and_exports(self, tmp_path: Path) -> None:
        conv = convs.new_conversation()
        conv["messages"] += [{"role": "user", "text": "Q?"}, {"role": "assistant", "answer": answer()},
                             {"role": "user", "text": "More?"},
                             {"role": "assistant", "answer": None, "text": "partial", "stopped": True}]
        md = convs.to_markdown(conv)
        assert "**You:** Q?" in md and "confidence 90%" in md and "[1] memo.pdf, page 1" in md
        assert "partial _(stopped)_" in md
        data = json.loads(convs.to_json(conv))
        assert data["messages"][1]["answer"]["confidence"] == 0.9
        assert convs.delete(tmp_path, "docrag", convs.save(tmp_path, "docrag", conv).stem)
