"""Error hints worded for the command line (issue 21: the CLI named ``on_error='skip'``,
``encoding_errors='replace'``, ``LlamaCppConfig.n_ctx`` and ``OpenAIConfig.timeout_s``, which
a person at the command line cannot type). Each rewrite names an option the CLI really has,
and the options reach the backends."""

from __future__ import annotations

import re

import pytest

from branchwise.cli.hints import CLI_WORDING, for_cli
from branchwise.cli.main import build_parser

PYTHON_SPELLINGS = {
    "pass on_error='skip' to leave such inputs out.": "--on-error skip",
    "or pass encoding_errors='replace' to decode it lossily.": "--encoding-errors replace",
    "shorten the prompt (fewer/shorter passages) or raise LlamaCppConfig.n_ctx.": "--n-ctx TOKENS",
    "check the server's load; raise OpenAIConfig.timeout_s or lower max_tokens": "--request-timeout SECONDS",
    "split it, or raise the limit with max_file_mb=... (at least 29).": "--max-file-mb MB",
    "pass overwrite=True (`--overwrite`) to replace it": "`--overwrite`",
    "pass llm=... (--llm SPEC).": "pass --llm SPEC",
    "`--timeout SECONDS` (CLI) or Settings(timeout_s=...) (Python) if slow": "`--timeout SECONDS`",
    # the library's own fix texts, as they stand in branchwise/ (errors the CLI can meet)
    "open it with Index.open, pass overwrite=True (--overwrite), or choose another --out.": "pass --overwrite",
    "pass that embedder object: Index.open(path, embedder=...).": "--embedder SPEC",
    "or --embedder 'openai-embed:http://USER:PASSWORD@host/v1#model' (llm= / embedder= in Settings), or":
        "--embedder 'openai-embed:",
    "pass llm=..., or use scorer='embedding'.": "--scorer embedding",
    "set Settings(reranker=...) (e.g. 'default' or 'cross-encoder:/path'), or use scorer='embedding'.":
        "--reranker SPEC",
    "pass llm=..., or use mode='extractive'.": "--compression extractive",
}


@pytest.mark.parametrize("python, cli", sorted(PYTHON_SPELLINGS.items()))
def test_python_spellings_become_cli_options(python: str, cli: str) -> None:
    worded = for_cli(python)
    assert cli in worded, worded
    assert not re.search(r"\w+=('|\.\.\.|True)|Config\.|Settings\(", worded), worded


def test_every_option_a_hint_names_exists() -> None:
    parser = build_parser()
    options = {opt for action in parser._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
               for a in action._actions for opt in a.option_strings}
    named = {m for _, cli in CLI_WORDING for m in re.findall(r"--[a-z][a-z-]+", cli)}
    assert named and named <= options, named - options


def test_the_options_reach_the_backend_configs() -> None:
    from branchwise.assembly.root import _llm_config
    from branchwise.cli.options import ingest_settings, settings_from_args
    from branchwise.errors import InputError

    args = build_parser().parse_args(["ask", "idx", "q?", "--n-ctx", "8192", "--request-timeout", "300"])
    settings = settings_from_args(args)
    assert _llm_config(settings, "default").n_ctx == 8192
    assert _llm_config(settings.replace(n_ctx=None), "openai:http://127.0.0.1:1/v1#m").timeout_s == 300
    with pytest.raises(InputError, match="too small"):
        _llm_config(settings.replace(n_ctx=16), "default")
    args = build_parser().parse_args(["add", "idx", "docs", "--on-error", "skip", "--encoding-errors", "replace",
                                      "--max-file-mb", "64"])
    ingest = ingest_settings(settings_from_args(args), args).index.chunk.ingest
    assert (ingest.on_error, ingest.encoding_errors, ingest.max_file_mb) == ("skip", "replace", 64.0)
