"""The SQuAD 2.0-style no-answer questions the reader trainer makes from SQuAD 1.1 (rag.training.reader)."""

import random

from rag.question_forms import CONTRAST
from rag.training.reader import (
    _flip_antonym,
    _flip_contrast,
    _negate,
    _swap_inside,
    synthetic_negatives,
)

CTX = ("Kublai Khan founded the Yuan dynasty in 1271. Genghis Khan was his grandfather. "
       "The first capital was Khanbaliq.")


def test_antonym_flip_keeps_case_and_needs_a_word_the_paragraph_lacks():
    assert _flip_antonym("What was the first capital?", CTX) == "What was the last capital?"
    assert _flip_antonym("First, who ruled?", CTX) == "Last, who ruled?"
    # "last" would be fine here, but a paragraph that also says "last" could answer the flipped question
    assert _flip_antonym("What was the first capital?", CTX + " The last one was Shangdu.") is None
    assert _flip_antonym("Who founded the dynasty?", CTX) is None


def test_negation_goes_after_the_auxiliary_once():
    assert _negate("Who was the first president of Poland?") == "Who was not the first president of Poland?"
    assert _negate("In what year did Kublai die?") == "In what year did not Kublai die?"
    assert _negate("How many people were killed?") == "How many people were not killed?"
    assert _negate("Who was not elected?") is None
    assert _negate("Name the capital.") is None


def test_inside_swap_uses_another_name_of_the_paragraph_outside_the_answer_sentence():
    q = "When did Kublai Khan found the dynasty?"
    new = _swap_inside(q, CTX, CTX.index("1271"), "1271", random.Random(0))
    assert new is not None and new != q
    swapped = new.replace("When did ", "").replace(" found the dynasty?", "")
    assert swapped in CTX and swapped not in "Kublai Khan founded the Yuan dynasty in 1271."
    assert _swap_inside("When was it founded?", CTX, CTX.index("1271"), "1271", random.Random(0)) is None


def test_synthetic_negatives_makes_each_kind_deterministically():
    ctx = [CTX, "The Normans were the first to build castles in Sicily. Roger ruled Palermo after Robert."]
    squad = [["When did Kublai Khan found the Yuan dynasty?", 0, CTX.index("1271"), "1271"],
             ["What was the first capital?", 0, CTX.index("Khanbaliq"), "Khanbaliq"],
             ["Who ruled Palermo after Robert?", 1, ctx[1].index("Roger"), "Roger"]] * 4
    prep = {"contexts": ctx, "ctx_article": [0, 1], "squad": squad}
    a = synthetic_negatives(prep, 0, 0, 42, n_antonym=2, n_negated=2, n_inside=2)
    assert a == synthetic_negatives(prep, 0, 0, 42, n_antonym=2, n_negated=2, n_inside=2)
    kinds = [k for *_, k in a]
    assert 0 < kinds.count("negated") <= 2 and kinds.count("antonym") <= 2 and kinds.count("inside") <= 2
    for q, text, kind in a:
        assert text in ctx and q not in {s[0] for s in squad}
    assert synthetic_negatives(prep, 0, 0, 42) == []


def test_contrast_flip_swaps_within_the_set_for_a_word_the_paragraph_lacks():
    ctx = "Tomasz Lind, the chief financial officer, approves trips. The annual report is due in May."
    rng = random.Random(0)
    new = _flip_contrast("Who is the chief financial officer?", ctx, rng)
    assert new is not None and new.startswith("Who is the chief ") and new.endswith(" officer?")
    word = new.split()[4]
    assert word in CONTRAST["financial"] and word != "financial" and word not in ctx
    assert _flip_contrast("What is in the annual report?", ctx, rng).split()[4] in {"quarterly", "monthly", "weekly", "daily"}
    assert _flip_contrast("Who may approve trips?", ctx, rng) is None  # "may" the verb is not the month
    assert _flip_contrast("Who is the chief executive officer?", ctx, rng) is None  # not the paragraph's word
    assert _flip_contrast("Who approves trips?", ctx, rng) is None


def test_contrast_kind_leaves_the_other_kinds_as_they_were():
    ctx = [CTX, "The annual report of the Normans was written in Sicily. Roger ruled Palermo after Robert."]
    squad = [["When did Kublai Khan found the Yuan dynasty?", 0, CTX.index("1271"), "1271"],
             ["What was the first capital?", 0, CTX.index("Khanbaliq"), "Khanbaliq"],
             ["Where was the annual report written?", 1, ctx[1].index("Sicily"), "Sicily"]] * 4
    prep = {"contexts": ctx, "ctx_article": [0, 1], "squad": squad}
    without = synthetic_negatives(prep, 0, 0, 42, n_antonym=2, n_negated=2, n_inside=2)
    with_contrast = synthetic_negatives(prep, 0, 0, 42, n_antonym=2, n_negated=2, n_inside=2, n_contrast=3)
    assert with_contrast[:len(without)] == without
    added = with_contrast[len(without):]
    assert [k for *_, k in added] == ["contrast"] * 3
    assert all("annual" not in q and q.startswith("Where was the ") for q, *_ in added)


def test_the_model_card_names_the_overrides_a_run_was_trained_with():
    from rag.training import reader
    from rag.training.common import hyperparameters

    hp = {**hyperparameters(vars(reader)), "stage": "train", "run_name": "contc", "base_copy": "models/reader",
          "synth_tables": 15000, "lr": 3e-5}
    assert reader._overrides(hp) == "--synth_tables=15000 --lr=3e-05 --base_copy=models/reader"
    assert reader._overrides(hyperparameters(vars(reader))) == ""  # the defaults: nothing to name
