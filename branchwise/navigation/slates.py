"""Slates: what the navigator asks a scorer, what the scorer answers, and the prompts.

A *slate* (LATTICE, arXiv 2510.13217, §3) is the list of candidates judged together in one
scoring step: the children of the node being expanded plus a few *calibration* items that
were already judged in earlier slates. Judging items side by side gives the LLM context
(relative judgements are more reliable than absolute ones); the shared calibration items
let the navigator put the scores of different slates on one scale afterwards
(:mod:`branchwise.navigation.calibration`).

This module holds only data and pure prompt rendering: no model, no I/O. Item texts are
untrusted document text. They are quoted inside ``<passage>`` tags, with any tag look-alikes
neutralised, and the system prompt says that passages are data to judge, never
instructions to follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from branchwise.models.base import Message, messages_text, prompt_hash  # noqa: F401  (re-exported)
from branchwise.text.quoting import RELEVANCE_SYSTEM, quote_passage

ItemRole = Literal["child", "calibration"]

#: Rubric shared by the slate and the yes/no prompts. A plain "rate 0-10" prompt makes
#: small models answer "8" to everything (see ../shared/MODELS.md); anchored bands help.
RUBRIC = (
    "Score each candidate from 0 to 100 for how useful it is for answering the query:\n"
    "90-100: directly answers the query or contains a critical part of the answer;\n"
    "60-89: clearly on the query's topic and likely to contain useful details;\n"
    "30-59: related topic, but unlikely to contain the answer;\n"
    "0-29: unrelated to the query."
)

_SYSTEM = RELEVANCE_SYSTEM


@dataclass(frozen=True, slots=True)
class SlateItem:
    """One candidate of a slate.

    Attributes:
        node_id: the tree node judged.
        text: what the scorer sees: a summary for internal nodes, the chunk text for leaves.
        is_leaf: whether the node is a leaf (a chunk).
        chunk_id: the chunk of a leaf, None for internal nodes.
        role: ``"child"`` for the expanded node's children, ``"calibration"`` for items
            re-judged only to tie this slate's scale to earlier slates.
    """

    node_id: str
    text: str
    is_leaf: bool
    chunk_id: str | None = None
    role: ItemRole = "child"


@dataclass(frozen=True, slots=True)
class SlateRequest:
    """One slate to score for one question.

    Attributes:
        query_id: identifies the navigation state the slate belongs to (many questions can
            share one ``score_batch`` call).
        question: the query text.
        slate_id: position of the slate in its question's history (0-based).
        parent_id: the node being expanded.
        items: the candidates, children first, then calibration items.
        leaf_slate: True when all children are leaves (passages rather than topics).
        prior: retrieval priors per source (``"dense"``, ``"bm25"``), one value in [0, 1]
            or None per item. Scorers may show them to the LLM (InsertRank, arXiv
            2506.14086) and fall back to them when the LLM output is unusable.
    """

    query_id: str
    question: str
    slate_id: int
    parent_id: str
    items: tuple[SlateItem, ...]
    leaf_slate: bool
    prior: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)

    def prior_mean(self) -> list[float | None]:
        """Per item, the mean of the available prior values (None when there is none)."""
        out: list[float | None] = []
        for i in range(len(self.items)):
            vals = [v[i] for v in self.prior.values() if v[i] is not None]
            out.append(sum(vals) / len(vals) if vals else None)  # type: ignore[arg-type]
        return out


@dataclass(slots=True)
class SlateScores:
    """A scorer's answer for one :class:`SlateRequest`.

    Attributes:
        scores: relevance per item in [0, 1], in the request's item order.
        reasoning: the model's explanation, when it gave one.
        raw: the raw model output (for the trace and debugging).
        prompt: the rendered prompt text, when the scorer keeps it (else "").
        prompt_hash: a short hash of the rendered prompt (always set by LLM scorers).
        prompt_tokens: prompt tokens spent on this slate (all calls, retries included).
        completion_tokens: generated tokens spent on this slate.
        llm_calls: backend calls made for this slate (0 for the embedding scorer).
        latency_s: wall time spent scoring this slate.
        fallback: why the scores are not the model's own (None when they are), e.g.
            ``"malformed output: ..."``; the navigator records it in the trace.
    """

    scores: list[float]
    reasoning: str = ""
    raw: str = ""
    prompt: str = ""
    prompt_hash: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    latency_s: float = 0.0
    fallback: str | None = None


def _prior_note(request: SlateRequest, i: int) -> str:
    vals = [f"{src} {v[i]:.2f}" for src, v in sorted(request.prior.items()) if v[i] is not None]
    return f" (retrieval scores: {', '.join(vals)})" if vals else ""


def render_slate_prompt(
    request: SlateRequest, *, max_item_chars: int = 600, show_prior: bool = False, reasoning: bool = True
) -> list[Message]:
    """The listwise prompt of :class:`~branchwise.navigation.scorers.LLMSlateScorer`.

    One message pair per slate; candidates are numbered from 0 in the request's order and
    the model answers ``{"reasoning": str, "scores": [int, ...]}`` (one score per candidate,
    same order), which a JSON schema / grammar enforces on backends that support it.
    """
    kind = "passages" if request.leaf_slate else "topics (summaries of groups of passages)"
    lines = [f"Query: {quote_passage(request.question, 2000)}", "", f"Candidates are {kind}:"]
    for i, item in enumerate(request.items):
        note = _prior_note(request, i) if show_prior else ""
        lines.append(f'<passage id="{i}"{note}>{quote_passage(item.text, max_item_chars)}</passage>')
    n = len(request.items)
    ask = (
        f"{RUBRIC}\n\nAnswer with JSON: "
        + ('{"reasoning": "<one or two sentences>", ' if reasoning else "{")
        + f'"scores": [<{n} integers, one per candidate, in order>]}}'
    )
    if show_prior:
        ask += "\nThe retrieval scores come from keyword and embedding search: a hint, not the truth."
    return [Message("system", _SYSTEM), Message("user", "\n".join(lines) + "\n\n" + ask)]


def render_yes_no_prompt(
    question: str, item: SlateItem, *, max_item_chars: int = 600, prior_note: str = ""
) -> list[Message]:
    """The pointwise prompt of :class:`~branchwise.navigation.scorers.YesNoScorer`.

    Layout is system, then the query, then the item *last*: consecutive items of a slate
    (and of every slate of the same question) share the longest possible token prefix, so
    a backend with prefix caching (llama.cpp keeps the KV cache of the previous prompt)
    only evaluates the item's own tokens.
    """
    what = "passage" if item.is_leaf else "topic summary (of a group of passages)"
    user = (
        f"Query: {quote_passage(question, 2000)}\n\n"
        "Does the following text help answer the query? Answer Yes or No.\n\n"
        f"<passage kind=\"{what}\">{quote_passage(item.text, max_item_chars)}</passage>{prior_note}"
    )
    return [Message("system", _SYSTEM), Message("user", user)]


def slate_schema(n_items: int, *, reasoning: bool = True) -> dict[str, object]:
    """JSON schema of the slate answer: exactly ``n_items`` integer scores in 0..100."""
    props: dict[str, object] = {
        "scores": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": 100},
            "minItems": n_items,
            "maxItems": n_items,
        }
    }
    if reasoning:
        props = {"reasoning": {"type": "string"}, **props}
    return {"type": "object", "properties": props, "required": list(props)}
