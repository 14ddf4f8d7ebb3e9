"""Pictures of one answer's trace: the explored tree, the slate scores, the evidence pool.

Used by the chat app's trace panel and by ``notebooks/traversal_traces.ipynb``; nothing
here imports Gradio. Figures use matplotlib's object API on the Agg canvas (no pyplot
state), so concurrent sessions can draw at once. The helpers that read a trace
(:func:`navigations`, :func:`path_relevance`, :func:`expanded_in`) are shared with
:mod:`branchwise.ui.trace_tables` (score table, legend, evidence, usage) and
:mod:`branchwise.ui.chunk_view` (a cited chunk and its place in the tree).

The tree picture shows the part of the semantic tree the navigator explored (LATTICE,
Gupta et al. 2025, arXiv 2510.13217): every node it expanded, the children it scored, and
their ancestors. Node colour is the node's *path relevance* (the calibrated local score
mixed with the parent's path relevance by α), a thick outline marks expanded nodes, and
red edges trace the path from the root to the cited (or best-ranked) leaves.
"""

from __future__ import annotations

import io
import textwrap
from itertools import pairwise
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from branchwise.agents.trace import expanded_nodes, node_scores
from branchwise.navigation.trace import TraversalTrace
from branchwise.retrieval.tree import Tree

_CMAP = "viridis"
_UNSCORED = "#d9d9d9"
_PATH = "#d62728"


def navigations(trace: Any) -> list[TraversalTrace]:
    """The traversal traces of an ``AgentTrace`` or a lone ``TraversalTrace`` (else none)."""
    if trace is None:
        return []
    if isinstance(trace, TraversalTrace):
        return [trace]
    return list(getattr(trace, "navigation", None) or [])


def _as_agent(trace: Any) -> SimpleNamespace:
    """A view with ``.navigation`` so the CLI renderers accept a lone traversal trace too."""
    return SimpleNamespace(navigation=navigations(trace))


def path_relevance(trace: Any) -> dict[str, float]:
    """Node id → the best path relevance any of the trace's navigations gave it.

    An agent answer may navigate several times (one query per round); a node is as relevant
    as the best query found it, so one picture can show them all.
    """
    best: dict[str, float] = {}
    for nav in navigations(trace):
        for nid, p in node_scores(SimpleNamespace(navigation=[nav])).items():
            best[nid] = max(p, best.get(nid, p))
    return best


def expanded_in(trace: Any) -> list[str]:
    """Nodes the navigator expanded, in order (repeats kept)."""
    return expanded_nodes(_as_agent(trace))


def highlighted_leaves(trace: Any, tree: Tree, chunk_ids: Iterable[str] = ()) -> list[str]:
    """Leaf node ids to draw the path to: the cited chunks, else each navigation's best leaf."""
    leaves = [leaf.id for cid in chunk_ids if (leaf := tree.leaf_for_chunk(cid)) is not None]
    if not leaves:
        leaves = [nav.ranked[0][0] for nav in navigations(trace) if nav.ranked and nav.ranked[0][0] in tree.nodes]
    return list(dict.fromkeys(leaves))


def explored_nodes(trace: Any, tree: Tree, *, max_nodes: int = 60, keep: Sequence[str] = ()) -> set[str]:
    """Expanded nodes, the children they scored (best ``max_nodes`` by path score), ancestors."""
    scores = path_relevance(trace)
    expanded = list(dict.fromkeys(n for n in expanded_in(trace) if n in tree.nodes))
    children = {
        item for nav in navigations(trace) for step in nav.steps
        for item, role in zip(step.items, step.roles, strict=False) if role == "child" and item in tree.nodes
    }
    ranked = sorted(children - set(expanded), key=lambda n: -scores.get(n, 0.0))
    chosen = set(expanded) | set(ranked[: max(0, max_nodes - len(expanded))]) | {k for k in keep if k in tree.nodes}
    for nid in list(chosen):
        chosen.update(tree.path_to_root(nid))
    return chosen


