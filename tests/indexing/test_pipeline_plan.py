"""The dry run of a whole index build (``plan_index``, ``branchwise index --dry-run``) counts
exactly the summary LLM calls that the build which follows makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwise.indexing.pipeline import IndexConfig, build_index, plan_index
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.indexing.tree_build import TreeConfig
from branchwise.indexing.summarize import SummaryConfig

TOPICS = [
    "solar panels convert sunlight into electricity with photovoltaic cells",
    "the striker scored a late goal in the football match",
    "python functions and classes organise program code",
    "bread dough rises when yeast ferments the flour sugars",
    "electron spin is a quantum property measured in magnetic fields",
    "glaciers carve valleys as the ice slowly moves downhill",
]


def write_corpus(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = f"{TOPICS[i % len(TOPICS)]}. Record {i} adds detail {i * 7 % 13} and remark {i * 5 % 11}."
            f.write(json.dumps({"id": f"doc{i}", "title": f"Doc {i}", "text": text}) + "\n")
    return path


def summary_reply(messages) -> str:
    return "Group: " + " ".join(messages[-1].content.split()[6:14])


@pytest.mark.parametrize("strategy", ["bottom_up", "top_down"])
def test_plan_index_llm_calls_equal_the_builds_summary_calls(tmp_path, strategy):
    source = write_corpus(tmp_path / "corpus.jsonl", 70)
    config = IndexConfig(
        tree=TreeConfig(strategy=strategy, max_children=4,
                        summary=SummaryConfig(mode="llm", summary_tokens=24, input_tokens=200)),
        graph="off",
    )
    emb = HashingEmbedder(dim=64)
    planner = ScriptedLLM(replies=summary_reply)
    plan = plan_index(source, embedder=emb, llm=planner, config=config, measure_speed=False, progress=False)
    assert planner.calls == []  # the dry run itself makes no LLM calls without measure_speed

    builder = ScriptedLLM(replies=summary_reply)
    idx = build_index(source, tmp_path / "index", embedder=emb, llm=builder, config=config, progress=False)
    tree_plan = plan.tree
    assert plan.documents == 70 and plan.chunks == len(idx.chunks)
    assert tree_plan.llm_calls > 10  # several levels: a non-trivial count
    assert tree_plan.llm_calls == len(builder.calls) == idx.manifest.extra["tree"]["llm_calls"]
    assert tree_plan.llm_calls == idx.tree.stats()["internal"]
    built_levels = {lvl: k for lvl, k in idx.tree.stats()["nodes_per_level"].items() if lvl > 0}
    assert tree_plan.nodes_per_level == built_levels
    assert f"{tree_plan.llm_calls:,} LLM calls" in plan.format()
    assert "graph extraction: off" in plan.format()


def test_plan_index_extractive_plans_no_llm_calls(tmp_path):
    source = write_corpus(tmp_path / "corpus.jsonl", 30)
    config = IndexConfig(tree=TreeConfig(max_children=4, summary=SummaryConfig(mode="extractive")), graph="off")
    plan = plan_index(source, embedder=HashingEmbedder(dim=64), config=config, progress=False)
    idx = build_index(source, tmp_path / "index", embedder=HashingEmbedder(dim=64), config=config, progress=False)
    assert plan.tree.llm_calls == 0 == idx.manifest.extra["tree"]["llm_calls"]
    assert plan.tree.nodes_per_level == {lvl: k for lvl, k in idx.tree.stats()["nodes_per_level"].items() if lvl > 0}
