from haystack import Document

from ingest.sparse import BM25DocumentSparseEmbedder, BM25SparseEncoder, bm25_tokenize, term_id
from rag.components.bm25_query_embedder import BM25QuerySparseEmbedder


def test_tokenize_stems_and_drops_stop_words() -> None:
    assert bm25_tokenize("The runners were running quickly to the stations") == ["runner", "run", "quick", "station"]


def test_document_weights_saturate_and_query_is_binary() -> None:
    enc = BM25SparseEncoder(k1=1.2, b=0.75, avg_len=10)
    doc = enc.encode_document("cat cat cat dog")
    weights = dict(zip(doc.indices, doc.values))
    assert weights[term_id("cat")] > weights[term_id("dog")]
    assert weights[term_id("cat")] < 3 * weights[term_id("dog")]  # tf saturates
    q = BM25QuerySparseEmbedder().run(text="cats and dogs")["sparse_embedding"]
    assert sorted(q.indices) == sorted({term_id("cat"), term_id("dog")}) and set(q.values) == {1.0}


def test_component_does_not_mutate_input() -> None:
    d = Document(content="alpha beta", meta={"title_path": "Gamma"})
    out = BM25DocumentSparseEmbedder(meta_fields_to_embed=["title_path"]).run(documents=[d])["documents"][0]
    assert d.sparse_embedding is None and term_id("gamma") in out.sparse_embedding.indices
