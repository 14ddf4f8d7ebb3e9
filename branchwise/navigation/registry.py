"""The navigator's slate scorers, by name (``--scorer``, ``Settings.scorer``).

Each factory is ``factory(index, *, llm=None, reranker=None) -> Scorer`` over an index
with a tree; ``needs`` says what the composition root must supply.
"""

from __future__ import annotations

from branchwise.registry import Registry

SCORERS: Registry = Registry("navigator scorer", "--scorer / Settings.scorer")
SCORERS.register("embedding", "branchwise.navigation.scorers:embedding_scorer",
                 "cosine of query and node vectors (0 LLM calls; the default for small models)")
SCORERS.register("yesno", "branchwise.navigation.scorers:yesno_scorer",
                 "the LLM's P(Yes) from one forward pass per item", needs=("llm",))
SCORERS.register("llm", "branchwise.navigation.scorers:llm_slate_scorer",
                 "LATTICE's listwise judgement: one JSON-scored slate per LLM call", needs=("llm",))
SCORERS.register("reranker", "branchwise.navigation.scorers:reranker_scorer",
                 "the settings' reranker (e.g. the trained cross-encoder) on every slate item", needs=("reranker",))
