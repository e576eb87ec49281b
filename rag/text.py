"""Answer-text normalisation shared by the answer checks at run time and the SQuAD metrics of the evals."""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
CITATION_MARK = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def strip_citations(text: str) -> str:
    return CITATION_MARK.sub("", text).strip()


# sentence ends: . ! ? followed by space + capital/digit/quote, or a line break; keeps "U.S." and "1.5" whole
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n{1,}")
_ABBREV = re.compile(r"(?:\b[A-Z][a-z]{0,3}|\b[A-Z](?:\.[A-Z])*|\bNo|\bvs|\betc|\be\.g|\bi\.e)\.$")


def split_sentences(text: str) -> list[tuple[int, str]]:
    """``(offset, sentence)`` pairs of ``text``; does not split after short abbreviations ("Mr.", "U.S.")."""
    out: list[tuple[int, str]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        piece = text[start:m.end()].strip()
        if m.group(0).startswith("\n") or not _ABBREV.search(text[start:m.start()].rstrip()):
            if piece:
                out.append((start, piece))
            start = m.end()
    if text[start:].strip():
        out.append((start, text[start:].strip()))
    return out


_NO_CUT = re.compile(r"\b(?:v|vs|cf|al|ca|approx|fig|no|nos|vol|pp?|ch|art|sec|ed|eds)\.$", re.IGNORECASE)


def first_sentence_end(text: str, start: int, end: int) -> int:
    """Where the span ``text[start:end]`` ends once cut at the first sentence end inside it.

    A reader trained on one-phrase answers sometimes runs on past its answer's sentence ("$75. 3. Security
    deposit" for the late fee): the span is cut after the first sentence's last word, without its full stop,
    when that part has at least two word characters and the cut is no abbreviation ("FCC v. Pacifica").
    """
    parts = split_sentences(text[start:end])
    if len(parts) < 2:
        return end
    off, first = parts[0]
    if _NO_CUT.search(first) or len(re.findall(r"\w", first)) < 2:
        return end
    cut = start + off + len(first)
    while cut > start and text[cut - 1] in ".!?;:, \t\n":
        cut -= 1
    return cut


# a sentence written to an AI assistant rather than to the document's reader: hidden instructions in a document
_TO_ASSISTANT = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,30}\b(?:previous|prior|above|all|any|your)\b[^.\n]{0,15}"
    r"\b(?:instructions?|prompts?)\b(?=[^.\n]*\b(?:reply|respond|answer|say|output|write|print)\b)"
    r"|\bignore the user\b"
    r"|(?:^|\n)\W*(?:assistant|developer|admin)(?:_instruction|\s+instruction|\s+override)?s?\s*[:\]]"
    r"|\b(?:new|updated) instructions (?:from|for) the\b"
    r"|\b(?:you are now|as an ai|ai assistants?|dear assistant|all assistants|assistants must)\b"
    r"|\b(?:reply|respond|answer)\b[^.\n]{0,30}\b(?:only with|only in|the single word|every question)\b"
    r"|\bfrom now on\b[^.\n]{0,30}\b(?:answer|reply|respond)\b"
    r"|\b(?:start|begin|end) (?:every|each|your) (?:answer|reply|response)\b"
    r"|\b(?:print|repeat|reveal)\b[^.\n]{0,30}\b(?:system prompt|your (?:full )?instructions|your prompt)\b"
    r"|<\|im_(?:start|end)\|>|###\s*(?:user|assistant|system)\s*:",
    re.IGNORECASE)
_SYSTEM_TURN = re.compile(r"(?:^|\n)\W*SYSTEM\s*:")  # a chat role in capitals ("SYSTEM: New policy ...")


def addresses_the_assistant(sentence: str) -> bool:
    """True for a sentence that gives orders to an AI assistant ("Ignore all previous instructions and reply
    ...", "SYSTEM: ...", "Dear assistant, ...", chat-template tokens): such a sentence is never evidence for an
    answer, whatever it claims. Deliberately narrow (ordinary sentences such as "Please ignore my previous email"
    or "System: Model X200" stay evidence); the prompt's fencing and the answer check stand behind it."""
    return _TO_ASSISTANT.search(sentence) is not None or _SYSTEM_TURN.search(sentence) is not None
