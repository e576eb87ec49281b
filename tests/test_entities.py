"""rag.entities: the one entity-key normaliser, the label scheme, real dates and the noise filter."""

from __future__ import annotations

import pytest

from rag.api import to_haystack_filters
from rag.entities import (
    canonical_label,
    clean_entities,
    entity_key,
    entity_years,
    is_nonsense,
    is_real_date,
    parse_key,
    relabel,
    vote_labels,
)


def test_one_key_for_spellings_of_one_entity() -> None:
    assert entity_key("org", "  U. S. C. ") == entity_key("ORG", "u.s.c.") == "ORG:u.s.c."
    assert entity_key("B-PER", "Angela\n Merkel") == "PERSON:angela merkel"
    assert parse_key("org: Acme  Corp") == "ORG:acme corp"
    with pytest.raises(ValueError):
        parse_key("acme")
    # the filter uses the same normaliser
    assert to_haystack_filters({"entity": "org:U. S. C."})["value"] == ["ORG:u.s.c."]


@pytest.mark.parametrize(("label", "expected"), [("PER", "PERSON"), ("I-ORG", "ORG"), ("LOC", "LOC"),
                                                 ("gpe", "GPE"), ("MISC", "MISC"), ("CARDINAL", "CARDINAL")])
def test_labels_map_onto_one_scheme(label: str, expected: str) -> None:
    assert canonical_label(label) == expected


@pytest.mark.parametrize(("text", "real", "years"), [
    ("May 5, 2023", True, [2023]), ("2021-2023", True, [2021, 2023]), ("5/12/2007", True, [2007]),
    ("last year", True, []), ("the 1990s", True, [1990]),
    ("14:30", False, []), ("1,500", False, []), ("2068", False, []), ("1519", False, []), ("12/45/99", False, []),
])
def test_real_dates_and_their_years(text: str, real: bool, years: list[int]) -> None:
    assert is_real_date(text) is real
    assert entity_years(text) == years


@pytest.mark.parametrize(("label", "text"), [("ORG", "S"), ("ORG", "C"), ("PERSON", "1154"), ("GPE", "AA 1420"),
                                             ("ORG", "##ing"), ("DATE", "14:30"), ("DATE", "1,500"),
                                             ("MISC", "Class 3"), ("ORG", "Section 4"), ("MISC", "Table II"),
                                             ("MISC", "Aviation Accident Final Report"),
                                             ("MISC", "Quarterly Report"), ("MISC", "Incident Report Form")])
def test_nonsense(label: str, text: str) -> None:
    assert is_nonsense(label, text)


@pytest.mark.parametrize(("label", "text"), [("ORG", "U.S.C."), ("ORG", "Nestlé Health Science"), ("GPE", "Oslo"),
                                             ("DATE", "January 23, 2023"), ("CARDINAL", "3"),
                                             ("MISC", "Windows 10"), ("MISC", "Warren Report"),
                                             ("ORG", "Class Action Services"), ("MISC", "Model 3")])
def test_real_entities(label: str, text: str) -> None:
    assert not is_nonsense(label, text)


def test_clean_merges_dotted_abbreviations_and_word_pieces() -> None:
    text = "See 49 U.S.C. 1154 and Nestlé Health Science."
    raw = [{"text": "U", "label": "ORG", "start": 7, "end": 8}, {"text": "S", "label": "ORG", "start": 9, "end": 10},
           {"text": "C", "label": "ORG", "start": 11, "end": 12},
           {"text": "1154", "label": "ORG", "start": 14, "end": 18},
           {"text": "Nest", "label": "ORG", "start": 23, "end": 27},
           {"text": "lé Health Science", "label": "ORG", "start": 27, "end": 44}]
    out = clean_entities(text, raw)
    assert [(e["text"], e["label"]) for e in out] == [("U.S.C.", "ORG"), ("Nestlé Health Science", "ORG")]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in out)


def _ents(text: str, *pieces: tuple[str, str]) -> list[dict]:
    out, pos = [], 0
    for label, piece in pieces:
        s = text.index(piece, pos)
        out.append({"text": piece, "label": label, "start": s, "end": s + len(piece)})
        pos = s + len(piece)
    return out


