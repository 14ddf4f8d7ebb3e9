"""Compressor training: triplet mining, the dual-encoder trainer, ORPO/DPO, and the CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import torch

from branchwise.cli.compress_cmd import register
from branchwise.errors import InputError
from branchwise.compression.color import PreferencePair
from branchwise.compression.extractive import ExtractiveCompressor
from branchwise.training.mining import MiningConfig, load_hotpot_examples, mine_triplets
from branchwise.training.extractive import ExtractiveTrainConfig, train_extractive
from branchwise.training.preference import PreferenceTrainConfig, dpo_loss, orpo_loss, train_preference
from branchwise.models.base import Message
from branchwise.testing import HashingEmbedder, ScriptedLLM


@pytest.fixture(scope="module")
def hotpot(shared_data):
    return load_hotpot_examples(shared_data / "hotpotqa" / "dev_distractor_200.jsonl", limit=12)


def test_orpo_loss_matches_hand_computed_value() -> None:
    # P(chosen) = 0.5 -> odds 1; P(rejected) = 0.2 -> odds 0.25; log OR = log 4.
    # -log sigmoid(log 4) = log(1 + 1/4); loss = NLL + lambda * that.
    lw, ll = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.2)])
    loss, log_or = orpo_loss(lw, ll, -lw, lam=0.1)
    assert float(log_or) == pytest.approx(math.log(4.0), rel=1e-5)
    assert float(loss) == pytest.approx(math.log(2.0) + 0.1 * math.log(1.25), rel=1e-5)


def test_dpo_loss_matches_hand_computed_value() -> None:
    # margin = beta * ((-2 - -3) - (-5 - -4)) = 0.5 * 2 = 1; loss = log(1 + e^-1)
    loss, margin = dpo_loss(torch.tensor([-2.0]), torch.tensor([-5.0]), torch.tensor([-3.0]), torch.tensor([-4.0]), 0.5)
    assert float(margin) == pytest.approx(1.0)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1.0)), rel=1e-6)


def test_supporting_fact_triplets_have_gold_positives_and_hard_negatives(hotpot) -> None:
    rep = mine_triplets(hotpot[:5], HashingEmbedder(dim=512), config=MiningConfig(positives="supporting_facts"))
    assert rep.triplets and rep.llm_questions == 0
    for t in rep.triplets:
        ex = next(e for e in hotpot if e.id == t.qid)
        assert t.anchor == ex.question and t.source == "supporting_facts"
        assert any(s in t.positive for _, s in ex.supporting)
        assert not any(s in t.negative for _, s in ex.supporting)
        assert ": " in t.positive  # "title: sentence", as the compressor embeds it


def test_llm_triplets_use_the_answer_likelihood(hotpot) -> None:
    ex = next(e for e in hotpot if e.answers[0].lower() not in ("yes", "no"))

    def logprob(messages: Sequence[Message], cont: str) -> float:
        return -0.5 if cont in messages[-1].content else -6.0  # answer in context: likely

    llm = ScriptedLLM(logprob_fn=logprob)
    rep = mine_triplets(
        [ex], HashingEmbedder(dim=512), llm, MiningConfig(positives="llm", llm_candidates=8, negatives_per_positive=3)
    )
    assert rep.llm_questions == 1 and rep.triplets
    for t in rep.triplets:
        assert ex.answers[0] in t.positive and ex.answers[0] not in t.negative and t.source == "llm"
    with pytest.raises(InputError, match="needs an LLM"):
        mine_triplets([ex], HashingEmbedder(), None, MiningConfig(positives="llm"))


def test_train_extractive_runs_and_loads_as_the_compressor(hotpot, tmp_path: Path) -> None:
    from branchwise.models.factory import make_embedder

    base = make_embedder("default")
    mined = mine_triplets(hotpot, base, config=MiningConfig(positives="supporting_facts"))
    out = tmp_path / "enc"
    res = train_extractive(mined.triplets, out, ExtractiveTrainConfig(batch_size=8, max_steps=3, learning_rate=1e-4))
    assert res.steps == 3 and len(res.losses) == 3 and all(np.isfinite(res.losses))
    meta = json.loads((out / "branchwise_compressor.json").read_text())
    assert meta["steps"] == 3 and meta["triplets"] == len(mined.triplets)
    trained = make_embedder(f"st:{out}")
    sent = mined.triplets[0].positive
    v_base, v_new = base.embed([sent])[0], trained.embed([sent])[0]
    assert v_new.shape == v_base.shape and abs(float(np.linalg.norm(v_new)) - 1.0) < 1e-4
    assert float(v_base @ v_new) < 0.99999  # the weights moved
    ctx = ExtractiveCompressor(f"st:{out}").compress(hotpot[0].question, hotpot[0].evidence, 100)
    assert 0 < ctx.tokens_after <= 100


PAIRS = [
    PreferencePair(
        f"Question: who is {n}? Sources: [1] {n} is a drummer in a band. [2] Lakes are wet.",
        f"{n} is a drummer.",
        f"{n} is a drummer in a band. Lakes are wet and deep and cold.",
        {},
    )
    for n in ("Neil", "Ringo", "Keith", "Dave")
]


def test_orpo_trains_a_tiny_causal_lm_and_it_loads_back(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = PreferenceTrainConfig(objective="orpo", epochs=3, batch_size=2, learning_rate=1e-3)
    res = train_preference(PAIRS, tmp_path / "orpo", cfg)
    assert res.steps == 6 and len(res.losses) == 6
    assert res.losses[-1] < res.losses[0]
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "orpo"), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "orpo"), local_files_only=True)
    ids = tok("Neil is a drummer.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))


def test_dpo_starts_at_log2_and_decreases(tmp_path: Path) -> None:
    cfg = PreferenceTrainConfig(objective="dpo", beta=0.5, epochs=2, batch_size=2, learning_rate=1e-3)
    res = train_preference(PAIRS, tmp_path / "dpo", cfg)
    # before the first update the policy equals the reference: margin 0, loss log 2
    assert res.losses[0] == pytest.approx(math.log(2.0), abs=1e-4)
    assert res.losses[-1] < res.losses[0]


def test_train_color_cli_mines_pairs_and_trains(shared_data, tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "train-color",
            "--data",
            str(shared_data / "hotpotqa" / "dev_distractor_200.jsonl"),
            "--out",
            str(tmp_path / "m"),
            "--questions",
            "4",
            "--no-abstractive",
            "--labeler",
            "evidence",
            "--max-steps",
            "2",
        ]
    )
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] == 4 and summary["pairs"] > 0 and summary["steps"] == 2
    rows = (tmp_path / "m" / "pairs.jsonl").read_text().splitlines()
    assert len(rows) == summary["pairs"]
    assert (tmp_path / "m" / "model.safetensors").is_file()
