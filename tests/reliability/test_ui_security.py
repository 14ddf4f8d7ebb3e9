"""The chat app as a hostile client meets it: loopback by default, uploads over the limit
refused before they land, uploads confined to the work directory, and an index built only
from files uploaded to the app (row U2 of docs/reliability.md; the server's own rows point at
tests/server and tests/ui).

Real components: the Gradio app served on 127.0.0.1 in this process, plain HTTP requests.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
from rel_support import grounded_reply

from branchwise.testing import ScriptedLLM


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uploads_over_the_limit_never_land_and_the_app_listens_on_loopback(built_index: tuple[Path, Path],
                                                                           real_embedder: Any, tmp_path: Path) -> None:
    from branchwise.cli.main import build_parser
    from branchwise.ui.app import launch_app, make_app
    from branchwise.ui.sessions import ModelPool
    from branchwise.ui.settings import ChatSettings, ServerConfig

    assert ServerConfig().host == "127.0.0.1" and build_parser().parse_args(["chat"]).host == "127.0.0.1"
    work = tmp_path / "work"
    config = ServerConfig(workdir=work, port=_free_port(), max_upload_mb=1)
    pool = ModelPool(llms={"scripted": ScriptedLLM(replies=grounded_reply)}, embedders={"default": real_embedder},
                     allow_custom=False)
    app = make_app(built_index[1], workdir=work, pool=pool, config=config, defaults=ChatSettings(llm="scripted"))
    url = launch_app(app, config)
    try:
        assert url.startswith("http://127.0.0.1:") and app.server_name == "127.0.0.1"
        big = b"# Big\n\n" + b"word " * (2 * 2**20 // 5)  # 2 MiB, over the 1 MiB limit
        r = httpx.post(f"{url.rstrip('/')}/gradio_api/upload", files=[("files", ("../../big.md", big, "text/markdown"))],
                       timeout=60)
        assert r.status_code == 413, (r.status_code, r.text[:200])
        assert not list(work.rglob("big.md")) and not (tmp_path / "big.md").exists()
        small = httpx.post(f"{url.rstrip('/')}/gradio_api/upload",
                           files=[("files", ("../../small.md", b"# Small\n\nfits", "text/markdown"))], timeout=60)
        assert small.status_code == 200 and Path(small.json()[0]).name == "small.md"
    finally:
        app.close()
