"""CoLoR-style compression: shortest-success choice, preference pairs, inference selector."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import pytest

from branchwise.compression.abstractive import AbstractiveCompressor
from branchwise.compression.color import (
    AnswerLabeler,
    ColorCompressor,
    ColorConfig,
    EvidenceLabeler,
    LengthRegularisedSelector,
    LLMReader,
    export_preferences,
    generate_candidates,
    preference_pairs,
    shortest_successful,
)
from branchwise.compression.base import Candidate
from branchwise.compression.extractive import ExtractiveCompressor
from branchwise.training.mining import load_hotpot_examples, mine_preferences
from branchwise.training.preference import read_preferences
from branchwise.models.base import Message
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.types import Evidence


def _cand(name: str, tokens: int, label: bool | None = None, text: str | None = None) -> Candidate:
    items = [Evidence("c#0", text if text is not None else name, title="T")] if tokens else []
    return Candidate(name, items, tokens, label=label)


def test_shortest_successful_picks_the_shortest_labelled_success() -> None:
    cands = [_cand("a", 120, True), _cand("b", 40, False), _cand("c", 60, True), _cand("d", 90, True)]
    assert shortest_successful(cands) == 2
    assert shortest_successful([_cand("x", 10, False)]) is None
    assert shortest_successful([_cand("p", 30, True), _cand("q", 30, True)]) == 0  # ties: first


def test_preference_pairs_prefer_shortest_success_over_failures_and_longer_successes() -> None:
    cands = [_cand("long", 120, True), _cand("short-fail", 20, False), _cand("mid", 60, True), _cand("empty", 0, False)]
    pairs = preference_pairs("PROMPT", cands, qid="q1")
    assert {p.meta["rejected"] for p in pairs} == {"long", "short-fail", "empty"}
    assert all(p.meta["chosen"] == "mid" and p.prompt == "PROMPT" for p in pairs)
    assert all(p.chosen == "T: mid" for p in pairs)
    empty = next(p for p in pairs if p.meta["rejected"] == "empty")
    assert empty.rejected == "NONE"  # the empty context is rendered as an explicit abstention
    assert preference_pairs("P", [_cand("a", 5, False)]) == []


def test_export_and_read_back(tmp_path: Path) -> None:
    pairs = preference_pairs("P", [_cand("a", 50, True), _cand("b", 10, True), _cand("c", 5, False)])
    n = export_preferences(tmp_path / "pairs.jsonl", pairs)
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert n == 2 and len(rows) == 2
    assert set(rows[0]) == {"prompt", "chosen", "rejected", "meta"}
    back = read_preferences(tmp_path / "pairs.jsonl")
    assert [(p.chosen, p.rejected) for p in back] == [(p.chosen, p.rejected) for p in pairs]


def _sufficiency(threshold_words: set[str]):
    """P(Yes) high only when the candidate text mentions one of ``threshold_words``."""

    def fn(messages: Sequence[Message], cont: str) -> float:
        ok = any(w in messages[-1].content for w in threshold_words)
        p = 0.9 if ok else 0.1
        return math.log(p if cont == "Yes" else 1 - p)

    return fn


def test_selector_picks_shortest_sufficient_candidate() -> None:
    llm = ScriptedLLM(logprob_fn=_sufficiency({"Peart"}))
    cands = [
        _cand("full", 100, text="Neil Peart drummed for Rush; long text"),
        _cand("tiny", 5, text="Rush is a band"),
        _cand("mid", 30, text="Peart drummed for Rush"),
    ]
    sel = LengthRegularisedSelector(llm, threshold=0.5)
    assert sel.select("who drummed?", cands) == 2
    assert [c.score for c in cands] == pytest.approx([0.9, 0.1, 0.9])


def test_selector_falls_back_to_empty_then_best_score() -> None:
    llm = ScriptedLLM(logprob_fn=_sufficiency({"never"}))
    sel = LengthRegularisedSelector(llm)
    assert sel.select("q", [_cand("a", 20), _cand("dropped", 0), _cand("b", 10)]) == 1
    assert sel.select("q", [_cand("a", 20), _cand("b", 10)]) == 0  # equal scores: first


def test_labelers() -> None:
    c = _cand("x", 10, text="Neil Peart was the drummer of Rush.")
    assert EvidenceLabeler().label("q", ["Rush"], c)
    assert not EvidenceLabeler().label("q", ["yes"], c)  # yes/no answers prove nothing by string
    assert EvidenceLabeler(["Neil Peart was the drummer of Rush."]).label("q", ["yes"], c)
    reader = LLMReader(ScriptedLLM(replies=["the band Rush."]))
    assert AnswerLabeler(reader, min_f1=0.5).label("q", ["Rush"], c)  # F1 = 2/3
    assert not AnswerLabeler(reader, min_f1=0.9).label("q", ["Rush"], c)


EVIDENCE = [
    Evidence(
        "rush#0",
        "Rush was a Canadian rock band. Neil Peart was the drummer of Rush. The band formed in 1968.",
        title="Rush",
    ),
    Evidence("baikal#0", "Lake Baikal is a rift lake in Siberia. It is very deep.", title="Lake Baikal"),
]


def test_color_compressor_returns_the_selected_candidate_within_budget() -> None:
    llm = ScriptedLLM(replies=["Neil Peart was the drummer of Rush [1]."], logprob_fn=_sufficiency({"Peart"}))
    comp = ColorCompressor(
        ExtractiveCompressor(HashingEmbedder(dim=512)),
        AbstractiveCompressor(llm),
        llm,
        ColorConfig(budget_fractions=(0.25, 1.0)),
    )
    ctx = comp.compress("Who was the drummer of Rush?", EVIDENCE, 40)
    assert ctx.mode == "color" and len(ctx.candidates) >= 2
    chosen = [c for c in ctx.candidates if c.chosen]
    assert len(chosen) == 1 and ctx.items == chosen[0].items
    sufficient = [c for c in ctx.candidates if c.score is not None and c.score >= 0.5]
    assert chosen[0].tokens == min(c.tokens for c in sufficient)
    assert all(c.tokens <= 40 for c in ctx.candidates) and ctx.tokens_after <= 40
    assert "Peart" in ctx.text and ctx.to_dict()["candidates"]


def test_generate_candidates_dedupes_identical_texts() -> None:
    comp = ExtractiveCompressor(HashingEmbedder())
    cands, _ = generate_candidates("q", EVIDENCE[1:], 1000, comp, None, fractions=(0.5, 1.0))
    assert len(cands) == 1  # both budgets keep the whole short chunk


def test_mine_preferences_on_hotpotqa(shared_data) -> None:
    examples = load_hotpot_examples(shared_data / "hotpotqa" / "dev_distractor_200.jsonl", limit=6)
    rep = mine_preferences(
        examples,
        ExtractiveCompressor(HashingEmbedder(dim=1024)),
        None,
        lambda ex: EvidenceLabeler([s for _, s in ex.supporting]),
        256,
    )
    assert rep.questions == 6 and rep.pairs
    for p in rep.pairs:
        assert p.meta["chosen_tokens"] < p.meta["rejected_tokens"] or not p.meta["rejected_label"]
        assert p.prompt.startswith("Compress the sources") and "Question:" in p.prompt
