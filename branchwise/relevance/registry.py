"""The rerankers, by spec (``--reranker`` / ``Settings.reranker`` / ``BRANCHWISE_RERANKER``).

==============================  ============================================================
spec                            reranker
==============================  ============================================================
``none``                        no reranking (the retrieval order stands)
``default``                     the bundled MiniLM cross-encoder trained on HotpotQA
``default:int8``                the same, int8-quantised on CPU (about 2x the passages/s)
``cross-encoder:/path/or/id``   any sentence-transformers CrossEncoder (bge-reranker, ms-marco)
``cross-encoder:PATH#int8``     the same, int8-quantised on CPU
``llm-yesno``                   the LLM's P(Yes) per passage, one forward pass each
``llm-listwise``                the LLM's first-token label probabilities over a window
``rerank:URL#model``            a /rerank endpoint (vLLM, Infinity, Jina/Cohere wire format)
``tei:URL``                     a Text Embeddings Inference /rerank endpoint
``cosine``                      embedding cosine (the index's embedder)
==============================  ============================================================

Each factory is ``factory(argument, *, llm=None, embedder=None) -> Reranker | None``;
``needs`` says what the composition root must supply.
"""

from __future__ import annotations

from branchwise.registry import Registry

RERANKERS: Registry = Registry("reranker", "--reranker / Settings.reranker")
RERANKERS.register("none", "branchwise.relevance.factories:no_reranker", "no reranking")
RERANKERS.register("default", "branchwise.relevance.factories:default_reranker",
                   "the bundled MiniLM cross-encoder trained on HotpotQA supporting facts (default:int8 on CPU: "
                   "int8-quantised, about 2x faster)", example="default:int8")
RERANKERS.register("cross-encoder", "branchwise.relevance.factories:cross_encoder_reranker",
                   "a sentence-transformers CrossEncoder folder or cached hub id (#int8: int8-quantised on CPU)",
                   example="cross-encoder:/path/to/model")
RERANKERS.register("llm-yesno", "branchwise.relevance.factories:yesno_reranker",
                   "the LLM's P(Yes) per passage (one forward pass each)", needs=("llm",))
RERANKERS.register("llm-listwise", "branchwise.relevance.factories:listwise_reranker",
                   "the LLM's first-token label probabilities over a window of passages", needs=("llm",))
RERANKERS.register("rerank", "branchwise.relevance.factories:rerank_endpoint",
                   "a /rerank endpoint (vLLM, Infinity, Jina/Cohere format)", example="rerank:http://host:8000/v1#model")
RERANKERS.register("tei", "branchwise.relevance.factories:tei_endpoint", "a Text Embeddings Inference /rerank endpoint",
                   example="tei:http://host:8080")
RERANKERS.register("cosine", "branchwise.relevance.factories:cosine_reranker", "embedding cosine",
                   needs=("embedder",))
