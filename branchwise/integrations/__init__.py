"""branchwise inside other frameworks: LlamaIndex and LangChain retrievers over a branchwise index.

* :mod:`branchwise.integrations.llamaindex` — ``BranchwiseRetriever`` (a LlamaIndex
  ``BaseRetriever``), ``BranchwiseQueryEngine`` (the whole agent as a query engine) and
  ``BranchwiseIndex`` with LlamaIndex's ``as_retriever()`` / ``as_query_engine()``
  (extra ``llamaindex``: llama-index-core is a core dependency);
* :mod:`branchwise.integrations.langchain` — ``BranchwiseRetriever`` (a LangChain
  ``BaseRetriever``; extra ``langchain``).

Both retrieve with the agent's route over the index — tree navigation when the index has a
tree — assembled by the composition root (:class:`~branchwise.integrations.search.IndexSearch`).
See docs/integrations.md.
"""
