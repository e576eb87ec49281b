"""Question forms: which questions ask what the documents say (answered by passages, not spans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.question_forms import asks_for_passage, contradicts, contrast_words, numbered_names, passage_topic


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


def test_numbered_names_are_models_periods_levels_and_years():
    assert numbered_names("The AMR-600 replaced the AMR-500 in Q3 FY2023 (a P1 fix).") == {
        ("amr", "amr600"), ("amr", "amr500"), ("q", "q3"), ("fy", "fy2023"), ("p", "p1")}
    assert numbered_names("In 1990, and from 1916–20") == {("year", "1990"), ("year", "1916")}
    # no capital in the letters, a decade, an amount, a decimal number, a count: none of them
    assert numbered_names("an mp3 of the 1960s for $2015, 2,015 or 2015.5 units; 2015 km2") == {("year", "2015")}
    assert numbered_names("Water · Sales: 1792 | 2023: 1999") == {("year", "2023")}  # a cell value is no year


def test_contradicts_when_the_text_names_another_of_the_asked_kind_and_not_the_asked_one():
    row = "Payload · AMR-400: 400 kg | AMR-600: 600 kg"
    assert contradicts("What is the payload of the AMR-800?", row)
    assert not contradicts("What is the payload of the AMR-600?", row)
    assert not contradicts("What is the payload?", row)  # no numbered name asked
    assert contradicts("What was revenue in 2023?", "Revenue was $4.1 million in 2022.")
    assert not contradicts("What was revenue in 2023?", "Revenue rose from $4.1 million in 2022 to $5.3 million in 2023.")
    assert not contradicts("What was revenue in 2023?", "Revenue was $5.3 million.")  # no year there: no conflict
    # one of the asked names of a kind is enough ("from 1916 to 1920" of "during 1916-20")
    assert not contradicts("Who played from 1916 to 1920?", "George Gipp was the star during 1916–20.")
    # a year inside an asked range is asked too; one outside it is not
    assert not contradicts("What happened between 1990 and 1995?", "In 1993 the treaty was signed.")
    assert contradicts("What happened between 1990 and 1995?", "In 1997 the treaty was signed.")
    assert contradicts("What were Q3 sales?", "Q2 sales were 12 units.")
    assert not contradicts("What were Q3 sales?", "In 2023 sales were 12 units.")  # another kind: a year


def test_defined_as_another_needs_a_party_term_after_the_span_and_another_asked() -> None:
    from rag.question_forms import defined_as_another

    s = "The agreement between Acme GmbH (the \"Seller\") and Bolt Ltd (the \"Buyer\") takes effect on 1 May."
    end = s.index("Bolt Ltd") + len("Bolt Ltd")
    assert defined_as_another("Who is the seller?", s, end)
    assert not defined_as_another("Who is the buyer?", s, end)
    assert not defined_as_another("Who is the seller?", s, s.index("Acme GmbH") + len("Acme GmbH"))
    assert not defined_as_another("When does it take effect?", s, s.index("1 May") + len("1 May"))
    # acronyms are no parties: "(NHS)" after a name, another acronym asked
    nhs = "The National Institute for Health and Care Excellence (NICE) decides what the National Health Service (NHS) pays."
    assert not defined_as_another("What does NICE decide for the NHS?", nhs, nhs.index("Excellence") + len("Excellence"))
