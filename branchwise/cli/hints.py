"""Error hints worded for the command line.

The library's errors name the Python spelling of an option (``on_error='skip'``,
``LlamaCppConfig.n_ctx``): that is what a Python user can change. A person at the command
line cannot type those, so :func:`for_cli` rewrites each into the option that does the same
there. Every entry names an option the CLI really has (``tests/cli/test_cli_hints.py``
checks both that, and that the errors the CLI can meet come out in CLI words).
"""

from __future__ import annotations

import re

#: (Python spelling in an error message, the same for the command line), applied in order
CLI_WORDING: tuple[tuple[str, str], ...] = (
    (r"pass on_error='skip' to leave such inputs out\.?", "pass --on-error skip to leave such inputs out (they "
                                                           "are listed at the end)."),
    (r"\(the first one is kept with on_error='skip'\)", "(the first one is kept with --on-error skip)"),
    (r"on_error='skip'", "--on-error skip"),
    (r"pass encoding_errors='replace'", "pass --encoding-errors replace"),
    (r"encoding_errors='replace'", "--encoding-errors replace"),
    (r"raise the limit with max_file_mb=\.\.\.", "raise the limit with --max-file-mb MB"),
    (r"\braise LlamaCppConfig\.n_ctx\b", "raise the model's context with --n-ctx TOKENS"),
    (r"LlamaCppConfig\.n_ctx", "--n-ctx"),
    (r"\braise OpenAIConfig\.timeout_s\b", "raise the per-request timeout with --request-timeout SECONDS"),
    (r"OpenAIConfig\.timeout_s", "--request-timeout"),
    (r"pass overwrite=True \(`--overwrite`\)", "pass `--overwrite`"),
    (r"open it with Index\.open, pass overwrite=True \(--overwrite\)", "pass --overwrite"),
    (r"pass that embedder object: Index\.open\(path, embedder=\.\.\.\)",
     "pass the embedder it was built with: --embedder SPEC"),
    (r" \(llm= / embedder= in Settings\)", ""),
    (r"pass llm=\.\.\., or use scorer='embedding'", "pass --llm SPEC, or use --scorer embedding"),
    (r"set Settings\(reranker=\.\.\.\) \(e\.g\. 'default' or 'cross-encoder:/path'\), or use scorer='embedding'",
     "pass --reranker SPEC (e.g. default or cross-encoder:/path), or use --scorer embedding"),
    (r"pass llm=\.\.\., or use mode='extractive'", "pass --llm SPEC, or use --compression extractive"),
    (r"pass llm=\.\.\. \(--llm SPEC\)", "pass --llm SPEC"),
    (r"`--timeout SECONDS` \(CLI\) or Settings\(timeout_s=\.\.\.\) \(Python\)", "`--timeout SECONDS`"),
)

_COMPILED = tuple((re.compile(p), r) for p, r in CLI_WORDING)


def for_cli(message: str) -> str:
    """``message`` with Python-only option spellings replaced by the CLI's options."""
    for pattern, replacement in _COMPILED:
        message = pattern.sub(replacement, message)
    return message
