"""Pictures and tables of one answer's trace: the explored tree, scores, evidence, usage.

Used by the chat app's trace panel and by ``notebooks/traversal_traces.ipynb``; nothing
here imports Gradio. Figures use matplotlib's object API on the Agg canvas (no pyplot
state), so concurrent sessions can draw at once.

The tree picture shows the part of the semantic tree the navigator explored (LATTICE,
Gupta et al. 2025, arXiv 2510.13217): every node it expanded, the children it scored, and
their ancestors. Node colour is the node's *path relevance* (the calibrated local score
mixed with the parent's path relevance by α), a thick outline marks expanded nodes, and
red edges trace the path from the root to the cited (or best-ranked) leaves.
"""

from __future__ import annotations

import html
import io
import re
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

from branchwise.cli.render import expanded_nodes, node_scores
from branchwise.trees.trace import TraversalTrace
from branchwise.trees.tree import Tree

STEP_HEADERS = ["iter", "expanded → scored node", "raw", "calibrated", "path", "reasoning"]
STEP_WIDTHS: list[str | int] = ["8%", "34%", "10%", "14%", "10%", "24%"]
#: the score table without its reasoning column (non-LLM scorers give no reasoning)
STEP_WIDTHS_NO_REASONING: list[str | int] = ["10%", "48%", "13%", "16%", "13%"]
#: what the score table's columns mean (shown under the table in the app)
SCORES_LEGEND = "\n".join([
    "- **raw**: the scorer's score of the node within its slate (one expansion), 0–1; raw scores of "
    "different slates are not comparable.",
    "- **calibrated**: one relevance per node, fitted across all slates so far (LATTICE calibration), "
    "then divided by the best node's: the best node seen so far is **1**, nodes fitted below zero show "
    "**0**. The ends of the scale are relative to the other nodes, not certainties.",
    "- **path**: path relevance p = α · p(parent) + (1 − α) · calibrated, with p(root) = 1 "
    "({alpha}); it ranks the frontier and the leaves.",
    "- **(calib.)**: a node scored before, scored again in this slate to tie the slates together.",
    "- Calibrated and path scores are as of that iteration's fit; later fits can move them.",
])


def scores_legend(trace: Any = None) -> str:
    """What the score table's columns mean, with the trace's own α when it recorded one."""
    alphas = {nav.config.get("alpha") for nav in navigations(trace) if isinstance(nav.config, dict)} - {None}
    alpha = f"α = {next(iter(alphas)):g} here" if len(alphas) == 1 else "α = 0.5 by default"
    return SCORES_LEGEND.replace("{alpha}", alpha)
EVIDENCE_HEADERS = ["chunk", "title", "route", "round", "score", "in context"]
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


def step_rows(trace: Any, tree: Tree | None = None) -> list[list[Any]]:
    """One row per scored item: iteration, ``expanded → item``, raw / calibrated / path score, reasoning.

    Calibration items (scored alongside the children to tie slates together) are marked
    ``(calib.)``; with ``tree``, leaves also name their chunk (``l4 · doc.md#0``).
    """
    rows: list[list[Any]] = []
    for nav in navigations(trace):
        for s in nav.steps:
            for i, item in enumerate(s.items):
                node = tree.nodes.get(item) if tree is not None else None
                name = f"{item} · {node.chunk_id}" if node is not None and node.is_leaf else item
                role = s.roles[i] if i < len(s.roles) else "child"
                rows.append([
                    s.iteration, f"{s.expanded} → {name}" + (" (calib.)" if role != "child" else ""),
                    _num(s.raw_scores, i), _num(s.calibrated, i), _num(s.path_scores, i),
                    textwrap.shorten(s.reasoning, 160, placeholder=" …") if i == 0 and s.reasoning else "",
                ])
    return rows


def step_table(trace: Any, tree: Tree | None = None) -> tuple[list[str], list[list[Any]], list[str | int]]:
    """The score table as the app shows it: headers, rows and column widths.

    The reasoning column is dropped when no slate has any (the embedding scorer never
    explains itself), so the table does not carry an always-empty column.
    """
    rows = step_rows(trace, tree)
    if rows and any(r[5] for r in rows):
        return list(STEP_HEADERS), rows, list(STEP_WIDTHS)
    return STEP_HEADERS[:5], [r[:5] for r in rows], list(STEP_WIDTHS_NO_REASONING)