def tree_layout(tree: Tree, nodes: set[str]) -> dict[str, tuple[float, float]]:
    """A tidy top-down layout of the sub-tree ``nodes``: leaves left to right, parents centred."""
    pos: dict[str, tuple[float, float]] = {}
    depth_of = {tree.root: 0}
    next_x = [0.0]

    def place(nid: str) -> float:
        kids = [c for c in tree[nid].children if c in nodes]
        for c in kids:
            depth_of[c] = depth_of[nid] + 1
        xs = [place(c) for c in kids]
        x = sum(xs) / len(xs) if xs else next_x[0]
        if not xs:
            next_x[0] += 1.0
        pos[nid] = (x, -float(depth_of[nid]))
        return x

    if tree.root in nodes:
        place(tree.root)
    return pos


def _label(tree: Tree, nid: str, score: float | None) -> str:
    node = tree[nid]
    name = textwrap.shorten(node.chunk_id or nid, 22, placeholder="…") if node.is_leaf else nid
    if nid == tree.root:
        name = f"root {nid}"
    return f"{name}  {score:.2f}" if score is not None and node.is_leaf else (
        f"{name}\n{score:.2f}" if score is not None else name)


def draw_traversal(
    trace: Any, tree: Tree, *, cited: Iterable[str] = (), max_nodes: int = 60, title: str | None = None,
    navigation: int | None = None,
) -> Figure:
    """The explored tree: colour = path relevance, thick outline = expanded, red = path to ``cited``.

    With several navigations (agent rounds), nodes show their best path relevance over all
    of them; ``navigation=i`` draws the ``i``-th navigation alone.
    """
    n_navs = len(navigations(trace))
    if navigation is not None:
        trace = navigations(trace)[navigation]
    leaves = highlighted_leaves(trace, tree, cited)
    nodes = explored_nodes(trace, tree, max_nodes=max_nodes, keep=leaves)
    pos = tree_layout(tree, nodes)
    scores = path_relevance(trace)
    expanded = set(expanded_in(trace))
    on_path = {(p, c) for leaf in leaves for c, p in pairwise(tree.path_to_root(leaf))}
    n_cols = max((x for x, _ in pos.values()), default=0.0) + 1
    depth = max((-y for _, y in pos.values()), default=0.0)
    fig = Figure(figsize=(min(16.0, max(8.0, 0.62 * n_cols)), 2.2 + 1.1 * depth), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    if not pos:
        ax.text(0.5, 0.5, "no tree navigation in this answer", ha="center", va="center", fontsize=12, color="#555")
        return fig
    cmap = colormaps[_CMAP]
    for nid in pos:
        for c in tree[nid].children:
            if c in pos:
                hot = (nid, c) in on_path
                (x0, y0), (x1, y1) = pos[nid], pos[c]
                ax.plot([x0, x1], [y0, y1], color=_PATH if hot else "#b0b0b0", lw=2.8 if hot else 1.0,
                        zorder=2 if hot else 1)
    for nid, (x, y) in pos.items():
        score = scores.get(nid)
        face = cmap(float(score)) if score is not None else _UNSCORED
        ring = _PATH if nid in leaves else ("black" if nid in expanded else "#777777")
        ax.scatter([x], [y], s=420 if nid in expanded else 230, color=face, edgecolors=ring,
                   linewidths=2.4 if (nid in expanded or nid in leaves) else 0.8, zorder=3)
        if tree[nid].is_leaf:  # leaves sit side by side: slanted labels do not collide
            ax.text(x + 0.1, y - 0.16, _label(tree, nid, score), ha="right", va="top", rotation=35,
                    rotation_mode="anchor", fontsize=8, color=_PATH if nid in leaves else "#222222", zorder=4)
        else:
            ax.text(x + 0.2, y + 0.05, _label(tree, nid, score), ha="left", va="bottom", fontsize=8.5,
                    color="#222222", zorder=4, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                     "alpha": 0.85})
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(-depth - 1.3, 0.45)
    fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=ax, shrink=0.75, pad=0.01,
                 label="path relevance")
    n_exp = len(expanded & set(pos))
    scope = f" (best over {n_navs} navigations)" if n_navs > 1 and navigation is None else ""
    ax.set_title(title or f"Explored tree{scope}: {n_exp} nodes expanded, {len(pos)} shown\n"
                 "black ring = expanded · red = path to the cited leaf · grey = not scored", fontsize=10, loc="left")
    return fig


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for ``IPython.display.Image`` or a file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def scores_figure(trace: Any) -> Figure:
    """Raw vs calibrated scores (coloured by iteration) and per-iteration means."""
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    scatter_ax, lines_ax = fig.subplots(1, 2)
    steps = [s for nav in navigations(trace) for s in nav.steps]
    if not steps:
        for ax in (scatter_ax, lines_ax):
            ax.set_axis_off()
        scatter_ax.text(0.5, 0.5, "no scored slates", ha="center", va="center")
        return fig
    its = [s.iteration for s in steps for _ in s.items[: len(s.calibrated)]]
    raw = [r for s in steps for r in s.raw_scores[: len(s.calibrated)]]
    cal = [c for s in steps for c in s.calibrated[: len(s.raw_scores)]]
    points = scatter_ax.scatter(raw, cal, c=its, cmap="plasma", s=28, edgecolors="none")
    scatter_ax.plot([0, 1], [0, 1], ls="--", color="#888888", lw=1)
    scatter_ax.set(xlabel="raw score (scorer)", ylabel="calibrated score", title="calibration of slate scores",
                   xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    fig.colorbar(points, ax=scatter_ax, label="iteration")
    by_iter: dict[int, list[tuple[float, float, float]]] = {}
    for s in steps:
        for r, c, p in zip(s.raw_scores, s.calibrated, s.path_scores, strict=False):
            by_iter.setdefault(s.iteration, []).append((r, c, p))
    xs = sorted(by_iter)
    for k, (name, color) in enumerate([("raw", "#1f77b4"), ("calibrated", "#ff7f0e"), ("path", "#2ca02c")]):
        lines_ax.plot(xs, [sum(t[k] for t in by_iter[i]) / len(by_iter[i]) for i in xs], marker="o", label=name,
                      color=color)
    lines_ax.set(xlabel="navigator iteration", ylabel="mean score over the slate", ylim=(0, 1.05),
                 title="scores per iteration" + (" (all navigations)" if len(navigations(trace)) > 1 else ""))
    lines_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lines_ax.legend(loc="best", fontsize=8)
    lines_ax.grid(alpha=0.3)
    return fig


def pool_growth_figure(trace: Any) -> Figure:
    """The evidence pool per agent round: new items and the pool size after the round."""
    fig = Figure(figsize=(5.5, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rounds = list(getattr(trace, "rounds", None) or [])
    xs = [r["round"] + 1 for r in rounds]
    new = [len(r["new_chunk_ids"]) for r in rounds]
    size = [r["pool_size"] for r in rounds]
    bars_new = ax.bar([x - 0.2 for x in xs], new, width=0.38, color="#2171b5", label="new items")
    bars_pool = ax.bar([x + 0.2 for x in xs], size, width=0.38, color="#9ecae1", label="pool size after the round")
    for bars in (bars_new, bars_pool):
        ax.bar_label(bars, fontsize=8, padding=2)
    ax.set(xlabel="agent round", ylabel="evidence items", title="evidence pool growth",
           ylim=(0, max(size + [1]) * 1.35))
    ax.set_xticks(xs)
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    return fig


#: score-table names that ``notebooks/traversal_traces.ipynb`` reads as ``tv.NAME``
_FROM_TRACE_TABLES = ("SCORES_LEGEND", "STEP_HEADERS", "step_rows")


def __getattr__(name: str) -> Any:
    # lazy: trace_tables imports this module, so an eager import here would be circular
    if name in _FROM_TRACE_TABLES:
        from branchwise.ui import trace_tables

        return getattr(trace_tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
