"""Fixtures of the graph tests (the data lives in ``graph_corpus.py``)."""

from __future__ import annotations

import pytest
from graph_corpus import make_film_graph

from branchwise.graph.types import KnowledgeGraph


@pytest.fixture()
def film_graph() -> KnowledgeGraph:
    """The film graph built by hand (independent of extraction and resolution)."""
    return make_film_graph()