def test_statute_citations_are_one_law_entity() -> None:
    text = "The Act, as codified at 49 U.S.C. Section 1154(b), and 28 C.F.R. § 58.6(a)(3) apply."
    raw = _ents(text, ("MISC", "Act"), ("LOC", "U.S"), ("MISC", "C. Section"), ("LOC", "C.F.R."))
    out = [(e["label"], e["text"]) for e in clean_entities(text, raw)]
    assert out == [("MISC", "Act"), ("LAW", "49 U.S.C. Section 1154(b)"), ("LAW", "28 C.F.R. § 58.6(a)(3)")]


def test_a_date_ends_at_its_table_cell_and_takes_its_whole_range() -> None:
    text = "In millions of CHF · January–June 2023\nZone AOA · Sales: 9060 | January–June 2022: 7683"
    raw = _ents(text, ("DATE", "January–June 2023\nZone"), ("DATE", "June 2022: 7683"))
    assert [e["text"] for e in clean_entities(text, raw)] == ["January–June 2023", "January–June 2022"]


def test_a_head_word_joins_the_name_before_it() -> None:
    text = "chapter 13 of title 11 of the United States Code and the United States Trustee Program (Program)."
    raw = _ents(text, ("LOC", "United States"), ("MISC", "Code"), ("LOC", "United States"), ("MISC", "Trustee Program"))
    assert [(e["label"], e["text"]) for e in clean_entities(text, raw)] == [
        ("MISC", "United States Code"), ("ORG", "United States Trustee Program")]


def test_one_label_per_name_within_a_document() -> None:
    chunks = [[{"text": "Nestlé Health Science", "label": "ORG", "start": 0, "end": 21}],
              [{"text": "Nestlé  Health Science", "label": "MISC", "start": 0, "end": 22},
               {"text": "2023", "label": "DATE", "start": 30, "end": 34}],
              [{"text": "Nestlé Health Science", "label": "ORG", "start": 5, "end": 26}]]
    voted = vote_labels(chunks)
    assert [e["label"] for ents in voted for e in ents] == ["ORG", "ORG", "DATE", "ORG"]
    assert chunks[1][0]["label"] == "MISC"  # inputs are not changed


def test_numbers_end_at_their_cell() -> None:
    text = "Sales: 757 | Net other income"
    raw = _ents(text, ("QUANTITY", "757 | Net"))
    assert [e["text"] for e in clean_entities(text, raw)] == ["757"]


def test_a_name_does_not_grow_into_the_next_form_field() -> None:
    text = "Model/Series: PA-22-150 Aircraft Category: Airplane. 11 U.S.C. § 704. These"
    raw = _ents(text, ("MISC", "PA-22-150"), ("MISC", "Aircraft Category"))
    assert [e["text"] for e in clean_entities(text, raw)] == ["PA-22-150", "Aircraft Category", "11 U.S.C. § 704"]


@pytest.mark.parametrize(("label", "text", "expected"), [
    ("ORG", "Willis O Forman", "PERSON"), ("MISC", "Robert J. Gretz", "PERSON"),
    ("MISC", "United States Trustee Program", "ORG"), ("MISC", "Bankruptcy Code", "MISC"), ("MISC", "Board", "MISC")])
def test_labels_the_words_settle(label: str, text: str, expected: str) -> None:
    assert relabel({"label": label, "text": text})["label"] == expected


def test_the_first_word_of_a_form_label_is_no_name_but_a_value_is() -> None:
    text = "Forecast/Actual: / Altimeter Setting: 30.27 inches Hg\nAircraft Make: Piper Registration: N5921D"
    raw = _ents(text, ("LOC", "Altimeter"), ("MISC", "Piper"))
    assert [e["text"] for e in clean_entities(text, raw)] == ["Piper"]


def test_a_name_stops_before_a_label_that_counts_its_values() -> None:
    # the NTSB form wraps "Operating Certificate(s) Held:" onto two lines after the operator's name
    text = "Operator: Willis O Forman Operating Certificate(s)\nHeld:\nNone\nOwner: Smith Aviation Services Inc"
    raw = _ents(text, ("ORG", "Willis O Forman"), ("MISC", "Operating"), ("ORG", "Smith Aviation"))
    assert [(e["label"], e["text"]) for e in clean_entities(text, raw)] == [
        ("PERSON", "Willis O Forman"), ("ORG", "Smith Aviation Services Inc")]
