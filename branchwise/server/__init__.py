"""Serving branchwise.

* :mod:`~branchwise.server.app` — ``branchwise serve``: an OpenAI-compatible chat API and a REST
  API over one or more indexes, each under its own name, with per-index API keys, a fair queue
  in front of the shared LLM, request limits and JSON access logs (docs/server.md);
* :mod:`~branchwise.server.langgraph_app` — the graph factory for ``langgraph dev`` / LangGraph Server.
"""
