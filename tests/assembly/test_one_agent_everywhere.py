"""One question, four entry points, one agent: ``bw.ask``, ``branchwise ask``, the served LangGraph
graph and the eval runner's ``agent`` system all go through the composition root, so with the
same settings and the same (scripted) LLM they give identical answers and identical traces.

Real index (MiniLM embeddings in Chroma, BM25, an extractive-summary tree), real LangGraph; the
LLM is a stateless scripted double registered as the ``scripted`` LLM backend for this test.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

import branchwise as bw
from branchwise.agents.agent import answer_from_state
from branchwise.cli.main import main
from branchwise.evals.systems import SystemContext, build_systems
from branchwise.models.base import Message
from branchwise.models.registry import LLM_BACKENDS
from branchwise.server.langgraph_app import make_graph
from branchwise.testing import ScriptedLLM

QUESTION = "Which city did the lava of Etna reach in 1669?"
DOCS = [
    {"id": "etna", "title": "Etna", "text": "Mount Etna is an active volcano on the east coast of Sicily. "
     "In 1669 its lava flowed south and reached the walls of Catania, the largest city near the volcano."},
    {"id": "catania", "title": "Catania", "text": "Catania is a port city in Sicily. It was rebuilt in the "
     "Baroque style after the earthquake of 1693."},
    {"id": "bread", "title": "Bread", "text": "Bread is baked from dough made of flour and water. Sourdough "
     "rises with wild yeast."},
    {"id": "oven", "title": "Oven", "text": "A wood-fired oven reaches 450 degrees and bakes pizza in ninety seconds."},
    {"id": "vesuvius", "title": "Vesuvius", "text": "Mount Vesuvius destroyed Pompeii in the year 79. It stands "
     "above the Bay of Naples."},
]
PLAN = json.dumps({"triples": [{"subject": "lava of Etna", "relation": "reached", "object": "?city"}],
                   "sub_questions": ["What did the lava of Etna reach in 1669?"]})


def scripted_reply(messages: Sequence[Message]) -> str:
    """Stateless: the reply depends only on the prompt, so every entry point sees the same run."""
    system = messages[0].content
    if "decompose questions" in system:
        return PLAN
    if "numbered sources" in system:
        for number, text in re.findall(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', messages[-1].content, re.S):
            if "Catania" in text:
                return f"The lava reached Catania [{number}]."
        return "NOT_FOUND"
    return "{}"


def scripted_logprob(messages: Sequence[Message], continuation: str) -> float:
    p_yes = 0.9 if "walls of Catania" in messages[-1].content else 0.2
    return math.log(p_yes if continuation == "Yes" else 1.0 - p_yes)


@pytest.fixture
def scripted_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``--llm scripted:`` makes a fresh scripted LLM (as a real spec makes a fresh backend)."""
    LLM_BACKENDS.register("scripted", lambda arg, config: ScriptedLLM(scripted_reply, scripted_logprob),
                          "test double", replace=True)
    monkeypatch.setenv("BRANCHWISE_LLM", "scripted:")
    yield "scripted:"
    LLM_BACKENDS.unregister("scripted")


@pytest.fixture
def index_dir(tmp_path: Path, scripted_backend: str) -> Path:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    settings = bw.Settings.from_env()
    tree = settings.index.tree
    import dataclasses

    tree = dataclasses.replace(tree, max_children=3, summary=dataclasses.replace(tree.summary, mode="extractive"))
    out = tmp_path / "index"
    bw.build_index(corpus, out, settings=settings.replace(index={"tree": tree}), progress=False)
    return out


def normalised(trace: dict[str, Any]) -> dict[str, Any]:
    """The trace without what differs from run to run by nature: clock times (``*_s``, the
    creation time) and thread ids."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not k.endswith("_s") and k not in ("created_at", "thread_id")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(trace)


def test_bw_ask_cli_served_graph_and_eval_system_run_the_same_agent(index_dir: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    settings = bw.Settings.from_env()
    assert settings.llm == "scripted:"

    # 1. the Python API
    api = bw.ask(index_dir, QUESTION, settings=settings)

    # 2. the CLI
    trace_file = tmp_path / "cli-trace.json"
    assert main(["ask", str(index_dir), QUESTION, "--trace", str(trace_file), "--json"]) == 0
    cli_out = json.loads(capsys.readouterr().out)
    cli_trace = json.loads(trace_file.read_text(encoding="utf-8"))

    # 3. the graph `langgraph dev` serves (langgraph.json names this factory)
    graph = make_graph({"configurable": {"index_dir": str(index_dir)}})
    state = graph.invoke({"question": QUESTION}, {"recursion_limit": settings.agent.recursion_limit})
    served = answer_from_state(state, thread_id="served", config=settings.agent)

    # 4. the eval runner's agent system
    index = bw.open_index(index_dir)
    ctx = SystemContext(index, lambda: LLM_BACKENDS.create("scripted", "", None), None, answer_style="sentence",
                        settings=settings)
    (agent_system,) = build_systems(["agent"], ctx)
    evaluated = agent_system.run(QUESTION).answer
    assert evaluated is not None

    texts = {"api": api.text, "cli": cli_out["answer"], "served": served.text, "eval": evaluated.text}
    assert set(texts.values()) == {api.text}, texts
    assert "Catania" in api.text and api.found and api.citations[0].chunk_id.startswith("etna")
    traces = {"api": api.trace.to_dict(), "cli": cli_trace, "served": served.trace.to_dict(),  # type: ignore[union-attr]
              "eval": evaluated.trace.to_dict()}  # type: ignore[union-attr]
    reference = normalised(traces["api"])
    for name, trace in traces.items():
        assert normalised(trace) == reference, f"the {name} trace differs from bw.ask's"

    # the trace says what produced it: when, which index, which models, which settings
    run = traces["api"]["run"]
    assert run["created_at"] and run["index"] == str(index_dir.resolve()) and run["llm"] == "scripted:"
    assert run["embedder"] and run["settings"]["scorer"] == "embedding"
    assert run["settings"]["agent"]["max_rounds"] == settings.agent.max_rounds
    # every agent LLM call is on record with its prompt hash, and so is every navigation step
    assert traces["api"]["calls"] and all(len(c["prompt_hash"]) == 16 for c in traces["api"]["calls"])
    assert {c["node"] for c in traces["api"]["calls"]} >= {"generate"}
    steps = [s for nav in traces["api"]["navigation"] for s in nav["steps"]]
    assert steps and all(s["prompt_hash"] and s["prompt"] for s in steps)
