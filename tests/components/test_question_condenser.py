"""QuestionCondenser: follow-ups made standalone with the topic of the previous question; others untouched."""

from __future__ import annotations

import pytest

from rag.components.question_condenser import QuestionCondenser


class TestQuestionCondenser:
    def test_init_rejects_bad_numbers(self) -> None:
        with pytest.raises(ValueError, match="max_topic_words"):
            QuestionCondenser(max_topic_words=0)

    def test_to_dict_from_dict(self) -> None:
        c = QuestionCondenser.from_dict(QuestionCondenser(max_topic_words=4).to_dict())
        assert c.max_topic_words == 4

    @pytest.mark.parametrize(("history", "follow_up", "carried"), [
        (["What does the memo say about bottles of water?"], "Who signed it?", ["memo", "water", "bottles"]),
        (["What was the runway length at the accident airport?"], "And the weather?", ["runway", "accident"]),
        (["What is the vacation policy in the handbook?"], "How many days?", ["vacation", "handbook"]),
        (["Who founded Nestlé Health Science?"], "When was that?", ["Nestlé", "Health", "Science"]),
    ])
    def test_run_carries_the_topic_of_a_follow_up(self, history: list[str], follow_up: str,
                                                  carried: list[str]) -> None:
        out = QuestionCondenser().run(query=follow_up, history=history)
        assert out["condensed"] and out["query"].startswith(follow_up)
        assert all(w in out["query"] for w in carried)

    @pytest.mark.parametrize("question", ["How many trucks delivered the laptops in January 2023?",
                                          "What did Mallori write about blankets?"])
    def test_run_leaves_standalone_questions_alone(self, question: str) -> None:
        out = QuestionCondenser().run(query=question, history=["What does the memo say about bottles?"])
        assert out == {"query": question, "condensed": False}

    def test_run_without_history(self) -> None:
        assert QuestionCondenser().run(query="Who signed it?")["query"] == "Who signed it?"
