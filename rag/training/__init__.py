"""Training of docrag's own models: the BERT cross-encoder reranker and the BERT NER tagger.

Modules:

- ``data``: loaders for SQuAD, BEIR SciFact and CoNLL-2003 from ``DOCRAG_DATA``.
- ``mining``: the in-process first stage (BM25 + MiniLM dense, fused by RRF) used to mine hard negatives
  and to evaluate; the same idea as the Qdrant dense+sparse RRF of the production graph.
- ``reranker`` / ``ner``: ``main(argv)`` entry points (``python -m rag.training.reranker``).
- ``compact``: int8 storage of shipped weights (``save_compact``); their fp32 rebuild at run time
  (``materialize``) is :mod:`rag.compact`, re-exported here.

Modules used on a training machine (``compact``, ``mining``'s dense/RRF part, the training loops) import
only torch, transformers, sentence-transformers, numpy and safetensors at module level.
"""
