"""``branchwise serve DIR...``: the HTTP server (OpenAI-compatible API + REST API), on loopback by default.

    branchwise serve docs-index                       # served as model "docs-index"
    branchwise serve docs=docs-index notes=notes-idx --keys-file keys.json --port 8000

Each index is reached under its own name (the OpenAI ``model``); ``--key NAME=KEY`` or a
``--keys-file`` (``{"docs": ["KEY", ...]}``) protects an index with API keys. The agent
options (``--scorer``, ``--rounds``, ...) set the server's defaults; a request may change a
few of them (see docs/server.md). Access logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from branchwise.cli.options import (
    add_agent_options,
    add_model_options,
    settings_from_args,
)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve indexes over HTTP: OpenAI-compatible chat API + REST API (loopback)",
                       description="Serve one or more indexes, each under its own name: POST /v1/chat/completions "
                                   "(model = index name, streaming or not), GET /v1/models, a REST API to list "
                                   "indexes, add / delete documents and ask with options, GET /v1/traces/{id}, "
                                   "GET /health. See docs/server.md.")
    p.add_argument("indexes", nargs="+", metavar="[NAME=]DIR",
                   help="index directories (from `branchwise index`); NAME=DIR serves DIR as NAME "
                        "(default name: the folder's name)")
    net = p.add_argument_group("serving")
    net.add_argument("--host", default="127.0.0.1",
                     help="interface to bind (default: 127.0.0.1; another one exposes the indexes to your network)")
    net.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    net.add_argument("--workdir", default="branchwise-serve", metavar="DIR",
                     help="the only directory the server writes to: uploaded documents (default: ./branchwise-serve)")
    net.add_argument("--key", action="append", default=[], metavar="NAME=KEY",
                     help="an API key for index NAME (repeatable); prefer --keys-file (the command line is visible "
                          "to other users of the machine)")
    net.add_argument("--keys-file", type=Path, default=None, metavar="FILE",
                     help='JSON file of API keys per index: {"NAME": ["KEY", ...]}')
    net.add_argument("--max-body-mb", type=float, default=10.0, help="largest request body, uploads included (default: 10)")
    net.add_argument("--concurrency", type=int, default=1,
                     help="questions answered at once (default: 1: one local llama.cpp model serialises its calls)")
    net.add_argument("--queue-size", type=int, default=32,
                     help="requests waiting at most before new ones get 429 (default: 32)")
    net.add_argument("--no-access-log", action="store_true", help="do not write JSON access-log lines to stderr")
    add_model_options(p, llm=True)
    add_agent_options(p)
    p.set_defaults(func=run_serve)


def _access_log(enabled: bool) -> None:
    """JSON access-log lines, as they are, on stderr (the CLI's own log format would wrap them)."""
    logger = logging.getLogger("branchwise.server.access")
    logger.propagate = False
    if enabled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.disabled = True


def require_server_extra() -> None:
    """FastAPI and uvicorn, or a :class:`MissingDependencyError` naming the ``server`` extra."""
    import importlib

    from branchwise.errors import MissingDependencyError

    for package in ("fastapi", "uvicorn"):
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise MissingDependencyError(package, "server", "`branchwise serve`") from e


def build_server(args: argparse.Namespace):  # -> (Server, ServeConfig)
    """The server of a command line (indexes opened; nothing listening yet)."""
    require_server_extra()
    from branchwise.errors import InputError
    from branchwise.server.app import create_server
    from branchwise.server.config import (
        ServeConfig,
        ServedIndexSpec,
        is_loopback,
        parse_index_args,
        parse_keys,
    )

    indexes = parse_index_args(args.indexes)
    for _name, path in indexes:
        if not (path / "manifest.json").is_file():
            raise InputError(f"{path} is not an index directory (no manifest.json).",
                             fix=f"build it first: branchwise index DOCS --out {path}")
    keys = parse_keys(args.key, args.keys_file)
    unknown = sorted(set(keys) - {n for n, _ in indexes})
    if unknown:
        raise InputError(f"API keys given for indexes that are not served: {unknown}.",
                         fix=f"use the served names: {', '.join(n for n, _ in indexes)}.")
    config = ServeConfig(host=args.host, port=args.port, workdir=Path(args.workdir).resolve(),
                         max_body_bytes=int(args.max_body_mb * 2**20), concurrency=args.concurrency,
                         queue_size=args.queue_size)
    # --embedder: the served indexes' embedder given again (e.g. with the credentials their recorded spec lost)
    specs = [ServedIndexSpec(n, p, keys=keys.get(n, ()), embedder=getattr(args, "embedder", None)) for n, p in indexes]
    if not is_loopback(config.host):
        open_ones = [s.name for s in specs if not s.keys]
        if open_ones:
            log.warning("serving %s on %s without API keys: anyone on the network can read and change them",
                        ", ".join(open_ones), config.host)
    return create_server(specs, settings_from_args(args), config), config


def run_serve(args: argparse.Namespace) -> int:
    from branchwise.server.app import uvicorn_server

    _access_log(not args.no_access_log)
    server, config = build_server(args)
    names = ", ".join(server.state.catalog.names())
    base = f"http://{config.host}:{config.port}"
    print(f"branchwise serve: {base}  (indexes: {names}; OpenAI base URL {base}/v1; "
          f"work directory {config.workdir}; Ctrl+C stops it)", flush=True)
    uvicorn_server(server.app, config.host, config.port).run()
    return 0
