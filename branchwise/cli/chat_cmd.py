"""``branchwise chat DIR``: the Gradio chat demo over an index, served on loopback by default."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from branchwise.cli.options import add_model_options, settings_from_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="chat with an index in the browser (Gradio; local only unless asked)")
    p.add_argument("dir", nargs="?", default=None,
                   help="index directory to open first (optional: indexes can be built in the app)")
    net = p.add_argument_group("serving")
    net.add_argument("--host", default="127.0.0.1",
                     help="interface to bind (default: 127.0.0.1; use 0.0.0.0 to serve your network, with --auth)")
    net.add_argument("--port", type=int, default=None, help="port (default: first free from 7860)")
    net.add_argument("--share", action="store_true",
                     help="public gradio.live link (needs Gradio's frpc binary and the internet; refused offline)")
    net.add_argument("--auth", metavar="USER:PASS", default=None, help="require this login (HTTP basic)")
    net.add_argument("--workdir", default="branchwise-chat", metavar="DIR",
                     help="the only directory the app writes to: uploads, new indexes (default: ./branchwise-chat)")
    net.add_argument("--concurrency", type=int, default=4, help="questions answered at once (default: 4)")
    add_model_options(p, llm=True)
    p.set_defaults(func=run_chat)


def run_chat(args: argparse.Namespace) -> int:
    from branchwise.errors import InputError
    from branchwise.offline import apply_offline_defaults
    from branchwise.ui.settings import ServerConfig, is_loopback, parse_auth

    apply_offline_defaults()  # GRADIO_ANALYTICS_ENABLED=False etc., before gradio is imported
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # Gradio's own upload cache lives in the work directory too (read when gradio is imported)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workdir / "gradio-cache"))
    if args.dir is not None and not (Path(args.dir) / "manifest.json").is_file():
        raise InputError(f"{args.dir} is not an index directory (no manifest.json).",
                         fix=f"build one with `branchwise index DOCS --out {args.dir}`, "
                             "or omit DIR and build one in the app.")
    settings = settings_from_args(args)
    config = ServerConfig(workdir=workdir, host=args.host, port=args.port, share=args.share,
                          auth=parse_auth(args.auth), chat_concurrency=args.concurrency)
    if not is_loopback(config.host) and config.auth is None:
        log.warning("serving on %s without --auth: anyone on the network can use the app", config.host)

    from branchwise.ui.app import check_share_possible, launch_app, make_app

    if config.share:
        check_share_possible()  # fail before loading anything
    app = make_app(args.dir, workdir=workdir, config=config, settings=settings,
                   index_embedder=getattr(args, "embedder", None))  # DIR's embedder given again
    url = launch_app(app, config)
    print(f"branchwise chat: {url}  (work directory {workdir}; Ctrl+C stops it)", flush=True)
    app.block_thread()
    return 0
