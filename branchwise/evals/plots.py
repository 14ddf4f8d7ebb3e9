"""PNG plots of a run summary (matplotlib's object API with the Agg canvas: no global state).

* ``quality.png`` — the headline metric (and nDCG@10) per system with 95% CI whiskers;
* ``quality_vs_context.png`` — headline metric against the tokens of context handed to the
  generator (QA systems only): the efficiency frontier the agent's target is stated on;
* ``cost.png`` — LLM calls and wall latency per query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_LABELS = {"f1": "answer F1", "recall@10": "Recall@10", "accuracy": "multiple-choice accuracy", "ndcg@10": "nDCG@10",
           "llm_calls": "LLM calls / query", "latency_s": "latency / query (s)", "context_tokens": "context tokens"}
_BOUNDED = frozenset({"f1", "em", "accuracy", "ndcg@10", "recall@10", "recall@5", "mrr@10"})
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
           "#64B5CD"]


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path.name


def _series(summary: dict[str, Any], metric: str) -> list[tuple[str, dict[str, float]]]:
    return [(n, s["metrics"][metric]) for n, s in summary["systems"].items() if metric in s["metrics"]]


def _bars(ax: Any, series: list[tuple[str, dict[str, float]]], metric: str, colors: dict[str, str]) -> None:
    names = [n for n, _ in series]
    means = [m["mean"] for _, m in series]
    err = [[m["mean"] - m["low"] for _, m in series], [m["high"] - m["mean"] for _, m in series]]
    y = list(range(len(names)))[::-1]
    ax.barh(y, means, xerr=err, color=[colors[n] for n in names], capsize=4, height=0.6)
    ax.set_yticks(y, names)
    bounded = metric in _BOUNDED
    top = max([m["high"] for _, m in series] + [0.0])
    xmax = max(1.0, top * 1.15) if bounded else (top * 1.3 or 1.0)
    ax.set_xlim(0, xmax)
    for yi, mean, high in zip(y, means, err[1]):
        label = f"{mean:.3f}" if bounded else f"{mean:.3g}"
        ax.text(mean + high + 0.01 * xmax, yi, label, va="center", fontsize=9)
    ax.set_xlabel(_LABELS.get(metric, metric) + " (mean, 95% CI)")
    ax.grid(axis="x", alpha=0.3)


def _bar_panels(summary: dict[str, Any], metrics: list[str], colors: dict[str, str], title: str, path: Path) -> str:
    """One row of horizontal bar panels (a metric each, systems on the y axis), saved to ``path``."""
    fig = Figure(figsize=(5.5 * len(metrics), 0.55 * len(summary["systems"]) + 1.6))
    for i, metric in enumerate(metrics):
        _bars(fig.add_subplot(1, len(metrics), i + 1), _series(summary, metric), metric, colors)
    fig.suptitle(title)
    return _save(fig, path)


def label_offsets(points: list[tuple[float, float]], *, step: int = 11) -> list[tuple[int, int]]:
    """Text offsets (in points) for point labels on axes that start at 0, so close labels stack.

    A label goes up-right of its point, (7, 6); for each higher point already labelled within
    8 % of the largest x and 5 % of the largest y, it moves ``step`` points further down.
    """
    if not points:
        return []
    xmax = max(abs(p[0]) for p in points) or 1.0
    ymax = max(abs(p[1]) for p in points) or 1.0
    out: list[tuple[int, int]] = [(7, 6)] * len(points)
    placed: list[int] = []
    for i in sorted(range(len(points)), key=lambda i: -points[i][1]):
        x, y = points[i]
        near = sum(abs(points[j][0] - x) <= 0.08 * xmax and abs(points[j][1] - y) <= 0.05 * ymax for j in placed)
        out[i] = (7, 6 - step * near)
        placed.append(i)
    return out


def write_plots(out_dir: Path, summary: dict[str, Any]) -> list[str]:
    """Draw the plots that apply to this run; returns their file names."""
    colors = {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(summary["systems"])}
    unit = "queries" if summary.get("kind") == "ir" else "questions"
    title = f"{summary['dataset']} ({summary['meta'].get('questions')} {unit})"
    written: list[str] = []
    primary = summary["primary"]
    extra = ["recall@10"] if summary.get("kind") == "ir" else []
    panels = [m for m in dict.fromkeys([primary, "ndcg@10", *extra]) if _series(summary, m)]
    if panels:
        written.append(_bar_panels(summary, panels, colors, f"Quality per system — {title}", out_dir / "quality.png"))

    qa = [(n, s["metrics"]) for n, s in summary["systems"].items()
          if primary in s["metrics"] and s["metrics"].get("context_tokens", {}).get("mean", 0) > 0]
    if qa:
        fig = Figure(figsize=(7, 4.8))
        ax = fig.add_subplot(1, 1, 1)
        offsets = label_offsets([(m["context_tokens"]["mean"], m[primary]["mean"]) for _, m in qa])
        for (name, m), offset in zip(qa, offsets):
            x, y = m["context_tokens"], m[primary]
            ax.errorbar(x["mean"], y["mean"], xerr=[[x["mean"] - x["low"]], [x["high"] - x["mean"]]],
                        yerr=[[y["mean"] - y["low"]], [y["high"] - y["mean"]]], fmt="o", ms=8, capsize=4,
                        color=colors[name], label=name)
            ax.annotate(name, (x["mean"], y["mean"]), textcoords="offset points", xytext=offset, fontsize=9)
        base = dict(qa).get("naive_rag")
        if base is not None:
            # The agent's tracked target: naive RAG's F1 + 5 points with <= 15% of its context.
            x15, y5 = 0.15 * base["context_tokens"]["mean"], base[primary]["mean"] + 0.05
            ax.axvline(x15, color="grey", ls="--", lw=1)
            ax.axhline(y5, color="grey", ls=":", lw=1)
            ax.annotate("target: ≥ naive_rag + 0.05,\n≤ 15% of its context", (x15, y5), textcoords="offset points",
                        xytext=(4, 4), fontsize=8, color="grey")
        ax.set_xlabel("context tokens given to the generator (mean per query)")
        ax.set_ylabel(_LABELS.get(primary, primary))
        ax.set_xlim(left=0)
        ax.set_ylim(0, min(1.0, max(m[primary]["high"] for _, m in qa) * 1.25 + 0.1))
        ax.grid(alpha=0.3)
        ax.set_title(f"Quality vs context — {title}")
        written.append(_save(fig, out_dir / "quality_vs_context.png"))

    cost = [m for m in ("llm_calls", "latency_s") if _series(summary, m)]
    if cost:
        written.append(_bar_panels(summary, cost, colors, f"Cost per query — {title}", out_dir / "cost.png"))
    return written
