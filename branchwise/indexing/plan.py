"""Dry run of a tree build: the shape, the LLM calls, the tokens and the time, before building.

An LLM-summarised tree over a large corpus can take hours on a laptop-class backend, so
``branchwise index --dry-run`` shows the bill first. The plan runs the same clustering as
the build (it is cheap next to summarising) and:

* **top-down**: the divisive hierarchy is computed exactly, so node counts per level and
  every level-1 prompt are exact;
* **bottom-up**: each level has ``ceil(n / (M·fill))`` nodes by construction
  (:func:`branchwise.indexing.cluster.n_groups`), so counts are exact without summaries;
  level-1 groups come from the same clustering as the build, so their prompts are exact.

Prompts of higher levels quote summaries that do not exist yet: they are estimated with
summaries of the full ``summary_tokens`` length, and completions are counted at the full
budget, so both token figures are upper-bound estimates. The number of LLM calls is exact
(one per internal node in ``llm`` mode, zero in ``extractive`` mode) for a build from
scratch; a resumed build makes fewer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from branchwise.models.base import LLM, GenParams, Message
from branchwise.text.tokens import Tokenizer, get_tokenizer
from branchwise.indexing.tree_build import TreeConfig, chunk_text
from branchwise.indexing.cluster import balanced_groups, divisive_hierarchy, iter_levels, n_groups, normalize
from branchwise.indexing.summarize import SummaryRequest, summary_messages
from branchwise.types import Chunk

log = logging.getLogger(__name__)

_MESSAGE_OVERHEAD = 4  # chat-template tokens per message (role markers), as OpenAI counts them


@dataclass(frozen=True, slots=True)
class BackendSpeed:
    """Throughput of an LLM backend in tokens per second."""

    prefill_tps: float
    decode_tps: float
    source: str = "measured"


#: The embedded Qwen2.5-Coder-1.5B Q4_K_M on 2 CPU cores (measured, see MODELS.md).
EMBEDDED_DEFAULT_SPEED = BackendSpeed(57.0, 18.0, "Qwen2.5-Coder-1.5B Q4_K_M, 2 CPU cores (MODELS.md)")


def measure_backend_speed(llm: LLM, tokenizer: Tokenizer | None = None) -> BackendSpeed:
    """Time two calls: a long prompt with 1 output token (prefill), a short prompt with
    48 output tokens (decode). Costs a few seconds on a CPU backend; bypass caches."""
    tok = tokenizer or get_tokenizer()
    filler = " ".join(f"item {i} of a benchmark list" for i in range(60))
    t0 = time.perf_counter()
    long = llm.chat([Message("user", f"{filler}\nReply with OK.")], GenParams(max_tokens=1))
    prefill_s = long.latency_s or (time.perf_counter() - t0)
    prompt_tokens = long.prompt_tokens or tok.count(filler)
    t0 = time.perf_counter()
    short = llm.chat([Message("user", "Count from one to fifty in words, separated by spaces.")], GenParams(max_tokens=48))
    total_s = short.latency_s or (time.perf_counter() - t0)
    prefill_tps = prompt_tokens / max(prefill_s, 1e-6)
    decode_s = max(total_s - (short.prompt_tokens or 16) / prefill_tps, 1e-6)
    return BackendSpeed(prefill_tps, max(short.completion_tokens, 1) / decode_s, f"measured on {llm.name}")


@dataclass(slots=True)
class BuildPlan:
    """What a build will do. Token counts are estimates (upper bounds); calls are exact."""

    strategy: str
    n_leaves: int
    max_children: int
    summary_mode: str
    nodes_per_level: dict[int, int] = field(default_factory=dict)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embed_texts: int = 0
    speed: BackendSpeed | None = None

    @property
    def depth(self) -> int:
        return max(self.nodes_per_level, default=0)

    @property
    def internal_nodes(self) -> int:
        return sum(self.nodes_per_level.values())

    @property
    def seconds(self) -> float | None:
        if self.speed is None or self.llm_calls == 0:
            return None if self.llm_calls else 0.0
        return self.prompt_tokens / self.speed.prefill_tps + self.completion_tokens / self.speed.decode_tps

    def format(self) -> str:
        """A human-readable report (what ``branchwise index --dry-run`` prints)."""
        lines = [f"Tree build plan: {self.strategy}, max {self.max_children} children, {self.n_leaves:,} leaves"]
        for level in sorted(self.nodes_per_level, reverse=True):
            lines.append(f"  level {level}: {self.nodes_per_level[level]:>9,} node(s)")
        lines.append(f"  depth {self.depth}, {self.internal_nodes:,} internal nodes")
        if self.summary_mode == "llm":
            lines.append(
                f"  summaries: {self.llm_calls:,} LLM calls, ~{self.prompt_tokens:,} prompt tokens, "
                f"<= {self.completion_tokens:,} completion tokens (estimates)"
            )
        else:
            lines.append("  summaries: extractive, 0 LLM calls")
        if self.embed_texts:
            lines.append(f"  summary embeddings: {self.embed_texts:,} texts")
        secs = self.seconds
        if secs is None:
            lines.append("  time: unknown (pass a BackendSpeed, e.g. measure_backend_speed(llm))")
        elif self.speed is not None and self.llm_calls:
            lines.append(
                f"  estimated LLM time: {_duration(secs)} at {self.speed.prefill_tps:.0f} prompt tok/s, "
                f"{self.speed.decode_tps:.0f} completion tok/s ({self.speed.source})"
            )
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    h, rem = divmod(round(seconds), 3600)
    return f"{h}h {rem // 60:02d}m" if h else f"{rem // 60}m {rem % 60:02d}s"


class _TokenEstimator:
    """Prompt tokens of a node from its children's texts (placeholders for summaries)."""

    def __init__(self, config: TreeConfig, tokenizer: Tokenizer):
        self.config, self.tok = config.summary, tokenizer
        self.placeholder = " x" * config.summary.summary_tokens  # one cl100k token per " x"
        self._by_count: dict[tuple[int, int], int] = {}

    def prompt(self, texts: Sequence[str], leaf_children: bool) -> int:
        msgs = summary_messages(SummaryRequest("plan", 1, tuple(texts), leaf_children), self.config, self.tok)
        return sum(self.tok.count(m.content) + _MESSAGE_OVERHEAD for m in msgs) + 3

    def upper(self, n_children: int, n_leaves: int, leaf_texts: Sequence[str] = ()) -> int:
        """A node with ``n_children`` children, ``n_leaves`` of which are ``leaf_texts``."""
        if n_leaves:
            texts = list(leaf_texts) + [self.placeholder] * (n_children - n_leaves)
            return self.prompt(texts, n_leaves == n_children)
        key = (n_children, 0)
        if key not in self._by_count:
            self._by_count[key] = self.prompt([self.placeholder] * n_children, False)
        return self._by_count[key]


