"""Systems under evaluation: the :class:`System` protocol, the shared context, the registry.

Every system — a plain retriever, naive RAG, RAPTOR's collapsed tree, the branchwise
navigator with each scorer, the agent — answers one question through the same protocol and
over the *same* index, embedder and LLM, so differences in the report come from the
method, not the plumbing. Systems are registered by name and built lazily: a system whose
module is not part of this build (or needs a tree the index lacks) fails with an
:class:`~branchwise.errors.InputError` naming what is missing, and unknown names list the
available ones.

Per-question accounting: :meth:`SystemContext.session_llm` wraps the shared backend in a
fresh :class:`~branchwise.models.cache.CachedLLM` (same cache file, new
:class:`~branchwise.models.base.UsageMeter`) for each question, so calls and tokens are
attributed to the right question even when questions run in parallel threads.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from branchwise.errors import InputError
from branchwise.models.base import LLM, UsageMeter
from branchwise.types import Answer, ScoredChunk, Usage


@dataclass(slots=True)
class SystemOutput:
    """What one system produced for one question.

    Attributes:
        retrieved: ranked chunks, best first (the retrieval metrics read these).
        answer: the generated answer, or None for retrieval-only systems.
        usage: LLM calls, tokens and wall latency of the whole question.
        context_tokens: tokens of evidence handed to the generator (0 without one).
        info: small JSON-able extras for the per-question record (e.g. a stop reason).
        context_ids: chunk ids handed to the generator, when that is not the whole
            ``retrieved`` list (naive RAG reads its top ``rag_k`` of a top-``k`` ranking);
            evidence recall is computed over these.
    """

    retrieved: list[ScoredChunk]
    answer: Answer | None = None
    usage: Usage = field(default_factory=Usage)
    context_tokens: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    context_ids: list[str] | None = None


@runtime_checkable
class System(Protocol):
    """A retrieval or question-answering system evaluated by the runner."""

    name: str

    def run(self, question: str) -> SystemOutput:
        """Retrieve (and answer, for QA systems) for one question."""
        ...


def usage_from_meter(meter: UsageMeter, wall_s: float) -> Usage:
    """Per-question :class:`Usage`: every call counts (cache hits too), latency is wall time."""
    return Usage(
        llm_calls=meter.calls + meter.cached_calls,
        prompt_tokens=meter.prompt_tokens,
        completion_tokens=meter.completion_tokens,
        latency_s=wall_s,
    )


class SystemContext:
    """What systems share: the index, its embedder, one LLM backend and its call cache.

    Args:
        index: an opened ``branchwise.retrieval.index.Index``.
        llm_factory: builds the LLM backend on first use (None: no LLM available). Lazy so
            that retrieval-only runs never load a model.
        cache_path: sqlite file of the LLM call cache (None: no caching).
        k: chunks each system returns for the retrieval metrics.
        rag_k: chunks naive RAG (and RAPTOR RAG) put into the generator's context.
        answer_style: ``AnswerConfig.style`` of every QA system ("short" or "sentence").
        settings: the :class:`branchwise.Settings` the branchwise systems are assembled from
            (default: from the environment); agent variants are changes of it.
    """

    def __init__(
        self,
        index: Any,
        llm_factory: Callable[[], LLM] | None = None,
        cache_path: Path | None = None,
        *,
        k: int = 10,
        rag_k: int = 5,
        answer_style: str = "short",
        settings: Any = None,
    ) -> None:
        from branchwise.assembly.settings import Settings

        self.index = index
        self.settings = settings or Settings.from_env()
        self.embedder = index.embedder
        self.cache_path = cache_path
        self.k = k
        self.rag_k = rag_k
        self.answer_style = answer_style
        self._llm_factory = llm_factory
        self._llm: LLM | None = None
        self._lock = threading.Lock()

    @property
    def has_llm(self) -> bool:
        return self._llm_factory is not None

    def base_llm(self) -> LLM:
        """The shared backend (created on first call)."""
        with self._lock:
            if self._llm is None:
                if self._llm_factory is None:
                    raise InputError(
                        "this system needs an LLM but none was configured.",
                        fix="pass --llm SPEC (e.g. --llm default for the embedded Qwen2.5 model).",
                    )
                self._llm = self._llm_factory()
            return self._llm

    @contextmanager
    def session_llm(self) -> Iterator[Any]:
        """``with ctx.session_llm() as llm:`` — a per-question CachedLLM over the shared backend.

        It has its own :class:`UsageMeter` and shares the cache file; its sqlite connection
        is closed when the block ends.
        """
        from branchwise.models.cache import CachedLLM

        llm = CachedLLM(self.base_llm(), self.cache_path, meter=UsageMeter())
        try:
            yield llm
        finally:
            llm.close()


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds`` — wall time of a block."""

    def __enter__(self) -> "Stopwatch":
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0


SystemFactory = Callable[[SystemContext], System]


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """A registered system: how to build it and what it needs."""

    name: str
    factory: SystemFactory
    description: str
    needs_llm: bool = False
    needs_tree: bool = False


_REGISTRY: dict[str, SystemSpec] = {}


def register_system(spec: SystemSpec) -> None:
    """Add (or replace) a system in the registry."""
    _REGISTRY[spec.name] = spec


def _ensure_builtin() -> None:
    # Importing these modules registers their systems; deferred to avoid import cycles.
    from branchwise.evals import adapters, baselines  # noqa: F401


def available_systems() -> dict[str, SystemSpec]:
    """All registered systems by name (baselines, navigator scorers, agent variants)."""
    _ensure_builtin()
    return dict(sorted(_REGISTRY.items()))


def build_systems(names: list[str], ctx: SystemContext) -> list[System]:
    """Build the named systems; InputError for unknown names or unmet needs."""
    registry = available_systems()
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise InputError(
            f"unknown system(s): {', '.join(unknown)}.",
            fix=f"choose from: {', '.join(registry)}.",
        )
    systems = []
    for n in names:
        spec = registry[n]
        if spec.needs_llm and not ctx.has_llm:
            raise InputError(f"system {n!r} needs an LLM.", fix="pass --llm SPEC (e.g. --llm default).")
        if spec.needs_tree and ctx.index.tree is None:
            raise InputError(
                f"system {n!r} needs a semantic tree, and the index at {ctx.index.path} has none.",
                fix="let the runner build it (EvalConfig.build_tree=True / drop --no-tree) or build it with `branchwise index`.",
            )
        systems.append(spec.factory(ctx))
    return systems