def reasoning_note(trace: Any) -> str:
    """One line saying why the score table has no reasoning column (empty when it has one)."""
    if any(s.reasoning for nav in navigations(trace) for s in nav.steps):
        return ""
    scorers = sorted({nav.scorer for nav in navigations(trace) if nav.scorer})
    who = f"the {' / '.join(scorers)} scorer" if scorers else "this scorer"
    return (f"No reasoning column: {who} gives no explanations "
            "(the yesno and llm scorers do; pick one in Settings).")


def _num(values: Sequence[float], i: int) -> float | None:
    return round(float(values[i]), 2) if i < len(values) else None


def evidence_rows(trace: Any, index: Any) -> list[list[Any]]:
    """The evidence pool: chunk, title, route, round, best score, whether it reached the generator."""
    removed = set((getattr(trace, "compression", None) or {}).get("removed", []))
    best: dict[str, list[Any]] = {}
    for r in getattr(trace, "retrievals", None) or []:
        for cid, score in zip(r["chunk_ids"], r["scores"], strict=False):
            row = best.get(cid)
            if row is None:
                best[cid] = [cid, _title(index, cid), r["source"], r["round"] + 1, round(float(score), 3),
                             "no (compressed away)" if cid in removed else "yes"]
            elif score > row[4]:
                row[4] = round(float(score), 3)
    return sorted(best.values(), key=lambda row: (row[3], -row[4]))


def _title(index: Any, chunk_id: str) -> str:
    try:
        return index.chunks.get(chunk_id).title
    except Exception:  # the chunk store raises its own not-found error; a title is cosmetic
        return ""


def usage_markdown(answer: Any) -> str:
    """Tokens, LLM calls, latency, context size and why the loop stopped."""
    u = answer.usage
    trace = answer.trace
    comp = getattr(trace, "compression", None) or {}
    parts = [
        f"**{u.latency_s:.2f} s**", f"**{u.llm_calls}** LLM calls",
        f"**{u.prompt_tokens}** prompt + **{u.completion_tokens}** completion tokens",
        f"**{u.embed_calls}** embedding calls", f"context **{answer.context_tokens}** tokens",
    ]
    if comp:
        before, after = comp.get("tokens_before"), comp.get("tokens_after")
        parts.append(f"{comp.get('method')} compression {before} → {after} tokens")
    scorers = sorted({nav.scorer for nav in navigations(trace) if nav.scorer})
    if scorers:
        parts.append(f"tree scorer **{', '.join(scorers)}**")
    n_rounds = len(getattr(trace, "rounds", None) or [])
    stop = getattr(trace, "stop_reason", "") or ""
    why = STOP_REASONS.get(stop, stop.replace("_", " ")) if stop else "—"
    parts.append(f"**{n_rounds}** retrieval round{'s' if n_rounds != 1 else ''} (stopped: {why})")
    return " · ".join(parts)


#: why the agent stopped retrieving, in words (``AgentTrace.stop_reason``)
STOP_REASONS = {
    "max_rounds": "round limit reached",
    "sufficient": "evidence judged sufficient",
    "feedback_off": "feedback is off",
    "no_new_query": "no new query to try",
    "call_budget": "LLM call budget spent",
    "token_budget": "token budget spent",
}


def escape_untrusted(text: str) -> str:
    """Document text made inert for a Markdown/HTML view (documents are data, never markup).

    Blank lines separate paragraphs; single line breaks inside a paragraph become spaces,
    so hard-wrapped source text reflows to the width of the view.
    """
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "<br><br>".join(html.escape(p) for p in paragraphs)


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _inline_html(text: str) -> str:
    """One line of untrusted text as inert HTML; `code` spans become <code> (escaped inside)."""
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out += [html.escape(text[pos:m.start()]), f"<code>{html.escape(m.group(1))}</code>"]
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def document_html(text: str, *, drop_heading: str | None = None) -> str:
    """A document chunk as inert HTML that reads like the rendered Markdown it came from.

    Only a safe subset is interpreted, always on escaped text: ``#`` headings become bold
    lines (``drop_heading``: a first heading equal to it is left out, the view shows it as the
    title already), list items keep their own lines, fenced code stays pre-formatted, and
    `code` spans are set in code. Everything else is plain paragraphs (line breaks inside a
    paragraph reflow); no link, image or HTML in the document is ever rendered.
    """
    blocks: list[str] = []
    para: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if para:
            lines, joined = [ln.strip() for ln in para], ""
            for k, line in enumerate(lines):
                sep = "" if k == 0 else ("<br>" if _LIST_ITEM.match(line) else " ")
                joined += sep + _inline_html(line)
            blocks.append(f"<p>{joined}</p>")
            para.clear()

    for raw_line in text.splitlines():
        if code is not None:
            if _FENCE.match(raw_line):
                blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
                code = None
            else:
                code.append(raw_line)
            continue
        if _FENCE.match(raw_line):
            flush()
            code = []
        elif not raw_line.strip():
            flush()
        elif (m := _HEADING.match(raw_line)) is not None:
            flush()
            title = m.group(2).strip()
            if not (not blocks and drop_heading is not None and title.casefold() == drop_heading.strip().casefold()):
                blocks.append(f"<p><strong>{_inline_html(title)}</strong></p>")
        else:
            para.append(raw_line)
    if code is not None:  # an unclosed fence: show what there is
        blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
    flush()
    return "".join(blocks)


