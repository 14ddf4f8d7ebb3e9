"""The PNG plots of a run summary: which files apply to a run, and that they are real PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from branchwise.evals.plots import label_offsets, write_plots

PNG = b"\x89PNG\r\n\x1a\n"


def ci(mean: float, width: float = 0.05) -> dict[str, float]:
    return {"mean": mean, "low": mean - width, "high": mean + width}


def run_summary(kind: str, primary: str, systems: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fields of a run summary that the plots read."""
    return {"dataset": "d", "kind": kind, "primary": primary, "meta": {"questions": 20},
            "systems": {name: {"metrics": metrics} for name, metrics in systems.items()}}


def test_qa_run_gets_quality_frontier_and_cost(tmp_path: Path) -> None:
    summary = run_summary("qa", "f1", {
        "naive_rag": {"f1": ci(0.4), "ndcg@10": ci(0.5), "context_tokens": ci(2000, 100), "llm_calls": ci(1, 0),
                      "latency_s": ci(2.0, 0.3)},
        "agent": {"f1": ci(0.47), "context_tokens": ci(250, 30), "llm_calls": ci(6, 1)},
        "closed_book": {"f1": ci(0.2)},
    })
    written = write_plots(tmp_path, summary)
    assert written == ["quality.png", "quality_vs_context.png", "cost.png"]
    for name in written:
        assert (tmp_path / name).read_bytes().startswith(PNG)


def test_ir_run_gets_only_the_quality_panels(tmp_path: Path) -> None:
    summary = run_summary("ir", "ndcg@10", {"bm25": {"ndcg@10": ci(0.4), "recall@10": ci(0.5)},
                                            "dense": {"ndcg@10": ci(0.45)}})
    assert write_plots(tmp_path, summary) == ["quality.png"]
    assert (tmp_path / "quality.png").read_bytes().startswith(PNG)
    assert write_plots(tmp_path / "none", run_summary("ir", "ndcg@10", {"x": {}})) == []


def test_label_offsets_stack_close_points_and_leave_far_ones() -> None:
    # agent (359 tok, F1 .362) and agent_hybrid (360, .373) sit on top of each other; naive RAG
    # (529, .401) and agent_tight (96, .341) are far from both.
    points = [(529.0, 0.401), (359.0, 0.362), (96.0, 0.341), (360.0, 0.373)]
    assert label_offsets(points) == [(7, 6), (7, -5), (7, 6), (7, 6)]
    three = [(100.0, 0.50), (101.0, 0.49), (102.0, 0.48)]
    assert label_offsets(three) == [(7, 6), (7, -5), (7, -16)]
    assert label_offsets([]) == []
