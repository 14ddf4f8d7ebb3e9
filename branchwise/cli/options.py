"""Option groups shared by several subcommands (model specs, progress)."""

from __future__ import annotations

import argparse

from branchwise.config import Settings


def add_model_options(p: argparse.ArgumentParser, *, llm: bool = True) -> None:
    g = p.add_argument_group("models (see the environment-variable table in branchwise.config)")
    if llm:
        g.add_argument("--llm", metavar="SPEC", help="LLM spec: default | llamacpp:/m.gguf | openai:http://host/v1#model | hf:/path (env BRANCHWISE_LLM)")
    g.add_argument("--embedder", metavar="SPEC", help="embedder spec: default | st:/path | openai-embed:http://host/v1#model (env BRANCHWISE_EMBEDDER)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env(llm=getattr(args, "llm", None), embedder=getattr(args, "embedder", None),
                             store=getattr(args, "store", None))
