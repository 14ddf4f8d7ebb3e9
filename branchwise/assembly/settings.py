"""``Settings``: everything the composition root assembles, in one typed, frozen object.

    settings = bw.Settings(llm="openai:http://127.0.0.1:8000/v1#qwen", scorer="yesno")
    settings = settings.replace(agent={"max_rounds": 1}, compression={"budget_tokens": 200})
    answer = bw.ask("my-index", "Who founded it?", settings=settings)

Model specs are strings (resolved by :mod:`branchwise.models.factory`); every component has
its own frozen config (``AgentConfig``, ``NavigatorConfig``, ``CompressionConfig``,
``IndexConfig``), documented beside the component. Names of pluggable parts (``scorer``,
``compression.mode``, ``agent.retrieval``) are entries of their registries.

The same defaults serve every entry point (``bw.build_index`` / ``bw.ask``, ``branchwise
index`` / ``ask``, the chat app, the servers, ``branchwise eval``); the table in
``docs/architecture.md`` ("Defaults") lists them. :meth:`Settings.from_env` applies the
environment variables of :mod:`branchwise.config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from branchwise.config import default_cache_dir, env_settings, redact

if TYPE_CHECKING:
    from branchwise.agents.config import AgentConfig
    from branchwise.compression.base import CompressionConfig
    from branchwise.indexing.pipeline import IndexConfig
    from branchwise.navigation.navigator import NavigatorConfig


def _agent() -> "AgentConfig":
    from branchwise.agents.config import AgentConfig

    return AgentConfig()


def _navigator() -> "NavigatorConfig":
    from branchwise.navigation.navigator import NavigatorConfig

    return NavigatorConfig()


def _compression() -> "CompressionConfig":
    from branchwise.compression.base import CompressionConfig

    return CompressionConfig()


def _index() -> "IndexConfig":
    from branchwise.indexing.pipeline import IndexConfig

    return IndexConfig()


#: the nested component configs, by field name
_NESTED = ("agent", "navigator", "compression", "index")


@dataclass(frozen=True, slots=True)
class Settings:
    """What to run: the models, the pluggable parts, and each component's settings.

    Attributes:
        llm: LLM spec (``default``, ``llamacpp:/m.gguf``, ``openai:URL#model``, ``hf:/path``).
            None: the LLM recorded in the index's manifest, else ``default``.
        embedder: embedder spec for *new* indexes (an opened index uses the embedder
            recorded in its manifest).
        store: vector store for new indexes: ``chroma`` or ``chroma+http://host:port``.
        reranker: reranker spec (see :mod:`branchwise.relevance.registry`): used by the
            ``reranker`` navigator scorer, the agent's evidence ranking and the extractive
            compressor's sentence selection.
        cache_dir: where the assembled embedded model and shared caches live.
        scorer: the navigator's slate scorer (a name in
            :data:`~branchwise.navigation.registry.SCORERS`).
        graph_route: let the agent use the GRAG graph route when the index has a graph.
        timeout_s: per-question deadline in seconds (None or 0: none): a question whose model
            endpoint stops answering fails with a ``BackendError`` naming the endpoint within
            about this long (plus ~1 s) instead of waiting on timeouts and retries. It bounds
            network backends (``openai:``); a local model is not interrupted mid-call.
        n_ctx: context window of a llama.cpp LLM (``default``, ``llamacpp:``); None keeps
            ``LlamaCppConfig.n_ctx`` (4096). CLI ``--n-ctx``.
        request_timeout_s: longest one request to an ``openai:`` LLM may take; None keeps
            ``OpenAIConfig.timeout_s`` (120 s). CLI ``--request-timeout``.
        agent: the agent's loop, budgets, routes and answer style.
        navigator: beam, iterations, α, calibration of the tree navigation.
        compression: how the evidence is compressed to the generator's budget.
        index: what an index build does (chunking, tree, graph).
    """

    llm: str | None = None
    embedder: str = "default"
    store: str = "chroma"
    reranker: str = "default"
    cache_dir: Path = field(default_factory=default_cache_dir)
    scorer: str = "embedding"
    graph_route: bool = True
    timeout_s: float | None = 600.0
    n_ctx: int | None = None
    request_timeout_s: float | None = None
    agent: "AgentConfig" = field(default_factory=_agent)
    navigator: "NavigatorConfig" = field(default_factory=_navigator)
    compression: "CompressionConfig" = field(default_factory=_compression)
    index: "IndexConfig" = field(default_factory=_index)

    def __post_init__(self) -> None:
        from branchwise.navigation.registry import SCORERS
        from branchwise.relevance.registry import RERANKERS

        SCORERS.get(self.scorer)  # unknown names fail here, listing the registered ones
        RERANKERS.get(self.reranker.partition(":")[0])

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Defaults, then the environment (``BRANCHWISE_LLM``, ...), then ``overrides``
        (None values are ignored, so CLI options that were not given fall through)."""
        base = cls(**env_settings())  # type: ignore[arg-type]
        return base.replace(**{k: v for k, v in overrides.items() if v is not None})

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes``; a nested config may be given as a mapping of its fields::

            settings.replace(scorer="yesno", agent={"max_rounds": 1})
        """
        for name in _NESTED:
            if isinstance(changes.get(name), Mapping):
                changes[name] = dataclasses.replace(getattr(self, name), **changes[name])
        return dataclasses.replace(self, **changes)

    def llm_spec(self, recorded: str | None = None) -> str:
        """The LLM spec to load: the explicit one, else the index's ``recorded`` one, else ``default``."""
        return self.llm or recorded or "default"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record of these settings with credentials redacted (for traces and logs)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _NESTED:
                value = _jsonable(dataclasses.asdict(value))
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, str):
                value = redact(value)
            out[f.name] = value
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return redact(value)
    return value
