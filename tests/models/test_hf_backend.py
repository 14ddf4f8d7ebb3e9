"""The transformers backend on CPU with a tiny randomly initialised model built offline.

The model and its word-level tokenizer are constructed in the test and saved to a temp
folder, then loaded through ``hf:/path`` exactly like a real checkpoint (local files only,
nothing downloaded). Random weights make the outputs meaningless, so the tests check the
mechanics: shapes, probabilities that sum to one, batch-vs-single equality under left
padding, multi-token chains, stop strings and token counts.

The architecture is Granite (a Llama-style decoder): transformers 5 maps its model type to
the generic ``TokenizersBackend``, so our hand-built word-level ``tokenizer.json`` is used
as is (for ``qwen2`` it would rebuild Qwen's byte-level pipeline around our vocabulary).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import InputError, OutputParseError
from branchwise.models.base import LLM, Completion, GenParams, Message
from branchwise.models.factory import make_llm
from branchwise.models.hf import HFConfig, HFLLM

WORDS = "yes no maybe the a passage question is relevant answer paris france capital of what which city".split()
SPECIALS = ["<pad>", "<unk>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GraniteConfig, GraniteForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS + ["Yes", "No", ","])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>", additional_special_tokens=SPECIALS[3:]
    )
    hf_tok.chat_template = TEMPLATE
    config = GraniteConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=vocab["<eos>"],
        pad_token_id=vocab["<pad>"],
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        model = GraniteForCausalLM(config)
        # Specials get logit 0 and words large random logits, so greedy decoding emits words
        # (readable text for the stop-string test) and never stops early.
        model.lm_head.weight.mul_(20.0)
        model.lm_head.weight[: len(SPECIALS)] = 0.0
    out = tmp_path_factory.mktemp("tiny-granite")
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> HFLLM:
    llm = make_llm(f"hf:{tiny_model_dir}", config=HFConfig(batch_size=2, dtype="float32"))
    assert isinstance(llm, HFLLM)
    return llm


def msgs(q: str) -> list[Message]:
    return [Message("system", "answer yes or no"), Message("user", q)]


def test_loads_offline_as_protocol(tiny: HFLLM, tiny_model_dir: Path) -> None:
    assert isinstance(tiny, LLM)
    assert tiny.name == tiny_model_dir.name
    assert str(tiny.model.device) == "cpu"
    assert tiny.tokenizer.padding_side == "left"
    assert tiny.count_tokens("the capital of france") == 4


def test_first_token_distribution_sums_to_one(tiny: HFLLM) -> None:
    vocab = tiny.tokenizer.get_vocab()
    everything = [w for w in vocab if w not in ("<pad>", "<unk>") and not w.startswith("<|")]
    lps = tiny.continuation_logprobs(msgs("is paris the capital of france"), everything)
    # Continuations are single tokens here, so they partition the vocabulary minus a few specials.
    total = sum(math.exp(x) for x in lps)
    specials = tiny.continuation_logprobs(msgs("is paris the capital of france"), ["Yes"])  # one more call, same prompt
    assert 0.5 < total <= 1.0 + 1e-5 and all(x <= 0 for x in lps)
    assert specials[0] == pytest.approx(lps[everything.index("Yes")], abs=1e-6)


def test_batch_equals_single_with_left_padding(tiny: HFLLM) -> None:
    batch = [msgs("paris"), msgs("what is the capital of france which city"), msgs("a question")]
    conts = ["Yes", "No", "Yes , maybe"]  # the last one has three tokens
    together = tiny.continuation_logprobs_batch(batch, conts)
    alone = [tiny.continuation_logprobs(m, conts) for m in batch]
    assert np.asarray(together).shape == (3, 3)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_multi_token_chain_rule(tiny: HFLLM) -> None:
    """log P("Yes , maybe") = log P("Yes") + log P(", maybe" | ... "Yes"), checked by hand."""
    import torch

    m = msgs("is the passage relevant")
    (lp,) = tiny.continuation_logprobs(m, ["Yes , maybe"])
    ids = tiny.tokenizer(tiny._render(m), add_special_tokens=False)["input_ids"]
    cont = tiny.tokenizer("Yes , maybe", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = tiny.model(torch.tensor([ids + cont])).logits[0].float()
    ref = sum(float(torch.log_softmax(logits[len(ids) - 1 + k], -1)[t]) for k, t in enumerate(cont))
    assert lp == pytest.approx(ref, abs=1e-4)


def test_generation_batched_and_greedy(tiny: HFLLM) -> None:
    batch = [msgs("paris"), msgs("what is the capital of france")]
    out = tiny.chat_batch(batch, GenParams(max_tokens=5))
    assert len(out) == 2
    for c, m in zip(out, batch):
        assert 0 < c.completion_tokens <= 5 and c.prompt_tokens == tiny.count_tokens(tiny._render(m))
        assert tiny.chat(m, GenParams(max_tokens=5)).text == c.text  # padding does not change greedy output


def test_stop_strings_cut_the_text(tiny: HFLLM) -> None:
    full = tiny.chat(msgs("paris"), GenParams(max_tokens=8))
    words = full.text.split()
    assert len(words) == 8 and full.finish_reason == "length"
    stop = words[3]
    cut = tiny.chat(msgs("paris"), GenParams(max_tokens=8, stop=(stop,)))
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop" and cut.completion_tokens < 8


def test_chat_json_retries_with_more_tokens_then_raises(tiny: HFLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[Message], GenParams]] = []
    chat = tiny.chat

    def spy(messages: list[Message], params: GenParams = GenParams()) -> Completion:
        calls.append((list(messages), params))
        return chat(messages, params)

    monkeypatch.setattr(tiny, "chat", spy)
    with pytest.raises(OutputParseError, match="did not produce parsable JSON after 2 attempts") as ei:
        tiny.chat_json(msgs("paris"), {"type": "object"}, GenParams(max_tokens=3, seed=5))
    assert [(p.max_tokens, p.seed) for _, p in calls] == [(3, 5), (6, 6)]  # the vocabulary has no brackets
    assert all(m[0].role == "system" and '{"type": "object"}' in m[0].content for m, _ in calls)
    assert len(ei.value.raw.split()) == 6


def test_bad_inputs(tiny: HFLLM, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="non-empty"):
        tiny.continuation_logprobs(msgs("x"), [""])
    with pytest.raises(InputError, match="max_input_tokens"):
        tiny.continuation_logprobs([Message("user", "the " * 300)], ["Yes"])
    with pytest.raises(InputError, match="local"):
        make_llm(f"hf:{tmp_path / 'missing-model'}")
