"""A small real index for the integration tests (all-MiniLM-L6-v2 in Chroma, BM25, an
extractive-summary tree: seconds, no LLM)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from branchwise.assembly.root import build_index
from branchwise.assembly.settings import Settings

VOLCANOES = [
    {"id": "etna", "title": "Etna", "text": "Mount Etna is an active volcano on the east coast of Sicily. In 1669 "
     "its lava flowed south and reached the walls of Catania."},
    {"id": "vesuvius", "title": "Vesuvius", "text": "Mount Vesuvius destroyed Pompeii in the year 79. It stands "
     "above the Bay of Naples."},
    {"id": "hekla", "title": "Hekla", "text": "Hekla is a volcano in the south of Iceland. Medieval writers "
     "called it the gateway to hell."},
    {"id": "bread", "title": "Bread", "text": "Bread is baked from dough made of flour and water. Sourdough rises "
     "with wild yeast."},
    {"id": "oven", "title": "Oven", "text": "A wood-fired oven reaches 450 degrees and bakes pizza in ninety seconds."},
]


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    root = tmp_path_factory.mktemp("integrations")
    corpus = root / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in VOLCANOES), encoding="utf-8")
    settings = Settings()
    tree = dataclasses.replace(settings.index.tree, max_children=3,
                               summary=dataclasses.replace(settings.index.tree.summary, mode="extractive"))
    build_index(corpus, root / "index", settings.replace(index={"tree": tree}), embedder=real_embedder, progress=False)
    return root / "index"
