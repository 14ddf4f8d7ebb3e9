"""A follow-up that only makes sense with its history, answered by the real embedded 1.5B model.

Four companies, each with its founders, in a real index (all-MiniLM-L6-v2 in Chroma, BM25, an
extractive-summary tree). "Who founded it?" alone could be any of them; after "Which company
made the Walkman?" it is Sony. One round, no planning: two LLM calls (the rewrite, the answer).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from branchwise.assembly.root import Assembly, build_index
from branchwise.assembly.settings import Settings

log = logging.getLogger(__name__)

COMPANIES = [
    {"id": "sony", "title": "Sony", "text": "Sony is a Japanese electronics company. In 1979 it released the "
     "Walkman, a portable cassette player. Sony was founded in Tokyo in 1946 by Masaru Ibuka and Akio Morita."},
    {"id": "nokia", "title": "Nokia", "text": "Nokia is a Finnish telecommunications company known for its "
     "mobile phones. Nokia was founded in 1865 by Fredrik Idestam as a paper mill."},
    {"id": "ford", "title": "Ford", "text": "Ford is an American car maker that built the Model T. The Ford "
     "Motor Company was founded in 1903 by Henry Ford."},
    {"id": "nintendo", "title": "Nintendo", "text": "Nintendo is a Japanese video game company that made the "
     "Game Boy. Nintendo was founded in Kyoto in 1889 by Fusajiro Yamauchi."},
]


@pytest.mark.real_llm
def test_a_follow_up_is_answered_from_the_conversation(real_llm: Any, real_embedder: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "companies.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in COMPANIES), encoding="utf-8")
    settings = Settings()
    tree = settings.index.tree
    tree = dataclasses.replace(tree, max_children=3, summary=dataclasses.replace(tree.summary, mode="extractive"))
    settings = settings.replace(index={"tree": tree}, agent={"max_rounds": 1, "plan": False, "k": 2,
                                                             "answer_max_tokens": 64})
    index = build_index(corpus, tmp_path / "index", settings, embedder=real_embedder, progress=False)
    agent = Assembly(index, settings).agent(llm=real_llm)

    history = [{"role": "user", "content": "Which company made the Walkman?"},
               {"role": "assistant", "content": "The Walkman was made by Sony [1]."}]
    answer = agent.ask("Who founded it?", history=history)
    ctx = answer.trace.contextualize
    log.info("rewrite %r -> %r; answer %r", "Who founded it?", ctx and ctx["standalone"], answer.text)
    assert ctx is not None and ctx["method"] == "llm" and "sony" in ctx["standalone"].lower()
    assert answer.trace.original_question == "Who founded it?"
    assert answer.found and ("Ibuka" in answer.text or "Morita" in answer.text), answer.text
    assert any(c.chunk_id.startswith("sony") for c in answer.citations), answer.citations
    nodes = [c["node"] for c in answer.trace.calls]
    assert nodes[0] == "contextualize" and "generate" in nodes and "plan" not in nodes
