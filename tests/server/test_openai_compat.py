"""The OpenAI-compatible surface with the official ``openai`` client against a live server on loopback
(real indexes, real LangGraph agent, scripted LLM; the real model is in ``test_server_real_llm.py``)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from branchwise.server.config import ServedIndexSpec

ETNA_Q = "Which city did the lava of Etna reach in 1669?"


@pytest.fixture
def live(serve, volcano_index: Path, baking_index: Path, scripted_settings):
    return serve([ServedIndexSpec("volcanoes", volcano_index), ServedIndexSpec("baking", baking_index)],
                 scripted_settings)


def test_models_are_the_served_indexes(live) -> None:
    assert [m.id for m in live.openai().models.list()] == ["volcanoes", "baking"]


def test_a_chat_completion_carries_citations_in_the_text_and_structured(live) -> None:
    reply = live.openai().chat.completions.create(model="volcanoes", messages=[{"role": "user", "content": ETNA_Q}])
    text = reply.choices[0].message.content
    assert "Catania" in text and "[1]" in text
    assert text.endswith("Sources:\n[1] Etna (etna#0)")
    assert reply.choices[0].finish_reason == "stop" and reply.model == "volcanoes"
    assert reply.citations == [{"chunk_id": "etna#0", "marker": "[1]", "title": "Etna",  # type: ignore[attr-defined]
                                "quote": reply.citations[0]["quote"]}]  # type: ignore[attr-defined]
    extra = reply.branchwise  # type: ignore[attr-defined]
    assert extra["found"] and extra["question"] == ETNA_Q and reply.id == f"chatcmpl-{extra['trace_id']}"
    assert reply.usage is not None and reply.usage.total_tokens > 0

    # the trace is retrievable by id, and names the index, not the server's path
    with live.client() as http:
        trace = http.get(f"/v1/traces/{extra['trace_id']}").json()
    assert trace["schema"] == "branchwise.agent_trace/1" and trace["question"] == ETNA_Q
    assert trace["run"]["index"] == "volcanoes" and trace["answer"]["citations"][0]["chunk_id"] == "etna#0"


def test_streaming_sends_the_answer_in_chunks_then_its_citations(live) -> None:
    stream = live.openai().chat.completions.create(model="volcanoes", stream=True,
                                                   stream_options={"include_usage": True},
                                                   messages=[{"role": "user", "content": ETNA_Q}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Catania" in text and text.endswith("Sources:\n[1] Etna (etna#0)")
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3  # token by token, not one block
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1 and final[0].citations[0]["chunk_id"] == "etna#0"  # type: ignore[attr-defined]
    assert len({c.id for c in chunks}) == 1 and chunks[0].id == f"chatcmpl-{final[0].branchwise['trace_id']}"  # type: ignore[attr-defined]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # the streamed answer is the one in the trace
    assert text.startswith(final[0].branchwise["answer"])  # type: ignore[attr-defined]


def test_a_follow_up_in_the_conversation_is_rewritten_before_it_is_searched(live) -> None:
    first = live.openai().chat.completions.create(model="volcanoes", messages=[{"role": "user", "content": ETNA_Q}])
    messages = [{"role": "system", "content": "You are helpful."},
                {"role": "user", "content": ETNA_Q},
                {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "And where is it?"}]
    reply = live.openai().chat.completions.create(model="volcanoes", messages=messages)
    extra = reply.branchwise  # type: ignore[attr-defined]
    assert extra["rewritten"] and extra["question"] == "And where is it?"
    assert extra["standalone_question"] == f"And where is it? ({ETNA_Q})"
    with live.client() as http:
        trace = http.get(f"/v1/traces/{extra['trace_id']}").json()
    assert trace["contextualize"]["history_turns"] == 2 and trace["original_question"] == "And where is it?"
    assert [c["node"] for c in trace["calls"]][0] == "contextualize"


def test_streaming_a_not_found_answer_never_shows_the_raw_token(live) -> None:
    stream = live.openai().chat.completions.create(model="volcanoes", stream=True,
                                                   messages=[{"role": "user", "content": "Zzyzx qwxv?"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Not found in the corpus."


def test_openai_errors_map_to_the_sdk_exceptions(live) -> None:
    client = live.openai()
    with pytest.raises(openai.NotFoundError, match="no index named"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": ETNA_Q}])
    with pytest.raises(openai.BadRequestError, match="cannot be set per request"):
        client.chat.completions.create(model="volcanoes", messages=[{"role": "user", "content": ETNA_Q}],
                                       extra_body={"branchwise": {"agent": {"llm_spec": "x"}}})
    with pytest.raises(openai.BadRequestError, match="last message must be the user"):
        client.chat.completions.create(model="volcanoes", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="invalid request"):
        client.chat.completions.create(model="volcanoes", messages=[])


def test_options_and_max_tokens_reach_the_agent_settings(live) -> None:
    reply = live.openai().chat.completions.create(
        model="volcanoes", max_tokens=100_000, messages=[{"role": "user", "content": ETNA_Q}],
        extra_body={"branchwise": {"scorer": "yesno", "agent": {"plan": False}, "sources_in_text": False}})
    assert "Sources:" not in reply.choices[0].message.content
    with live.client() as http:
        trace = http.get(f"/v1/traces/{reply.branchwise['trace_id']}").json()  # type: ignore[attr-defined]
    assert trace["run"]["settings"]["scorer"] == "yesno"
    assert trace["config"]["plan"] is False and trace["config"]["answer_max_tokens"] == 1024  # clamped
    assert trace["navigation"][0]["scorer"] == "yesno"
