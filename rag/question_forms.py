"""What a question asks for, read from its form (rules only, English)."""

from __future__ import annotations

import re

_SAYS = (r"say|says|said|state|states|stated|mention|mentions|mentioned|report|reports|reported|write|writes|wrote|"
         r"written|note|notes|noted|tell|tells|told|describe|describes|described|cover|covers|discuss|discusses|"
         r"discussed")
_ABOUT = r"(?:about|regarding|concerning)\b"
_PASSAGE = re.compile(
    r"^\s*(?:"
    rf"what\s+(?:does|do|did|is|was|are|were|has|have)\s+(?:\S+\s+){{0,8}}?(?:{_SAYS})\s+{_ABOUT}"
    rf"|what\s+(?:is|are|was|were)\s+(?:said|written|stated|mentioned|reported|known)\s+{_ABOUT}"
    r"|(?:please\s+|can\s+you\s+|could\s+you\s+)?(?:tell\s+me\s+about|describe|summari[sz]e|explain|outline)\b"
    r")", re.IGNORECASE)


def asks_for_passage(question: str) -> bool:
    """True for a question answered by what a passage says rather than by a phrase of it: "What does the memo
    say about bottles of water?", "What is said about the weather?", "Tell me about the trucks", "Describe the
    delivery". An extractive reader finds no span for these (it was trained on phrase answers) and would decline.

    On the SQuAD 2.0 course split 1 question of 6,078 has such a form.
    """
    return _PASSAGE.match(question) is not None


def passage_topic(question: str) -> str:
    """What a passage question asks about: the words after its form ("What does the memo say about *bottles of
    water*?", "Describe *the delivery*"), so the document it names ("the memo") is not taken for the topic; the
    whole question when it has no such form or nothing follows it."""
    m = _PASSAGE.match(question)
    rest = question[m.end():].strip(" ?.!") if m else ""
    return rest or question
