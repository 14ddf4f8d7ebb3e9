"""The HTTP server of ``branchwise serve``: FastAPI on uvicorn, one or more indexes by name.

    from branchwise.server.app import create_server, serve_in_thread
    server = create_server([ServedIndexSpec("docs", Path("docs-index"), keys=("…",))], settings)
    with serve_in_thread(server.app, port=0) as url:        # http://127.0.0.1:PORT
        ...

Routes: the OpenAI-compatible surface (:mod:`branchwise.server.openai_api`), the REST API
(:mod:`branchwise.server.rest_api`) and ``GET /health``. Every agent is assembled by the
composition root (:mod:`branchwise.server.catalog`); questions and updates wait in one fair,
bounded queue in front of the shared LLM (:mod:`branchwise.server.scheduler`). Requests over
the size limit get 413, a full queue 429; access logs are JSON lines on the
``branchwise.server.access`` logger. ``docs/server.md`` is the reference.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Sequence

from fastapi import FastAPI, Request

from branchwise.errors import BranchwiseError, InputError
from branchwise.server import openai_api, rest_api
from branchwise.server.auth import KeyRing
from branchwise.server.catalog import Catalog
from branchwise.server.config import ServeConfig, ServedIndexSpec
from branchwise.server.http import AccessLog, BodyLimit, install_error_handlers
from branchwise.server.scheduler import FairScheduler, JobRunner
from branchwise.server.state import ServerState, server_state
from branchwise.server.traces import TraceStore
from branchwise.server.uploads import UploadArea

if TYPE_CHECKING:
    from branchwise.assembly.settings import Settings
    from branchwise.models.base import LLM

log = logging.getLogger(__name__)


def create_state(specs: Sequence[ServedIndexSpec], settings: "Settings", config: ServeConfig | None = None, *,
                 llm: "LLM | None" = None) -> ServerState:
    """Open every index once and make the server's shared parts."""
    config = config or ServeConfig()
    if not specs:
        raise InputError("no index to serve.", fix="pass one or more index directories: branchwise serve DIR...")
    scheduler = FairScheduler(config.concurrency, config.queue_size, config.queue_per_index)
    return ServerState(
        config=config,
        catalog=Catalog(specs, settings, llm=llm, variants_per_index=config.variants_per_index),
        keys=KeyRing({s.name: s.keys for s in specs}),
        runner=JobRunner(scheduler),
        traces=TraceStore(config.trace_limit),
        uploads=UploadArea(config.workdir),
    )


def create_app(state: ServerState) -> FastAPI:
    """The ASGI app over ``state``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.runner.close()

    # no /docs page: Swagger UI loads its scripts from a CDN, and branchwise never reaches out;
    # the schema is at /openapi.json
    app = FastAPI(title="branchwise", summary="Agentic RAG over hierarchical indices", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.branchwise = state
    app.include_router(openai_api.router)
    app.include_router(rest_api.router)

    @app.get("/health")
    def health(request: Request) -> dict[str, Any]:
        st = server_state(request)
        return {"status": "ok", "indexes": len(st.catalog.names()), "queue": st.runner.scheduler.stats(),
                "traces": len(st.traces)}

    paths = {**state.catalog.public_paths(), str(state.uploads.root): "<uploads>"}
    install_error_handlers(app, lambda: paths)
    app.add_middleware(BodyLimit, max_bytes=state.config.max_body_bytes)  # type: ignore[arg-type]
    app.add_middleware(AccessLog)  # type: ignore[arg-type]
    return app


class Server:
    """An app with its state (what :func:`create_server` returns)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.app = create_app(state)


def create_server(specs: Sequence[ServedIndexSpec], settings: "Settings", config: ServeConfig | None = None, *,
                  llm: "LLM | None" = None) -> Server:
    """:func:`create_state` + :func:`create_app`."""
    return Server(create_state(specs, settings, config, llm=llm))


def uvicorn_server(app: FastAPI, host: str, port: int) -> Any:
    """A ``uvicorn.Server`` for ``app`` (our access log replaces uvicorn's; no server header)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_config=None, server_header=False,
                            timeout_graceful_shutdown=5, lifespan="on")
    return uvicorn.Server(config)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread (``port=0``: a free port); yields its base URL."""
    server = uvicorn_server(app, host, port)
    thread = threading.Thread(target=server.run, name="branchwise-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise BranchwiseError("the server did not start.", fix="see the log; is the port free?")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
