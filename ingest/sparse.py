"""BM25-style sparse vectors for Qdrant hybrid search.

Documents get BM25 term-frequency weights ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``;
queries get weight 1 per distinct term. The collection's sparse vector uses Qdrant's ``IDF`` modifier, so
Qdrant supplies the inverse document frequency from the live collection: the dot product is BM25, with no
corpus statistics kept by us. Terms are lower-cased, stop words removed and Snowball-stemmed (English), then
hashed to stable 31-bit ids.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import replace

from haystack import Document, component
from haystack.dataclasses import SparseEmbedding
from nltk.stem.snowball import SnowballStemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = SnowballStemmer("english")
_STOP = frozenset(ENGLISH_STOP_WORDS)


def bm25_tokenize(text: str) -> list[str]:
    """Lower-case word tokens, stop words removed, Snowball-stemmed."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok in _STOP or len(tok) > 40:
            continue
        out.append(_STEMMER.stem(tok) if tok.isascii() else tok)
    return out


def term_id(term: str) -> int:
    """Stable 31-bit id of a term (CRC32; collisions are rare and harmless for ranking)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


class BM25SparseEncoder:
    """Turns text into BM25 sparse vectors (see module docstring)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0) -> None:
        if k1 <= 0 or not 0 <= b <= 1 or avg_len <= 0:
            raise ValueError(f"invalid BM25 parameters k1={k1}, b={b}, avg_len={avg_len}")
        self.k1, self.b, self.avg_len = k1, b, avg_len

    def encode_document(self, text: str) -> SparseEmbedding:
        tokens = bm25_tokenize(text)
        counts = Counter(term_id(t) for t in tokens)
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_len)
        idx = sorted(counts)
        return SparseEmbedding(indices=idx, values=[counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in idx])

    def encode_query(self, text: str) -> SparseEmbedding:
        idx = sorted({term_id(t) for t in bm25_tokenize(text)})
        return SparseEmbedding(indices=idx, values=[1.0] * len(idx))


@component
class BM25DocumentSparseEmbedder:
    """Adds a BM25 ``sparse_embedding`` to each document (content plus optional meta fields)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0,
                 meta_fields_to_embed: list[str] | None = None) -> None:
        self.k1, self.b, self.avg_len = k1, b, avg_len
        self.meta_fields_to_embed = meta_fields_to_embed or []
        self._encoder = BM25SparseEncoder(k1, b, avg_len)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        out = []
        for doc in documents:
            parts = [str(doc.meta[f]) for f in self.meta_fields_to_embed if doc.meta.get(f)]
            text = "\n".join([*parts, doc.content or ""])
            out.append(replace(doc, sparse_embedding=self._encoder.encode_document(text)))
        return {"documents": out}
