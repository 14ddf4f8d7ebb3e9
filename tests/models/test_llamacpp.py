"""The embedded Qwen2.5-Coder-1.5B GGUF through llama.cpp (real model; few, small prompts)."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.models.base import LLM, GenParams, Message
from branchwise.models.factory import make_llm
from branchwise.models.llamacpp import LlamaCppConfig, LlamaCppLLM
from branchwise.models.llamacpp_scoring import common_prefix_len, log_softmax, prefix_order

# Scores of the same prompt agree to within this many nats whatever the KV-cache state:
# llama.cpp's CPU kernels round differently for different batch shapes, so a prompt whose
# shared prefix was reused (tail evaluated as a small batch) differs slightly from a cold
# evaluation (see LlamaCppConfig.prefix_cache). Relevant vs irrelevant differ by > 2 nats.
ORDER_TOL = 0.06


def assert_same_scores(actual, desired) -> None:
    """llama.cpp is not bit-reproducible across batch splits and KV-cache states: compare
    probabilities (absolute) and log-probabilities (relative), not exact log values."""
    a, d = np.asarray(actual, dtype=float), np.asarray(desired, dtype=float)
    np.testing.assert_allclose(np.exp(a), np.exp(d), atol=0.02)
    np.testing.assert_allclose(a, d, rtol=0.03, atol=ORDER_TOL)

PASSAGE = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall."
OFF_TOPIC = "Photosynthesis converts light energy into chemical energy in plants, releasing oxygen."
QUESTION = "When was the Eiffel Tower completed?"


def judge(passage: str, question: str = QUESTION) -> list[Message]:
    return [
        Message("system", "You judge whether a passage helps answer a question. Answer Yes or No."),
        Message("user", f"Question: {question}\nPassage: {passage}\nDoes the passage help answer the question?"),
    ]


@pytest.mark.real_llm
def test_protocol_and_name(real_llm: LlamaCppLLM) -> None:
    assert isinstance(real_llm, LLM)
    assert real_llm.name == "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M"
    assert real_llm.count_tokens("Hello world") == 2


@pytest.mark.real_llm
def test_answers_from_a_passage(real_llm: LlamaCppLLM) -> None:
    msgs = [Message("user", f"Passage: {PASSAGE}\nQuestion: {QUESTION}\nAnswer in one short sentence.")]
    real_llm._llm.reset()
    c = real_llm.chat(msgs, GenParams(max_tokens=32))
    assert "1889" in c.text
    assert c.prompt_tokens > 30 and 0 < c.completion_tokens <= 32
    # Greedy from the same (cold) cache state is reproducible. From a warm cache the prompt
    # tail is evaluated in another batch shape, which may flip a near-tie (see LlamaCppConfig).
    real_llm._llm.reset()
    assert real_llm.chat(msgs, GenParams(max_tokens=32)).text == c.text


@pytest.mark.real_llm
def test_yes_probability_separates_relevance(real_llm: LlamaCppLLM) -> None:
    rel_yes, rel_no = (math.exp(x) for x in real_llm.continuation_logprobs(judge(PASSAGE), ["Yes", "No"]))
    irr_yes, irr_no = (math.exp(x) for x in real_llm.continuation_logprobs(judge(OFF_TOPIC), ["Yes", "No"]))
    assert rel_yes + rel_no <= 1.0 + 1e-6 and irr_yes + irr_no <= 1.0 + 1e-6
    assert rel_yes + rel_no > 0.8  # the model answers Yes/No, not something else
    assert rel_yes > 0.6 and irr_yes < 0.3
    assert rel_yes - irr_yes > 0.4
    assert abs(rel_yes - 0.5) > 0.05  # not the logits_all trap


@pytest.mark.real_llm
def test_chat_json_follows_schema(real_llm: LlamaCppLLM) -> None:
    schema = {
        "type": "object",
        "properties": {"year": {"type": "integer"}, "height_m": {"type": "number"}},
        "required": ["year", "height_m"],
        "additionalProperties": False,
    }
    msgs = [Message("user", f"Passage: {PASSAGE}\nExtract the completion year and the height in metres as JSON.")]
    sc = real_llm.chat_json(msgs, schema, GenParams(max_tokens=48))
    assert set(sc.value) == {"year", "height_m"}
    assert sc.value["year"] == 1889 and sc.value["height_m"] == 330
    assert not sc.repaired


@pytest.mark.real_llm
def test_scores_match_a_logits_all_reference(real_llm: LlamaCppLLM) -> None:
    """Our last-row scoring equals full-logits scoring (a second model with logits_all=True)."""
    from llama_cpp import Llama

    msgs = judge(PASSAGE)
    conts = ["Yes", "No", "Yes, it does"]
    real_llm._llm.reset()  # cold: the whole prompt in one batch, as in the reference
    ours = real_llm.continuation_logprobs(msgs, conts)
    ref_model = Llama(model_path=str(real_llm.model_path), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    try:
        prompt = real_llm._prompt_tokens(msgs)
        ref = []
        for c in conts:
            ids = ref_model.tokenize(c.encode(), add_bos=False, special=False)
            ref_model.reset()
            ref_model.eval(prompt + ids)
            rows = ref_model.scores[len(prompt) - 1 : len(prompt) - 1 + len(ids)]
            ref.append(sum(float(log_softmax(r)[t]) for r, t in zip(rows, ids)))
    finally:
        ref_model.close()
    assert_same_scores(ours, ref)
    assert ours[2] < ours[0]  # a longer continuation is less likely than its first token


@pytest.mark.real_llm
def test_prefix_reuse_is_exact_and_used(real_llm: LlamaCppLLM) -> None:
    a, b = judge(PASSAGE), judge(OFF_TOPIC)
    real_llm.continuation_logprobs(a, ["Yes"])
    before = real_llm.prefix_hits
    warm = real_llm.continuation_logprobs(b, ["Yes", "No"])
    shared = common_prefix_len(real_llm._prompt_tokens(a), real_llm._prompt_tokens(b))
    assert real_llm.prefix_hits - before == shared > 20
    real_llm._llm.reset()  # cold KV cache: evaluate everything
    cold = real_llm.continuation_logprobs(b, ["Yes", "No"])
    assert_same_scores(warm, cold)


@pytest.mark.real_llm
def test_batch_equals_single_in_input_order(real_llm: LlamaCppLLM) -> None:
    batch = [judge(OFF_TOPIC), judge(PASSAGE), judge(OFF_TOPIC, "What do plants release?")]
    together = real_llm.continuation_logprobs_batch(batch, ["Yes", "No"])
    alone = [real_llm.continuation_logprobs(m, ["Yes", "No"]) for m in batch]
    assert_same_scores(together, alone)
    assert math.exp(together[2][0]) > math.exp(together[0][0])  # on-topic for the third question


@pytest.mark.real_llm
def test_concurrent_calls_are_serialised(real_llm: LlamaCppLLM) -> None:
    expected = real_llm.continuation_logprobs(judge(PASSAGE), ["Yes", "No"])
    results: list[Any] = []

    def work() -> None:
        results.append(real_llm.continuation_logprobs(judge(PASSAGE), ["Yes", "No"]))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results:  # the same prompt on the same cached prefix: bit-identical
        assert r == results[0]
        assert_same_scores(r, expected)


@pytest.mark.real_llm
def test_prompt_too_long_is_input_error(real_llm: LlamaCppLLM) -> None:
    huge = [Message("user", "word " * (real_llm.config.n_ctx + 10))]
    with pytest.raises(InputError, match="n_ctx"):
        real_llm.continuation_logprobs(huge, ["Yes"])
    with pytest.raises(InputError, match="n_ctx"):
        real_llm.chat(huge, GenParams(max_tokens=4))


@pytest.mark.real_llm
def test_llamacpp_spec_loads_a_gguf_path(real_llm: LlamaCppLLM) -> None:
    llm = make_llm(f"llamacpp:{real_llm.model_path}", config=LlamaCppConfig(n_ctx=512, n_threads=2))
    try:
        assert isinstance(llm, LlamaCppLLM) and llm.name == real_llm.model_path.name
        assert llm.config.n_ctx == 512
        np.testing.assert_allclose(
            llm.continuation_logprobs(judge(PASSAGE), ["Yes"]),
            real_llm.continuation_logprobs(judge(PASSAGE), ["Yes"]),
            atol=ORDER_TOL,
        )
    finally:
        llm.close()  # type: ignore[attr-defined]


def test_prefix_order_groups_shared_prefixes() -> None:
    lists = [[1, 2, 9], [5], [1, 2, 3], [1, 4]]
    order = prefix_order(lists)
    assert order == [2, 0, 3, 1]
    assert common_prefix_len([1, 2, 3], [1, 2, 4, 5]) == 2
    lp = log_softmax(np.array([1.0, 2.0, 3.0]))
    assert math.isclose(float(np.exp(lp).sum()), 1.0)
