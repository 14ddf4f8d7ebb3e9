"""Fixtures for the agent tests (the doubles themselves live in ``agent_doubles.py``)."""

from __future__ import annotations

import pytest
from agent_doubles import FakeIndex, make_chunks

from branchwise.types import Chunk


@pytest.fixture
def chunks() -> list[Chunk]:
    return make_chunks()


@pytest.fixture
def fake_index(chunks: list[Chunk]) -> FakeIndex:
    return FakeIndex(chunks)
