"""Extractive summary of a document: its most central sentences, without repeats, in document order.

Sentences are embedded with our sentence-transformers embedder (MiniLM by default); a sentence's centrality is
its mean cosine similarity to the document's other sentences (LexRank's degree without a threshold), and
MMR (maximal marginal relevance) picks central sentences that are not near-copies of those already picked.
Every word of the summary is the document's own, so nothing is invented; each sentence keeps its page.

```python
summarizer = ExtractiveDocumentSummarizer(model="sentence-transformers/all-MiniLM-L6-v2")
summarizer.warm_up()
out = summarizer.run(documents=chunks)   # chunks of one document, in order
out["summary"]                           # "The airplane ... 1,500 feet. ..."
out["sentences"]                         # [{"text", "page", "chunk_id", "index"}] in document order
```
"""

from __future__ import annotations

import logging
import re
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import ComponentError

from ingest.chunk import page_at
from rag.text import split_sentences

logger = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")


@component
class ExtractiveDocumentSummarizer:
    """Summarises a document's chunks by picking central, non-redundant sentences (MMR), in document order.

    :param model: a sentence-transformers model folder or id available offline (our embedder).
    :param device: ``"cpu"``, ``"cuda"``...
    :param num_sentences: sentences in the summary (fewer when the document has fewer usable ones).
    :param diversity: MMR trade-off in [0, 1]: 0 = centrality only, 1 = only novelty.
    :param min_words: shorter sentences (headers, table cells, page numbers) are not candidates.
    :param max_sentences: at most this many candidate sentences are embedded (the first ones).
    :param batch_size: sentences per encoder batch.
    :param model_kwargs: the encoder's load options (e.g. ``{"dtype": "bfloat16"}``), as the embedders get them.
    :param trust_remote_code: needed for an ONNX Runtime folder (``rag.onnx_runtime``).
    :raises ValueError: a bad number.
    """

    def __init__(self, model: str, device: str = "cpu", num_sentences: int = 5, diversity: float = 0.3,
                 min_words: int = 6, max_sentences: int = 600, batch_size: int = 64,
                 model_kwargs: dict[str, Any] | None = None, trust_remote_code: bool = False) -> None:
        if not model:
            raise ValueError("model must name a sentence-transformers model, got ''")
        if num_sentences < 1:
            raise ValueError(f"num_sentences must be >= 1, got {num_sentences}")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {diversity}")
        if min_words < 1 or max_sentences < 1 or batch_size < 1:
            raise ValueError(f"min_words, max_sentences and batch_size must be >= 1, got "
                             f"{min_words}, {max_sentences}, {batch_size}")
        self.model = model
        self.device = device
        self.num_sentences = num_sentences
        self.diversity = diversity
        self.min_words = min_words
        self.max_sentences = max_sentences
        self.batch_size = batch_size
        self.model_kwargs = dict(model_kwargs) if model_kwargs else None
        self.trust_remote_code = trust_remote_code
        self._encoder: Any = None

    def warm_up(self) -> None:
        """Load the sentence encoder (once), through the same backend cache as Haystack's sentence-transformers
        embedders: with the indexing graph's ``model``/``model_kwargs``/``trust_remote_code`` it is their loaded
        model, not a second copy.

        :raises ComponentError: the model cannot be loaded.
        """
        if self._encoder is not None:
            return
        try:
            from haystack.utils import ComponentDevice, Secret
            from haystack_integrations.components.embedders.sentence_transformers.embedding_backend.backend import (
                _SentenceTransformersEmbeddingBackendFactory,
            )

            self._encoder = _SentenceTransformersEmbeddingBackendFactory.get_embedding_backend(
                model=self.model, device=ComponentDevice.from_str(self.device).to_torch_str(),
                auth_token=Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False),  # the embedders' default
                trust_remote_code=self.trust_remote_code, local_files_only=True, model_kwargs=self.model_kwargs,
            ).model
        except Exception as e:
            raise ComponentError(f"Could not load the sentence encoder {self.model!r} for extractive summaries "
                                 "(set DOCRAG_EMBEDDER to a local sentence-transformers folder)") from e

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model=self.model, device=self.device, num_sentences=self.num_sentences,
                               diversity=self.diversity, min_words=self.min_words,
                               max_sentences=self.max_sentences, batch_size=self.batch_size,
                               model_kwargs=self.model_kwargs, trust_remote_code=self.trust_remote_code)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveDocumentSummarizer:
        return default_from_dict(cls, data)

    def candidates(self, documents: list[Document]) -> list[dict[str, Any]]:
        """The document's sentences once each (chunks overlap), in order, with page and chunk id."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for doc in documents:
            for offset, sent in split_sentences(doc.content or ""):
                key = " ".join(_WORD.findall(sent.lower()))
                if len(key.split()) < self.min_words or key in seen or any(key in s for s in seen):
                    continue  # too short, or a repeat / a piece of a sentence seen in the previous chunk
                if sent.count(":") > 1 or sent.count("|") > 1:
                    continue  # form fields ("Crew Injuries: 1 Minor Aircraft Damage: Substantial"), table rows
                seen.add(key)
                out.append({"text": " ".join(sent.split()), "page": page_at(doc.meta, offset),
                            "chunk_id": doc.id, "offset": offset, "index": len(out)})
                if len(out) >= self.max_sentences:
                    return out
        return out

    @component.output_types(summary=str, sentences=list[dict[str, Any]], backend=str, model=str, parts=int)
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Summarise the chunks of ONE document (in reading order).

        :returns: ``summary`` (the picked sentences joined), ``sentences`` (``text``, ``page``, ``chunk_id``,
            ``offset`` into the chunk, ``index``), ``backend`` = ``"extractive"``, ``model``, ``parts`` = 1.
        """
        cands = self.candidates(documents)
        if len(cands) <= self.num_sentences:
            picked = cands
        else:
            self.warm_up()
            picked = [cands[i] for i in self._select([c["text"] for c in cands])]
        picked = sorted(picked, key=lambda c: c["index"])
        return {"summary": " ".join(c["text"] for c in picked), "sentences": picked, "backend": "extractive",
                "model": self.model, "parts": 1}

    def _select(self, sentences: list[str]) -> list[int]:
        import numpy as np

        emb = self._encoder.encode(sentences, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        sim = emb @ emb.T
        n = len(sentences)
        centrality = (sim.sum(axis=1) - 1.0) / max(n - 1, 1)
        chosen: list[int] = []
        best_sim = np.full(n, -1.0)
        lam = 1.0 - self.diversity
        for _ in range(min(self.num_sentences, n)):
            score = lam * centrality - (1.0 - lam) * np.where(best_sim < -0.5, 0.0, best_sim)
            score[chosen] = -np.inf
            i = int(score.argmax())
            chosen.append(i)
            best_sim = np.maximum(best_sim, sim[i])
        return chosen
