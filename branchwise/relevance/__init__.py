"""Relevance models: score a query against many passages (rerankers), one registry of them.

* :mod:`~branchwise.relevance.base` — the :class:`Reranker` protocol and fusion helpers;
* :mod:`~branchwise.relevance.registry` — :data:`RERANKERS`, resolved from spec strings
  (``default``, ``cross-encoder:/path``, ``llm-yesno``, ``llm-listwise``, ``rerank:URL#model``,
  ``tei:URL``, ``cosine``, ``none``);
* backends: :mod:`~.cross_encoder` (sentence-transformers CrossEncoder, incl. the bundled
  default trained by ``branchwise train-reranker``), :mod:`~.llm` (P(Yes) per item; FIRST-style
  listwise in one forward pass), :mod:`~.http` (TEI / Cohere-style ``/rerank`` endpoints),
  :mod:`~.embedding` (cosine).

The navigator (scorer ``reranker``), the agent (evidence ranking) and the extractive
compressor (sentence selection) take a reranker from the composition root.
"""
