"""The score table, its legend, the evidence pool and the usage line of one answer's trace.

Plain rows and Markdown for the chat app's trace panel (Gradio dataframes and Markdown);
the trace is read through :mod:`branchwise.ui.trace_view`'s helpers. Nothing here imports
Gradio or matplotlib.
"""

from __future__ import annotations

import textwrap
from typing import Any, Sequence

from branchwise.retrieval.tree import Tree
from branchwise.ui.trace_view import navigations

STEP_HEADERS = ["iter", "expanded → scored node", "raw", "calibrated", "path", "reasoning"]
STEP_WIDTHS: list[str | int] = ["8%", "34%", "10%", "14%", "10%", "24%"]
#: the score table without its reasoning column (non-LLM scorers give no reasoning)
STEP_WIDTHS_NO_REASONING: list[str | int] = ["10%", "48%", "13%", "16%", "13%"]
#: the evidence pool table's columns (:func:`evidence_rows`)
EVIDENCE_HEADERS = ["chunk", "title", "route", "round", "score", "in context"]
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
