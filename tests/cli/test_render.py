"""``branchwise ask`` / ``demo`` rendering: the navigator's expansions are shown per agent
round, not as one sequence that repeats itself."""

from __future__ import annotations

from branchwise.agents.trace import AgentTrace
from branchwise.agents.trace import expanded_by_round, expanded_nodes
from branchwise.cli.render import render_expanded, render_tree_paths
from branchwise.navigation.trace import TraversalStep, TraversalTrace
from branchwise.retrieval.tree import Node, Tree
from branchwise.types import Answer, Citation


def nav(question: str, expanded: list[str]) -> TraversalTrace:
    steps = [TraversalStep(iteration=i + 1, expanded=n, items=[f"{n}-kid"], roles=["child"], raw_scores=[0.5],
                           path_scores=[0.5]) for i, n in enumerate(expanded)]
    return TraversalTrace(question=question, steps=steps, ranked=[["l0", "c0", 0.9]])


def small_tree() -> Tree:
    nodes = [Node("n0", 2, None, ["n1"], "This tree: root summary"), Node("n1", 1, "n0", ["l0"], "child summary"),
             Node("l0", 0, "n1", chunk_id="c0")]
    return Tree({n.id: n for n in nodes}, root="n0", max_children=4)


SEQ = ["n7", "n6", "n5", "n4", "n0", "n2", "n3", "n1"]


def test_two_rounds_with_the_same_expansions_are_not_repeated():
    trace = AgentTrace(question="q", navigation=[nav("q", SEQ), nav("q gap", SEQ)], navigation_rounds=[0, 1])
    assert expanded_nodes(trace) == SEQ + SEQ  # the raw order (the chat UI uses it) keeps repeats
    assert [r for r, _, _ in expanded_by_round(trace)] == [1, 2]  # agent rounds are 0-based, shown from 1
    lines = render_expanded(trace)
    assert lines[0] == "expanded by the navigator (in order):"
    assert lines[1] == "  round 1: " + " → ".join(SEQ)
    assert lines[2] == "  round 2: same 8 nodes as round 1"
    assert "\n".join(lines).count("n7") == 1


def test_rounds_with_different_expansions_each_get_a_line():
    trace = AgentTrace(question="q", navigation=[nav("q", ["n0", "n1"]), nav("gap", ["n0", "n2", "n3"])],
                       navigation_rounds=[0, 1])
    assert render_expanded(trace)[1:] == ["  round 1: n0 → n1", "  round 2: n0 → n2 → n3"]


def test_several_navigations_in_one_round_are_labelled_by_query():
    trace = AgentTrace(question="q", navigation=[nav("who directed it", ["n0", "n1"]), nav("when was it", ["n0", "n2"])],
                       navigation_rounds=[0, 0])
    assert render_expanded(trace)[1:] == ["  round 1 (who directed it): n0 → n1", "  round 1 (when was it): n0 → n2"]


def test_lone_traversal_traces_without_rounds_are_numbered():
    from types import SimpleNamespace

    trace = SimpleNamespace(navigation=[nav("q", ["a", "b"]), nav("q2", ["a", "c"])])
    assert render_expanded(trace)[1:] == ["  round 1: a → b", "  round 2: a → c"]
    assert render_expanded(SimpleNamespace(navigation=[])) == []


def test_long_sequences_wrap_under_their_label():
    long = [f"n{i}" for i in range(60)]
    lines = render_expanded(AgentTrace(question="q", navigation=[nav("q", long)], navigation_rounds=[0]), width=60)
    assert len(lines) > 2 and all(len(line) <= 60 for line in lines)
    assert lines[2].startswith(" " * len("  round 1: "))
    assert " ".join(" ".join(lines[1:]).split()).removeprefix("round 1: ") == " → ".join(long)


def test_tree_paths_use_the_per_round_lines():
    trace = AgentTrace(question="q", navigation=[nav("q", ["n0", "n1"]), nav("q", ["n0", "n1"])], navigation_rounds=[0, 1])
    answer = Answer(text="x [1]", citations=[Citation("c0", "[1]")], trace=trace)
    lines = render_tree_paths(answer, small_tree())
    assert lines[0] == "path to c0:" and "* n0" in lines[1] and "* n1" in lines[2] and "leaf c0" in lines[3]
    assert lines[-3:] == ["expanded by the navigator (in order):", "  round 1: n0 → n1", "  round 2: same 2 nodes as round 1"]
    assert not any(line.startswith("expanded (in order)") for line in lines)
