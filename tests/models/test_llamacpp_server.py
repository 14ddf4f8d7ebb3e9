"""The ``openai:`` backend against a REAL OpenAI-compatible server: llama-cpp-python's
(``python -m llama_cpp.server``) serving SmolLM2-135M on 127.0.0.1 (fixture in conftest.py).

What is checked is the protocol and the concurrency machinery, not the toy model's answers:
batched calls come back complete and in order, scores agree with single calls, structured
output degrades to the modes this server supports (it answers ``json_schema`` with HTTP 500),
and a whole agent question runs through the composition root.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from branchwise.assembly.root import build_agent, build_index
from branchwise.assembly.settings import Settings
from branchwise.models.base import GenParams, Message
from branchwise.models.batch import chat_batch, continuation_logprobs_batch
from branchwise.models.factory import make_llm
from branchwise.models.openai_http import OpenAIConfig
from branchwise.models.retry import CallScope
from branchwise.testing import HashingEmbedder

CFG = OpenAIConfig(timeout_s=120.0, max_concurrency=4)


def prompts(n: int) -> list[list[Message]]:
    # prompts of strictly increasing length: the order of the results shows in prompt_tokens
    return [[Message("user", "Name a colour. " + "Please answer briefly. " * i)] for i in range(n)]


def test_chat_and_batch_against_the_real_server(llama_server: Any) -> None:
    llm = make_llm(f"openai:{llama_server.url}#{llama_server.alias}", config=CFG)
    single = llm.chat([Message("user", "Say hello.")], GenParams(max_tokens=8))
    assert single.text.strip() and single.completion_tokens > 0 and single.prompt_tokens > 0
    out = chat_batch(llm, prompts(6), GenParams(max_tokens=4))
    assert len(out) == 6 and all(c.completion_tokens > 0 for c in out)
    tokens = [c.prompt_tokens for c in out]
    assert tokens == sorted(tokens) and len(set(tokens)) == 6  # results in input order
    assert llm.transport.limiter.stats.peak_in_flight == 4  # the batch kept 4 requests at the server


def test_logprob_scores_batched_equal_single_calls(llama_server: Any) -> None:
    llm = make_llm(f"openai:{llama_server.url}#{llama_server.alias}", config=CFG)
    batch = [[Message("system", "Answer Yes or No."), Message("user", q)] for q in (
        "Is Paris the capital of France?", "Is the sun cold?", "Is water wet?", "Is two larger than one?")]
    together = continuation_logprobs_batch(llm, batch, ["Yes", "No"])
    one_by_one = [llm.continuation_logprobs(m, ["Yes", "No"]) for m in batch]
    for a, b in zip(together, one_by_one):
        assert all(math.isfinite(x) and x <= 0 for x in a)
        # the server's prefix cache may change the last digits between runs, not the judgement
        assert [math.exp(x) for x in a] == pytest.approx([math.exp(x) for x in b], abs=0.05)


def test_structured_output_degrades_to_what_the_server_supports(llama_server: Any) -> None:
    llm = make_llm(f"openai:{llama_server.url}#{llama_server.alias}", config=CFG)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    with CallScope(120) as scope:
        sc = llm.chat_json([Message("user", "What is the capital of France? Reply in JSON.")], schema,
                           GenParams(max_tokens=40))
    assert isinstance(sc.value, dict)
    # llama-cpp-python rejects response_format json_schema with HTTP 500: one fallback, no retries
    assert [(f.kind, f.action) for f in scope.faults] == [("format_fallback", "using json_object from now on")]


@pytest.mark.slow  # ~10 s idle, ~50 s with both cores busy
def test_agent_question_through_the_composition_root(llama_server: Any, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tunnel.md").write_text("The Gotthard Base Tunnel opened in 2016 and is 57 kilometres long.")
    (docs / "bridge.md").write_text("The Millau Viaduct in France is the tallest bridge in the world.")
    settings = Settings(llm=f"openai:{llama_server.url}#{llama_server.alias}", timeout_s=300)
    tree = settings.index.tree
    settings = settings.replace(agent={"max_rounds": 2, "answer_max_tokens": 48}, index={"tree": dataclasses.replace(
        tree, summary=dataclasses.replace(tree.summary, mode="extractive"))})
    index = build_index(docs, tmp_path / "index", settings, embedder=HashingEmbedder(dim=64), progress=False)
    with build_agent(index, settings) as agent:
        answer = agent.ask("When did the Gotthard Base Tunnel open?")
    assert answer.trace is not None and answer.text
    assert answer.trace.calls, "the agent's LLM calls went to the real server"
    assert answer.trace.run["llm"] == f"openai:{llama_server.url}#{llama_server.alias}"
