"""Follow-up questions made standalone before retrieval, by rules (no model, microseconds).

A follow-up such as "And who signed it?" retrieves nothing useful on its own. When a question leans on the
conversation (a pronoun or "that/those" referring back, an elliptical "what about X?", "and ...", or very few
content words), the topic of the previous question (its content words, names first) is carried over:

```python
QuestionCondenser().run(query="Who signed it?", history=["What does the memo say about water bottles?"])
# {"query": "Who signed it? (memo water bottles)", "condensed": True}
```

Questions that stand on their own pass through unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from haystack import component, default_from_dict, default_to_dict

_WORD = re.compile(r"[\w'’\-.]+")
_REFERS = re.compile(r"\b(?:it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|"
                     r"there|then|same|such|former|latter|one|ones)\b", re.IGNORECASE)
_ELLIPTIC = re.compile(r"^\s*(?:and|also|but|so|what about|how about|and what about|what else|why|how come|"
                       r"more|tell me more|explain|when|where)\b", re.IGNORECASE)
STOPWORDS = frozenset(["a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "with", "from", "about",
                       "as", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "done",
                       "has", "have", "had", "what", "which", "who", "whom", "whose", "when", "where", "why",
                       "how", "much", "many", "any", "some", "all", "each", "every", "and", "or", "but",
                       "not", "no", "nor", "so", "than", "too", "very", "can", "could", "should", "would",
                       "will", "shall", "may", "might", "must", "it", "its", "this", "that", "these", "those",
                       "there", "their", "they", "them", "he", "him", "his", "she", "her", "we", "our", "you",
                       "your", "i", "me", "my", "tell", "give", "show", "explain", "list", "describe", "say",
                       "says", "said", "mention", "mentioned", "document", "documents", "file", "text",
                       "please", "also", "more", "else", "other", "again"])


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry its topic, in order, without repeats (stop words and pronouns dropped)."""
    out: list[str] = []
    for w in _WORD.findall(text):
        w = w.strip(".'’-")
        if w and w.lower() not in STOPWORDS and w.lower() not in {x.lower() for x in out}:
            out.append(w)
    return out


@component
class QuestionCondenser:
    """Rewrites a follow-up question into a standalone one using the previous questions of the chat.

    :param min_content_words: a question with fewer content words than this is treated as a follow-up.
    :param max_topic_words: at most this many words of the earlier question(s) are carried over.
    :raises ValueError: a bad number.
    """

    def __init__(self, min_content_words: int = 2, max_topic_words: int = 6) -> None:
        if min_content_words < 0 or max_topic_words < 1:
            raise ValueError(f"min_content_words must be >= 0 and max_topic_words >= 1, got "
                             f"{min_content_words}, {max_topic_words}")
        self.min_content_words = min_content_words
        self.max_topic_words = max_topic_words

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, min_content_words=self.min_content_words, max_topic_words=self.max_topic_words)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionCondenser:
        return default_from_dict(cls, data)

    def is_follow_up(self, query: str) -> bool:
        """Does ``query`` lean on what was asked before?"""
        return bool(_REFERS.search(query) or _ELLIPTIC.match(query)
                    or len(content_words(query)) < self.min_content_words)

    @component.output_types(query=str, condensed=bool)
    def run(self, query: str, history: list[str] | None = None) -> dict[str, Any]:
        """The standalone question.

        :param query: the user's new question.
        :param history: the earlier user questions of this conversation, oldest first.
        :returns: ``query`` (the standalone question) and ``condensed`` (True when topic words were added).
        """
        history = [h for h in (history or []) if h and h.strip()]
        if not history or not self.is_follow_up(query):
            return {"query": query, "condensed": False}
        own = {w.lower() for w in content_words(query)}
        topic: list[str] = []
        for earlier in reversed(history):  # the latest question first; older ones fill up
            words = content_words(earlier)
            names = [w for w in words if w[:1].isupper() or any(c.isdigit() for c in w)]
            for w in names + [w for w in words if w not in names]:
                if w.lower() not in own and w.lower() not in {t.lower() for t in topic}:
                    topic.append(w)
            if topic:
                break
        topic = topic[: self.max_topic_words]
        if not topic:
            return {"query": query, "condensed": False}
        return {"query": f"{query.strip()} ({' '.join(topic)})", "condensed": True}