def plan_build(
    chunks: Sequence[Chunk],
    embeddings: np.ndarray,
    config: TreeConfig | None = None,
    *,
    speed: BackendSpeed | None = None,
    tokenizer: Tokenizer | None = None,
) -> BuildPlan:
    """The plan of ``build_tree(chunks, embeddings, config, ...)`` from scratch."""
    cfg = config or TreeConfig()
    est = _TokenEstimator(cfg, tokenizer or get_tokenizer())
    llm = cfg.summary.mode == "llm"
    plan = BuildPlan(cfg.strategy, len(chunks), cfg.max_children, cfg.summary.mode, speed=speed if llm else None)
    vecs = normalize(np.asarray(embeddings, dtype=np.float32))
    texts = [chunk_text(c) for c in chunks] if llm else []
    prompts = 0
    if cfg.strategy == "top_down":
        splits = divisive_hierarchy(vecs, cfg.max_children, cfg.fill, seed=cfg.seed, config=cfg.clustering)
        for i, level in iter_levels(splits):
            plan.nodes_per_level[level] = plan.nodes_per_level.get(level, 0) + 1
            s = splits[i]
            if llm:
                prompts += est.upper(len(s.leaves) + len(s.children), len(s.leaves), [texts[r] for r in s.leaves])
    else:
        n, level = len(chunks), 1
        while True:
            g = 1 if n <= cfg.max_children else n_groups(n, cfg.max_children, cfg.fill)
            plan.nodes_per_level[level] = g
            if llm and level == 1:
                groups = [np.arange(n)] if g == 1 else balanced_groups(
                    vecs, g, cfg.max_children, min_size=cfg.min_size, seed=cfg.seed + 1, config=cfg.clustering
                )
                prompts += sum(est.upper(len(grp), len(grp), [texts[r] for r in grp]) for grp in groups)
            elif llm:
                q, r = divmod(n, g)  # g nodes share n children: r get q+1, the rest q
                prompts += r * est.upper(q + 1, 0) + (g - r) * est.upper(q, 0)
            if g == 1:
                break
            n, level = g, level + 1
    plan.llm_calls = plan.internal_nodes if llm else 0
    plan.prompt_tokens = prompts
    plan.completion_tokens = plan.llm_calls * cfg.summary.summary_tokens
    plan.embed_texts = plan.internal_nodes if cfg.node_vectors == "summary" else 0
    return plan
