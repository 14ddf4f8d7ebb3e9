"""TraversalTrace: content of a real navigation's trace and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from branchwise.errors import IndexFormatError
from branchwise.testing import ScriptedLLM
from branchwise.navigation.navigate import TreeResources, navigate
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.navigation.scorers import LLMSlateScorer, LLMSlateScorerConfig
from branchwise.navigation.trace import TraversalStep, TraversalTrace
from branchwise.retrieval.tree import Node, Tree


def small_tree() -> Tree:
    nodes = {
        "r": Node("r", 2, None, ["x", "y"]),
        "x": Node("x", 1, "r", ["x1", "x2"], summary="aerodynamics of wings"),
        "y": Node("y", 1, "r", ["y1"], summary="bread baking"),
        "x1": Node("x1", 0, "x", chunk_id="d1#0"),
        "x2": Node("x2", 0, "x", chunk_id="d2#0"),
        "y1": Node("y1", 0, "y", chunk_id="d3#0"),
    }
    return Tree(nodes=nodes, root="r")


CHUNKS = {"d1#0": "lift of a swept wing", "d2#0": "drag of a delta wing", "d3#0": "sourdough starter"}


def reply(messages):
    n = messages[-1].content.count("<passage id=")
    return json.dumps({"reasoning": f"judged {n} candidates", "scores": [80 - 20 * i for i in range(n)]})


@pytest.fixture
def trace() -> TraversalTrace:
    res = TreeResources(small_tree(), lambda n: CHUNKS.get(small_tree()[n].chunk_id or "", small_tree()[n].summary))
    scorer = LLMSlateScorer(ScriptedLLM(reply), LLMSlateScorerConfig(keep_prompt=True))
    return navigate(res, scorer, "wing lift", NavigatorConfig(beam=1, keep_prompts=True)).trace


def test_trace_records_every_slate(trace: TraversalTrace):
    assert trace.question == "wing lift" and trace.scorer == "llm"
    assert [s.expanded for s in trace.steps] == ["r", "x", "y"]
    first = trace.steps[0]
    assert first.items == ["x", "y"] and first.roles == ["child", "child"]
    assert first.raw_scores == [0.8, 0.6] and first.reasoning == "judged 2 candidates"
    assert len(first.calibrated) == 2 and len(first.path_scores) == 2
    assert first.prompt_hash and "wing lift" in first.prompt and first.llm_calls == 1
    assert trace.steps[2].roles == ["child", "calibration", "calibration"]  # y's slate reuses x's leaves
    assert trace.stop_reason == "exhausted" and trace.iterations == 3
    assert trace.llm_calls == 3 and trace.prompt_tokens > 0
    assert trace.total_s >= trace.scorer_s > 0
    # the third slate judged y1 (80) above its calibration items x1 (60) and x2 (40): the
    # calibrated fit carries that side-by-side judgement over x1's earlier 80
    assert [r[0] for r in trace.ranked] == ["y1", "x1", "x2"]
    assert [r[2] for r in trace.ranked] == sorted((r[2] for r in trace.ranked), reverse=True)
    assert trace.config["beam"] == 1 and trace.config["calib"]["tau"] == 5.0


def test_json_round_trip(trace: TraversalTrace, tmp_path):
    path = tmp_path / "trace.json"
    trace.save(path)
    loaded = TraversalTrace.load(path)
    assert loaded == trace
    assert loaded.to_dict() == trace.to_dict()
    assert json.loads(path.read_text())["schema"] == "branchwise.trace/1"
    assert isinstance(loaded.steps[0], TraversalStep)


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(IndexFormatError, match="no trace"):
        TraversalTrace.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(IndexFormatError, match="corrupt"):
        TraversalTrace.load(bad)
    bad.write_text(json.dumps({"schema": "other/9"}))
    with pytest.raises(IndexFormatError, match="schema"):
        TraversalTrace.load(bad)


def test_fallback_steps_are_listed():
    t = TraversalTrace("q", steps=[TraversalStep(1, "r", ["a"], ["child"], [0.5], fallback="malformed output: x"),
                                   TraversalStep(1, "s", ["b"], ["child"], [0.5])])
    assert [s.expanded for s in t.fallbacks] == ["r"]
    assert TraversalTrace.from_dict(t.to_dict()).fallbacks[0].fallback == "malformed output: x"