def plain_line(text: str) -> str:
    """Markdown reduced to one plain line: no ``#`` heading marks, list bullets or backticks."""
    lines = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        line = m.group(2) if m else _LIST_ITEM.sub("", line)
        lines.append(line.replace("`", "").strip())
    return " ".join(" ".join(lines).split())


def shorten_words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…" when cut.

    A cut that can end at a sentence end in the last third of the limit does so (no ellipsis).
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    if end >= limit * 2 // 3:
        return head[: end + 1]
    cut = text[: limit - 1]  # room for the ellipsis
    if text[limit - 1] != " " and (space := cut.rfind(" ")) > limit // 2:
        cut = cut[:space]  # drop the partial word
    return cut.rstrip(" ,;:-–—") + "…"


def summary_parts(summary: str, *, max_topics: int = 8, max_chars: int = 170) -> tuple[list[str], str]:
    """A node summary split for display: (topics, gist).

    Extractive summaries start with a ``Topics: a, b, c`` line followed by representative
    sentences; the topics come back as a list (at most ``max_topics``, then "…"), the rest as
    one plain line cut at a word boundary. LLM summaries have no topics line.
    """
    head, _, body = summary.partition("\n")
    topics: list[str] = []
    if head.startswith("Topics:"):
        topics = [t.strip() for t in head.removeprefix("Topics:").split(",") if t.strip()]
        if len(topics) > max_topics:
            topics = [*topics[:max_topics], "…"]
    else:
        body = summary
    return topics, shorten_words(plain_line(body), max_chars)


def chunk_markdown(index: Any, chunk_id: str, trace: Any = None) -> str:
    """A cited chunk: its text, and its place in the tree (root → leaf, summaries, path scores)."""
    chunk = index.chunks.get(chunk_id)
    title = chunk.title or chunk.doc_id
    lines = [f"### {escape_untrusted(plain_line(title))}",
             f"`{chunk_id}` · {chunk.n_tokens} tokens", "",
             f"<blockquote>{document_html(chunk.text, drop_heading=plain_line(title))}</blockquote>", ""]
    tree = index.tree
    leaf = tree.leaf_for_chunk(chunk_id) if tree is not None else None
    if leaf is None:
        lines.append("_This chunk has no leaf in the tree (it was found by search, not navigation)._")
        return "\n".join(lines)
    scores = path_relevance(trace)
    expanded = set(expanded_in(trace))
    lines += ["**Place in the tree**, from the root down to this chunk. "
              "p = path relevance for this question (0–1, the root is 1); ★ = the navigator expanded the node.", ""]
    path = list(reversed(tree.path_to_root(leaf.id)))
    items: list[str] = []
    for depth, nid in enumerate(path):
        node = tree[nid]
        p = 1.0 if nid == tree.root else scores.get(nid)
        facts = ["root"] if nid == tree.root else []
        facts.append(f"p = {p:.2f}" if p is not None else "p = — (not scored)")
        if nid in expanded:
            facts.append("★ expanded")
        head = f"<b>{html.escape(nid)}</b> · " + " · ".join(facts)
        if node.is_leaf:
            body = f"<br><b>this chunk</b> (<code>{html.escape(chunk_id)}</code>)"
        else:
            topics, gist = summary_parts(node.summary or "")
            body = (f"<br><small><i>topics:</i> {html.escape(', '.join(topics))}</small>" if topics else "")
            body += f"<br>{html.escape(gist)}" if gist else ("" if topics else "<br><i>(no summary)</i>")
        items.append(f"<li>{head}{body}" + ("<ul>" if depth < len(path) - 1 else ""))
    lines.append('<div class="tree-path"><ul>' + "".join(items) + "</li></ul>" * len(path) + "</div>")
    return "\n".join(lines)
