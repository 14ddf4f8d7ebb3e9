"""The official ``openai`` client gets cited answers from the embedded 1.5B model through
``branchwise serve``'s app on loopback: once whole, once streamed (one round, no planning:
one LLM call per answer, ~10-30 s each on 2 CPU cores). The llama.cpp backend has no
``stream_chat`` today, so its answer arrives as one content chunk (token-level chunks are
tested with a streaming double in ``test_openai_compat.py``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from branchwise.assembly.settings import Settings
from branchwise.server.config import ServedIndexSpec

log = logging.getLogger(__name__)

QUESTION = "Which city did the lava of Etna reach in 1669?"


@pytest.mark.real_llm
def test_the_openai_client_gets_a_cited_answer_from_the_embedded_model(serve, volcano_index: Path,
                                                                        real_llm: Any) -> None:
    settings = Settings().replace(agent={"max_rounds": 1, "plan": False, "answer_max_tokens": 64})
    live = serve([ServedIndexSpec("volcanoes", volcano_index)], settings, llm=real_llm)
    client = live.openai()

    reply = client.chat.completions.create(model="volcanoes", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content
    log.info("real model, whole: %r", text)
    assert "Catania" in text
    assert reply.citations and reply.citations[0]["chunk_id"] == "etna#0"  # type: ignore[attr-defined]
    assert reply.citations[0]["marker"] in text and "Sources:\n" in text  # type: ignore[attr-defined]

    chunks = list(client.chat.completions.create(model="volcanoes", stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    log.info("real model, streamed in %d chunks: %r", len(chunks), streamed)
    assert "Catania" in streamed and "Sources:\n" in streamed
    assert streamed == text  # greedy decoding: the same answer, whole or streamed
    assert final.citations[0]["chunk_id"] == "etna#0"  # type: ignore[attr-defined]
