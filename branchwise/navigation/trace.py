"""Traversal traces: what the navigator did for one query, step by step (JSON round trip).

A trace answers "why was this leaf retrieved (or missed)?": for every scored slate it keeps
the expanded node, the candidates, the scorer's raw scores and reasoning, the calibrated
and path scores after that iteration's fit, the prompt (hash and token counts, and the
text when asked for), latency, and any fallback. Schema ``branchwise.trace/1``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from branchwise.errors import IndexFormatError
from branchwise.files import atomic_write_text

TRACE_SCHEMA = "branchwise.trace/1"


@dataclass(slots=True)
class TraversalStep:
    """One scored slate.

    Attributes:
        iteration: navigator iteration (1-based); a beam of B nodes gives B steps each.
        expanded: the node whose children were scored.
        items: node ids of the slate, children first.
        roles: ``"child"`` or ``"calibration"`` per item.
        raw_scores: the scorer's scores in [0, 1].
        priors: the retrieval priors shown with the slate, per source (None: no value).
        calibrated: calibrated local scores ŝ per item after this iteration's fit.
        path_scores: path relevance per item after this iteration's fit.
        pruned: ids of children pruned (local score at or below the threshold).
        reasoning: the scorer's explanation, if any.
        prompt_hash: hash of the rendered prompt (for the embedding scorer: of the query and the items).
        prompt: the prompt text, when the navigator is configured to keep prompts.
        prompt_tokens: prompt tokens spent on this slate.
        completion_tokens: generated tokens spent on this slate.
        llm_calls: backend calls spent on this slate.
        latency_s: wall time of scoring this slate.
        fallback: why the scores are not the scorer's own, or None.
    """

    iteration: int
    expanded: str
    items: list[str]
    roles: list[str]
    raw_scores: list[float]
    priors: dict[str, list[float | None]] = field(default_factory=dict)
    calibrated: list[float] = field(default_factory=list)
    path_scores: list[float] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    reasoning: str = ""
    prompt_hash: str = ""
    prompt: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    latency_s: float = 0.0
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraversalStep:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(slots=True)
class TraversalTrace:
    """Everything the navigator did for one question.

    Attributes:
        question: the query.
        config: the :class:`~branchwise.navigation.navigator.NavigatorConfig` as a dict.
        scorer: the scorer's name.
        steps: one :class:`TraversalStep` per scored slate, in order.
        iterations: iterations run.
        stop_reason: ``"iterations"``, ``"call_budget"``, ``"token_budget"``,
            ``"exhausted"`` (nothing left to expand) or ``"converged"``.
        ranked: ``[leaf node id, chunk id, score]`` best first.
        llm_calls / prompt_tokens / completion_tokens: totals over all steps.
        scorer_s: wall time inside the scorer; ``total_s``: wall time of the whole
            navigation (so ``total_s - scorer_s`` is the framework's own overhead).
    """

    question: str
    config: dict[str, Any] = field(default_factory=dict)
    scorer: str = ""
    steps: list[TraversalStep] = field(default_factory=list)
    iterations: int = 0
    stop_reason: str = ""
    ranked: list[list[Any]] = field(default_factory=list)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    scorer_s: float = 0.0
    total_s: float = 0.0

    @property
    def fallbacks(self) -> list[TraversalStep]:
        """Steps whose scores came from a fallback rather than the scorer."""
        return [s for s in self.steps if s.fallback]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "steps"}
        d["steps"] = [s.to_dict() for s in self.steps]
        return {"schema": TRACE_SCHEMA, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraversalTrace:
        if d.get("schema") != TRACE_SCHEMA:
            raise IndexFormatError(
                f"trace schema {d.get('schema')!r} is not {TRACE_SCHEMA!r}.",
                fix="re-run the query with this version of branchwise to get a new trace.",
            )
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d and f.name != "steps"}
        return cls(steps=[TraversalStep.from_dict(s) for s in d.get("steps", [])], **kw)

    def save(self, path: Path) -> None:
        """Write the trace as JSON atomically."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path) -> TraversalTrace:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as e:
            raise IndexFormatError(f"no trace at {path}.", fix="check the path given to --trace.") from e
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise IndexFormatError(f"trace file {path} is corrupt: {e}.", fix="re-run the query to write it again.") from e
