"""Question forms: which questions ask what the documents say (answered by passages, not spans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.question_forms import asks_for_passage, contradicts, contrast_words, passage_topic


@pytest.mark.parametrize("question", [
    "What does the memo say about bottles of water?", "what did the NTSB report state regarding the weather?",
    "What is said about trucks?", "Tell me about the trucks",
    "Describe the delivery.", "Please summarize the findings", "Can you explain the fee schedule?",
    "What do the 2022 strategic plan and its annex say about climate?"])
def test_passage_questions(question: str) -> None:
    assert asks_for_passage(question)


@pytest.mark.parametrize("question", [
    "How many bottles of water were delivered?", "What does the memo say?", "Who wrote about the trucks?",
    "What did the civil war leave the state of Iraq's economy in?", "What did Luther write on the door?",
    "When was the memo written?", "Is water mentioned about?" ])
def test_span_questions(question: str) -> None:
    assert not asks_for_passage(question)


def test_squad_questions_are_span_questions(data_dir: Path) -> None:
    """The course split's questions are phrase questions: the form must leave them (all but one) to the reader."""
    data = json.loads((data_dir / "squad" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    qs = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    assert len(qs) == 6078 and sum(map(asks_for_passage, qs)) == 1


def test_the_topic_is_what_follows_the_form() -> None:
    assert passage_topic("What does the memo say about bottles of water?") == "bottles of water"
    assert passage_topic("Describe the delivery.") == "the delivery"
    assert passage_topic("Tell me about the trucks") == "the trucks"
    assert passage_topic("How many trucks?") == "How many trucks?"  # no form: the whole question
    assert passage_topic("Describe?") == "Describe?"  # nothing follows the form



def test_contradicts_only_when_the_asked_word_is_missing_and_another_of_its_set_is_there():
    cfo = "The chief financial officer, Tomasz Lind, approves any single trip."
    assert contradicts("Who is the chief executive officer?", cfo)
    assert contradicts("Who is the Chief Executive Officer?", cfo.replace("chief financial", "Chief Financial"))
    assert not contradicts("Who is the chief financial officer?", cfo)
    assert not contradicts("Who approves trips?", cfo)
    assert not contradicts("What is the annual fee?", "The annual fee is $5; the monthly fee is $1.")
    assert contradicts("What happened in May 1990?", "In June 1990 the treaty was signed.")
    assert not contradicts("Who may sign the treaty?", "In June 1990 the treaty was signed.")  # a verb, not May
    assert contrast_words("In may we march to the navy yard on Monday") == {"navy", "monday"}
