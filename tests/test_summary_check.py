"""rag.summary_check: numbers and names of a summary that its document does not back."""

from __future__ import annotations

from rag.summary_check import unsupported_facts


def test_invented_number_and_name_are_flagged() -> None:
    doc = "The runway is 1,500 ft long. The airplane landed in Denver at night."
    assert unsupported_facts("A 150-foot runway in Denver, says the FAA.", doc) == ["150", "FAA"]


def test_faithful_summary_passes() -> None:
    doc = "The runway is 1,500 ft long. The airplane landed in Denver at night."
    assert unsupported_facts("The airplane landed in Denver; the runway is 1500 ft.", doc) == []


def test_facts_are_every_number_and_name_once() -> None:
    from rag.summary_check import facts

    assert facts("In 2007 the FAA said 1,500 ft; the FAA repeated 1,500.") == ["2007", "1,500", "FAA"]


def test_contractions_and_possessives_are_no_invented_names() -> None:
    doc = "The NTSB's report names the pilot. It is short."
    assert unsupported_facts("It's the NTSB report; the NTSB's pilot. Boeing's plane.", doc) == ["Boeing's"]


def test_sentence_openers_and_trailing_commas_are_no_facts() -> None:
    from rag.summary_check import facts

    assert facts("Additionally, Title 24, which the NTSB cites. However, 24 is new.") == ["24", "Title", "NTSB"]
