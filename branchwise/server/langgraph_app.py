"""The graph factory for ``langgraph dev`` / LangGraph Server (registered in ``langgraph.json``).

The index directory comes from ``configurable.index_dir`` or ``BRANCHWISE_INDEX``; every
other choice from :meth:`branchwise.Settings.from_env` (``BRANCHWISE_LLM``, ...), assembled by
the composition root exactly as ``bw.ask`` and the CLI assemble it: same scorer, compressor,
graph route and provenance in the trace. Nothing is loaded until a run needs it, so schema
and graph introspection stay cheap.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from branchwise.errors import InputError


def make_graph(config: RunnableConfig, *, settings: Any = None) -> Any:
    """The compiled agent graph over the configured index (a ``CompiledStateGraph``).

    Args:
        config: LangGraph's runnable config (``configurable.index_dir`` names the index).
        settings: a :class:`branchwise.Settings` (default: from the environment).
    """
    from branchwise.agents.graph import build_graph
    from branchwise.assembly.root import Assembly, open_index
    from branchwise.assembly.settings import Settings

    configurable = config.get("configurable") or {}
    index_dir = configurable.get("index_dir") or os.environ.get("BRANCHWISE_INDEX")
    if not index_dir:
        raise InputError(
            "the branchwise graph factory needs an index directory.",
            fix="set BRANCHWISE_INDEX=/path/to/index (build one with `branchwise index`), "
            "or pass configurable.index_dir.",
        )
    settings = settings or Settings.from_env()

    @functools.cache
    def provider() -> Any:
        return Assembly(open_index(Path(index_dir)), settings).deps()

    return build_graph(settings.agent, deps=provider)
