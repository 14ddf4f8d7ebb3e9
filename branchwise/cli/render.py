"""Plain-text rendering of answers, citations and the path taken through the tree."""

from __future__ import annotations

import textwrap
from typing import Any

from branchwise.agents.trace import expanded_by_round, expanded_nodes, node_scores
from branchwise.types import Answer


def _short(text: str, width: int = 90) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …")


def render_expanded(trace: Any, width: int = 100) -> list[str]:
    """The navigator's expansions, one line per navigation (agent round); a navigation that
    expanded exactly the same nodes as an earlier one is not repeated."""
    runs = [run for run in expanded_by_round(trace) if run[2]]
    if not runs:
        return []
    several_per_round = len({r for r, _, _ in runs}) < len(runs)
    lines = ["expanded by the navigator (in order):"]
    first_seen: dict[tuple[str, ...], str] = {}
    for rnd, query, nodes in runs:
        label = f"round {rnd}"
        if several_per_round and query:
            label += f" ({_short(query, 40)})"
        key = tuple(nodes)
        if key in first_seen:
            lines.append(f"  {label}: same {len(nodes)} nodes as {first_seen[key]}")
            continue
        first_seen[key] = label
        lines += textwrap.wrap(" → ".join(nodes), width=width, initial_indent=f"  {label}: ",
                               subsequent_indent=" " * (len(label) + 4), break_on_hyphens=False)
    return lines


def render_tree_paths(answer: Answer, tree: Any) -> list[str]:
    """For each cited chunk: root → … → leaf, with summaries and path relevance."""
    if tree is None:
        return ["(the index has no tree)"]
    scores = node_scores(answer.trace)
    expanded = set(expanded_nodes(answer.trace))
    lines: list[str] = []
    cited = list(dict.fromkeys(c.chunk_id for c in answer.citations))
    if not cited and answer.trace is not None:
        cited = [r[0] for nav in answer.trace.navigation for r in nav.ranked[:1]]
    for chunk_id in cited:
        leaf = tree.leaf_for_chunk(chunk_id)
        if leaf is None:
            continue
        path = list(reversed(tree.path_to_root(leaf.id)))
        lines.append(f"path to {chunk_id}:")
        for depth, nid in enumerate(path):
            node = tree[nid]
            score = f"p={scores[nid]:.2f}" if nid in scores else "p=—"
            mark = "*" if nid in expanded else " "
            label = f"leaf {chunk_id}" if node.is_leaf else _short(node.summary or "(no summary)", 70)
            lines.append(f"  {'  ' * depth}{mark} {nid} [{score}] {label}")
    if expanded:
        lines += render_expanded(answer.trace)
    return lines or ["(no tree navigation in this answer)"]


def render_answer(answer: Answer, index: Any) -> str:
    out = ["", "Answer:", textwrap.fill(answer.text, width=100), ""]
    if answer.citations:
        out.append("Citations:")
        for c in answer.citations:
            chunk = index.chunks.get(c.chunk_id)
            quote = c.quote or chunk.text
            out.append(f"  {c.marker} {c.chunk_id}  ({c.title or chunk.title})  “{_short(quote)}”")
    elif not answer.found:
        out.append("(no supporting evidence in the corpus)")
    out += ["", "Path through the tree (* = expanded by the navigator):"]
    out += render_tree_paths(answer, index.tree)
    u = answer.usage
    out += ["", f"LLM calls: {u.llm_calls}, prompt tokens: {u.prompt_tokens}, completion tokens: {u.completion_tokens}, "
                f"context tokens: {answer.context_tokens}, time: {u.latency_s:.1f} s"]
    return "\n".join(out)
