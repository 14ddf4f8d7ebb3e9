"""Serving branchwise: the LangGraph server's graph factory (:mod:`~branchwise.server.langgraph_app`)."""
