"""The ``branchwise`` command: one entry point, one subcommand module per area.

Each command module exposes ``register(subparsers)``, which adds its subcommands and sets
``func`` on them. Heavy imports happen inside the handlers, so ``branchwise --help`` is fast.
Errors from branchwise become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Sequence

from branchwise.errors import BranchwiseError

log = logging.getLogger("branchwise.cli")

#: modules that contribute subcommands, in help order
COMMAND_MODULES = (
    "branchwise.cli.index_cmd",
    "branchwise.cli.update_cmd",
    "branchwise.cli.ask_cmd",
    "branchwise.cli.eval_cmd",
    "branchwise.cli.compress_cmd",
    "branchwise.cli.train_cmd",
    "branchwise.cli.chat_cmd",
    "branchwise.cli.serve_cmd",
)


#: third-party loggers quieted by the CLI (an application choice; the library never does this)
NOISY_LOGGERS = ("bm25s", "httpx", "chromadb", "sentence_transformers", "urllib3")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branchwise",
        description="Agentic RAG over hierarchical indices: build an index, ask questions, evaluate.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command area is not part of this build
                continue
            raise
        module.register(sub)
    return parser


class _QuietThirdParty(logging.Filter):
    """Drop records below ``floor`` from the loggers in NOISY_LOGGERS (and their children)."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.floor:
            return True
        return not any(record.name == n or record.name.startswith(n + ".") for n in NOISY_LOGGERS)


def main(argv: Sequence[str] | None = None) -> int:
    from branchwise.offline import apply_offline_defaults

    apply_offline_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    if not args.verbose:  # transformers' "Loading weights" bars are noise in a CLI; ours stay
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Third-party loggers that set DEBUG on their own when imported (bm25s does, after this
    # point): filter at the handler, so import order does not matter.
    quiet = _QuietThirdParty(max(level, logging.WARNING))
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BranchwiseError as e:
        from branchwise.cli.hints import for_cli

        print(f"branchwise: error: {for_cli(' '.join(str(e).split()))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("branchwise: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
