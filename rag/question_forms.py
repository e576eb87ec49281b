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


# Words that exclude one another: a question asking for one of a set does not ask for another ("chief executive
# officer" / "chief financial officer", "annual" / "quarterly"). Months and weekdays count only capitalised ("may",
# "march" are verbs). Shared with the reader trainer's "contrast" no-answer questions (rag.training.reader).
CONTRAST_SETS: tuple[tuple[str, ...], ...] = tuple(tuple(g.split()) for g in (
    "executive financial operating technology marketing legal information",
    "annual quarterly monthly weekly daily", "domestic international foreign", "public private",
    "primary secondary tertiary", "gross net", "senior junior", "male female", "men women",
    "summer winter spring autumn", "morning afternoon evening night",
    "january february march april may june july august september october november december",
    "monday tuesday wednesday thursday friday saturday sunday",
    "red blue green yellow black white orange purple", "army navy", "catholic protestant",
    "father mother son daughter brother sister wife husband uncle aunt", "king queen prince princess emperor",
    "imports exports", "import export", "bought sold", "buy sell", "left right",
    "minimum maximum", "input output", "civil criminal", "indoor outdoor", "urban rural", "solar lunar",
    "federal provincial municipal", "upstream downstream", "offensive defensive", "vertical horizontal"))
CONTRAST: dict[str, tuple[str, ...]] = {w: g for g in CONTRAST_SETS for w in g}
CAPITALISED_SETS = (CONTRAST["may"], CONTRAST["monday"])
_LETTERS = re.compile(r"[A-Za-z]+")


def contrast_group(word: str) -> tuple[str, ...] | None:
    """The contrast set ``word`` (as written) belongs to, or None; a month or weekday only when capitalised."""
    group = CONTRAST.get(word.lower())
    return group if group and (group not in CAPITALISED_SETS or word[0].isupper()) else None


def contrast_words(text: str) -> set[str]:
    """The words of ``text`` (lowercased) that belong to a contrast set (:func:`contrast_group`)."""
    return {w.lower() for w in _LETTERS.findall(text) if contrast_group(w)}


# Names with a number: a model or part ("AMR-600", "DW-88"), a period ("Q3", "FY2023", "H1"), a level ("P1"), and
# years (1500-2099). Two of one kind (same letters, or both years) name different things.
_CODE = re.compile(r"\b([A-Za-z]*[A-Z][A-Za-z]*(?:-[A-Za-z]+)*)-?(\d+)\b")
_YEAR = re.compile(r"(?<![\w.,'’$€£-])(?<!: )(1[5-9]\d\d|20\d\d)(?![\w%]|[.,]\d)")


def numbered_names(text: str) -> set[tuple[str, str]]:
    """``(kind, name)`` for each numbered name of ``text``: ``("amr", "amr600")`` for "AMR-600", ``("q", "q3")``
    for "Q3", ``("year", "1990")`` for 1990. The letters must hold a capital ("Q3", not "mp3"); a decade ("1960s"),
    an amount ("$2015", "2,015"), a number with a decimal part or a table cell's value ("Sales: 1792") is no
    year."""
    out = {(m.group(1).lower(), (m.group(1) + m.group(2)).lower().replace("-", "")) for m in _CODE.finditer(text)}
    return out | {("year", y) for y in _YEAR.findall(text)}


def contradicts(question: str, text: str) -> bool:
    """True when ``text`` speaks of another thing than ``question`` asks about, in either of two ways:

    - the question asks for one word of a contrast set that ``text`` lacks while ``text`` has another of the same
      set: "Who is the chief executive officer?" of "The chief financial officer, Tomasz Lind, ..."; "What
      happened in May 1990?" of "In June 1990 ...";
    - the question names a numbered name (:func:`numbered_names`) of a kind of which ``text`` holds others but
      none the question names: "What is the payload of the AMR-800?" of "Payload · AMR-400: 400 kg | AMR-600:
      600 kg"; "What was revenue in 2023?" of "Revenue was $4.1 million in 2022."

    On the 600 open-book calibration-article questions the contrast sets fired once and the years seven times,
    each time on the best span of an unanswerable question; on the gold answer sentences of the 87,599 SQuAD 1.1
    train questions the whole check fires on 394 (0.45%; most of them SQuAD questions whose year disagrees with
    their own paragraph)."""
    asked, held = contrast_words(question), contrast_words(text)
    if any(w not in held and any(o in held for o in CONTRAST[w] if o != w) for w in asked):
        return True
    names, there = numbered_names(question), numbered_names(text)
    years = sorted(int(n) for kind, n in names if kind == "year")
    if len(years) >= 2 and any(k == "year" and years[0] <= int(n) <= years[-1] for k, n in there):
        there = there | {("year", str(years[0]))}  # "between 1990 and 1995": a year inside the range is asked too
    kinds = {kind for kind, _ in names}
    return any(not any(n in there for n in names if n[0] == kind) and any(t[0] == kind for t in there)
               for kind in kinds)


# a defined term in parentheses after a party's name: "Maria Delgado (the Tenant)", '(the "Company")', "(hereinafter
# the Buyer)"; one to three capitalised words, never an acronym ("(NHS)", "(PCB)")
_DEFINED = re.compile(r"\(\s*(?:hereinafter\s+(?:called\s+|referred\s+to\s+as\s+)?)?(?:the\s+)?[\"“‘']?"
                      r"([A-Z][a-z][a-z-]*(?:\s+[A-Z][a-z][a-z-]*){0,2})[\"”’']?\s*\)")


def defined_as_another(question: str, sentence: str, span_end: int) -> bool:
    """True when the span ending at ``span_end`` of ``sentence`` is introduced as one defined term while the question
    asks for another defined term of the same sentence: "Who is the landlord?" of "... between Northgate Properties
    LLC (the Landlord) and Maria Delgado (the Tenant)", span "Maria Delgado". Contracts name their parties this way,
    and a reader trained on encyclopedia prose takes either name."""
    terms = [(m.start(), m.group(1)) for m in _DEFINED.finditer(sentence)]
    if len(terms) < 2:
        return False
    own = next((t for s, t in terms if s >= span_end and not sentence[span_end:s].strip(" ,")), None)
    if own is None:
        return False
    asked = {w.lower() for w in _LETTERS.findall(question)}

    def named(term: str) -> bool:
        return all(w.lower() in asked for w in _LETTERS.findall(term))

    return not named(own) and any(named(t) for _, t in terms if t.lower() != own.lower())
