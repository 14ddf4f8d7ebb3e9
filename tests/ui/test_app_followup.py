"""Follow-up questions in the chat app: the conversation on screen is passed to the agent, which
rewrites a follow-up into a standalone question (shown in the steps and the answer JSON).
Live app on loopback over the demo index, driven through ``gradio_client``; scripted LLM."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from ui_doubles import DEMO_QUESTION, StreamingScriptedLLM, grounded_reply

from branchwise.models.base import Message
from branchwise.ui.sessions import chat_history

CHAT, RAW = 1, 8
FOLLOW_UP = "And how is that computed?"


def rewriting_reply(messages: Sequence[Message]) -> str:
    """The follow-up with the topic of the last user turn; every other step as in the other UI tests."""
    if "rewrite the last question" in messages[0].content:
        user = messages[-1].content
        topic = re.findall(r"^User: (.*)$", user.rsplit("<conversation>", 1)[1], re.M)[-1]
        follow_up = user.rsplit("Last question:", 1)[1].removesuffix("JSON:").strip()
        return json.dumps({"question": f"{follow_up} ({topic})"})
    return grounded_reply(messages)


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    return "".join(c.get("text", "") for c in content) if isinstance(content, list) else str(content)


def test_a_follow_up_is_answered_from_the_conversation_on_screen(demo_index: Path, real_embedder: Any,
                                                                 launch) -> None:
    llm = StreamingScriptedLLM(replies=rewriting_reply, delay_s=0.0)
    app = launch(demo_index, {"scripted": llm}, real_embedder, llm="scripted")
    client = app.client()
    first = client.predict(DEMO_QUESTION, api_name="/ask")
    assert first[RAW]["standalone_question"] == DEMO_QUESTION  # a first question is kept as asked
    second = client.predict(FOLLOW_UP, first[CHAT], api_name="/ask")
    raw = second[RAW]
    assert raw["question"] == FOLLOW_UP and raw["standalone_question"] == f"{FOLLOW_UP} ({DEMO_QUESTION})"
    assert raw["found"] and raw["citations"]
    # the steps of the follow-up show the standalone question
    steps = [m for m in second[CHAT] if m.get("metadata")][-1]
    assert f"standalone question: {FOLLOW_UP} ({DEMO_QUESTION})" in _text(steps)
    # the rewrite saw the first question and its answer, not the agent-steps message
    prompt = next(c for c in llm.calls if "rewrite the last question" in c[0].content)[-1].content
    answer = first[RAW]["text"].rsplit(" [", 1)[0]
    assert f"User: {DEMO_QUESTION}" in prompt and answer[:60] in prompt and "navigating level" not in prompt


def test_chat_history_keeps_questions_and_answers_only() -> None:
    messages = [
        {"role": "user", "metadata": None, "content": [{"type": "text", "text": "Who wrote it?"}]},
        {"role": "assistant", "metadata": {"title": "Agent steps"}, "content": "- navigating level 1"},
        {"role": "assistant", "content": "Bram Stoker [1]."},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "**Could not answer:** the index is gone."},
        {"role": "system", "content": "x"},
    ]
    assert chat_history(messages) == [{"role": "user", "content": "Who wrote it?"},
                                      {"role": "assistant", "content": "Bram Stoker [1]."},
                                      {"role": "user", "content": "and?"}]
