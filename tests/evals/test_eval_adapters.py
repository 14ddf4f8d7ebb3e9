"""Navigator and agent adapters on a real index with a hand-built tree (scripted LLM)."""

from __future__ import annotations

from pathlib import Path

from branchwise.evals.systems import SystemContext, build_systems
from branchwise.testing import ScriptedLLM

QUESTION = "Which town did Etna's lava reach?"


def test_navigator_with_embedding_scorer_uses_no_llm(tree_index) -> None:
    (nav,) = build_systems(["navigator:embedding"], SystemContext(tree_index, k=4))
    out = nav.run(QUESTION)
    # the volcano subtree is entered first; its two leaves come back best first
    assert [h.chunk_id for h in out.retrieved[:2]] == ["lava#0", "volcano#0"]
    assert out.usage.llm_calls == 0 and out.answer is None
    assert out.info["iterations"] >= 1


def test_navigator_with_yes_no_scorer_counts_its_forward_passes(tree_index, tmp_path: Path) -> None:
    llm = ScriptedLLM()  # every continuation log(0.5): uninformative but valid
    (nav,) = build_systems(["navigator:yesno"], SystemContext(tree_index, lambda: llm, tmp_path / "c.sqlite", k=4))
    out = nav.run(QUESTION)
    assert out.usage.llm_calls == len(llm.calls) > 0
    assert {h.chunk_id for h in out.retrieved} <= {"lava#0", "volcano#0", "bread#0", "oven#0"}


def test_agent_variants_answer_with_citations_and_usage(tree_index, tmp_path: Path) -> None:
    llm = ScriptedLLM(replies=lambda m: "Catania [1]")
    ctx = SystemContext(tree_index, lambda: llm, tmp_path / "c.sqlite", k=4)
    outs = {s.name: s.run(QUESTION) for s in build_systems(["agent", "agent_hybrid"], ctx)}
    for name, out in outs.items():
        assert out.answer is not None and out.answer.text.startswith("Catania"), name
        assert out.answer.citations and out.answer.citations[0].chunk_id in {h.chunk_id for h in out.retrieved}
        assert out.usage.llm_calls >= 1 and out.context_tokens > 0 and out.info["rounds"] >= 1
    # the agent fuses the tree route (the volcano subtree) with hybrid search (all four chunks);
    # the tree's two leaves come first
    assert {h.chunk_id for h in outs["agent"].retrieved[:2]} == {"lava#0", "volcano#0"}
    assert len(outs["agent_hybrid"].retrieved) == 4


def test_agent_variants_are_settings_over_the_runs_settings(tree_index, tmp_path: Path) -> None:
    from branchwise import Settings
    from branchwise.agents import AgentConfig

    base = Settings(scorer="embedding").replace(agent={"max_rounds": 1})
    ctx = SystemContext(tree_index, lambda: ScriptedLLM(), tmp_path / "c.sqlite", settings=base)
    systems = {s.name: s for s in build_systems(["agent", "agent_tight", "agent_nocompress", "agent_hybrid"], ctx)}
    settings = {n: s.assembly.settings for n, s in systems.items()}
    budgets = {n: s.agent.context_budget_tokens for n, s in settings.items()}
    assert budgets == {"agent": AgentConfig().context_budget_tokens, "agent_tight": 100,
                       "agent_nocompress": AgentConfig().context_budget_tokens, "agent_hybrid": AgentConfig().context_budget_tokens}
    # every variant keeps the run's settings, changes only its own, and answers in the eval's style
    assert all(s.agent.max_rounds == 1 and s.agent.answer_style == "short" for s in settings.values())
    assert settings["agent_nocompress"].compression.mode == "none" and settings["agent"].compression.mode == "extractive"
    assert settings["agent_hybrid"].agent.retrieval == "hybrid" and settings["agent"].agent.retrieval == "auto"
    out = systems["agent_tight"].run(QUESTION)
    assert out.context_tokens <= 100
