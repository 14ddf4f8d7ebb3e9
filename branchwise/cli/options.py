"""Option groups shared by several subcommands, and the one mapping from options to Settings.

Choices come from the registries (scorers, compressors, retrieval routes), so a name
registered once appears in ``--help`` and is accepted here; every option that is not given
falls through to the environment and the defaults of :class:`branchwise.Settings`.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_model_options(p: argparse.ArgumentParser, *, llm: bool = True) -> None:
    g = p.add_argument_group("models (see the environment-variable table in branchwise.config)")
    if llm:
        g.add_argument("--llm", metavar="SPEC",
                       help="LLM spec: default | llamacpp:/m.gguf | openai:http://host/v1#model | hf:/path "
                            "(env BRANCHWISE_LLM; default: the index's own, else the embedded model)")
    g.add_argument("--embedder", metavar="SPEC",
                   help="embedder spec for new indexes: default | st:/path | openai-embed:http://host/v1#model "
                        "(env BRANCHWISE_EMBEDDER); for an existing index (ask, add, delete, serve, chat DIR), its own embedder "
                        "given again, e.g. with the credentials its recorded spec was stripped of (default: the "
                        "recorded spec)")
    if llm:
        g.add_argument("--n-ctx", type=int, default=None, metavar="TOKENS",
                       help="context window of a local llama.cpp model (default: 4096)")
        g.add_argument("--request-timeout", type=_seconds, default=None, metavar="SECONDS",
                       help="longest one request to an openai: endpoint may take (default: 120)")


def add_ingest_options(p: argparse.ArgumentParser) -> None:
    """How documents are read (``index``, ``add``): bad inputs, encodings, size limits."""
    g = p.add_argument_group("reading documents")
    g.add_argument("--on-error", choices=["raise", "skip"], default=None,
                   help="an unreadable input (binary, not UTF-8, malformed JSONL line, too large, duplicate id): "
                        "stop with an error (raise, the default) or leave it out and list it at the end (skip)")
    g.add_argument("--encoding-errors", choices=["strict", "replace"], default=None,
                   help="a text file that is not UTF-8: an error (strict, the default) or decoded with U+FFFD "
                        "for the bad bytes (replace)")
    g.add_argument("--max-file-mb", type=float, default=None, metavar="MB",
                   help="largest file read, a JSONL record for .jsonl (default: 10; 0 for no limit)")


def ingest_settings(settings: Any, args: argparse.Namespace) -> Any:
    """``settings`` with the options of :func:`add_ingest_options` in ``settings.index.chunk.ingest``."""
    import dataclasses

    given = _given(args, on_error="on_error", encoding_errors="encoding_errors", max_file_mb="max_file_mb")
    if not given:
        return settings
    chunk = settings.index.chunk
    chunk = dataclasses.replace(chunk, ingest=dataclasses.replace(chunk.ingest, **given))
    return settings.replace(index={"chunk": chunk})


def add_agent_options(p: argparse.ArgumentParser) -> None:
    """The agent's options (``ask``, ``demo``); defaults are those of :class:`branchwise.Settings`."""
    from branchwise.agents.config import retrieval_routes
    from branchwise.compression.registry import COMPRESSORS
    from branchwise.navigation.registry import SCORERS
    from branchwise.relevance.registry import RERANKERS

    g = p.add_argument_group("agent (defaults: branchwise.Settings)")
    g.add_argument("--scorer", choices=SCORERS.names(), default=None,
                   help=f"tree-navigation scorer ({SCORERS.help()}; default: embedding)")
    g.add_argument("--reranker", metavar="SPEC", default=None,
                   help=f"reranker spec ({RERANKERS.help()}; env BRANCHWISE_RERANKER)")
    g.add_argument("--retrieval", choices=retrieval_routes(), default=None,
                   help="retrieval route (default: auto = the tree when the index has one)")
    g.add_argument("--rounds", type=int, default=None, help="max retrieval rounds")
    g.add_argument("--beam", type=int, default=None, help="navigator beam width B")
    g.add_argument("--iterations", type=int, default=None, help="navigator iterations N")
    g.add_argument("--compression", choices=COMPRESSORS.names(), default=None,
                   help=f"context compression ({COMPRESSORS.help()}; default: extractive)")
    g.add_argument("--budget", type=int, default=None, metavar="TOKENS", help="context token budget for the generator")
    g.add_argument("--no-graph", action="store_true", help="do not use the graph index even if present")
    g.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="per-question deadline: fail with an error naming the model endpoint if the question is "
                        "not answered within this long (default: 600; 0 for none)")


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`branchwise.Settings` of a command line: options > environment > defaults."""
    from branchwise.assembly.settings import Settings

    settings = Settings.from_env(llm=getattr(args, "llm", None), embedder=getattr(args, "embedder", None),
                                 store=getattr(args, "store", None), scorer=getattr(args, "scorer", None),
                                 reranker=getattr(args, "reranker", None), timeout_s=getattr(args, "timeout", None),
                                 n_ctx=getattr(args, "n_ctx", None),
                                 request_timeout_s=getattr(args, "request_timeout", None))
    agent = _given(args, rounds="max_rounds", retrieval="retrieval", budget="context_budget_tokens")
    navigator = _given(args, beam="beam", iterations="iterations")
    compression = _given(args, compression="mode", budget="budget_tokens")
    changes: dict[str, Any] = {"agent": agent, "navigator": navigator, "compression": compression}
    if getattr(args, "no_graph", False):
        changes["graph_route"] = False
    return settings.replace(**{k: v for k, v in changes.items() if v != {}})


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (use 0 for no deadline)")
    return seconds


def _given(args: argparse.Namespace, **fields: str) -> dict[str, Any]:
    """``{field: value}`` for the options (``option=field``) given on the command line."""
    return {f: getattr(args, opt) for opt, f in fields.items() if getattr(args, opt, None) is not None}
