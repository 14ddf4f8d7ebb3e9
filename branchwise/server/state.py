"""What every request handler shares: the catalog, keys, job runner, traces and uploads.

Handlers reach it through ``request.app.state.branchwise`` (:func:`server_state`) and open
an index only through :func:`authorized` — the one place that checks the name and the key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from starlette.requests import Request

from branchwise.server.auth import KeyRing, presented_key
from branchwise.server.catalog import Catalog, ServedIndex
from branchwise.server.config import ServeConfig
from branchwise.server.errors import TooLarge
from branchwise.server.scheduler import JobRunner
from branchwise.server.traces import TraceStore
from branchwise.server.uploads import UploadArea
from branchwise.types import Answer

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    """The server's shared parts (one per app)."""

    config: ServeConfig
    catalog: Catalog
    keys: KeyRing
    runner: JobRunner
    traces: TraceStore
    uploads: UploadArea

    def check_question(self, question: str, history: Sequence[Mapping[str, str]] = ()) -> None:
        """Refuse questions, conversations and turns over the configured limits (413)."""
        limit = self.config.max_question_chars
        if len(question) > limit or any(len(t.get("content", "")) > limit for t in history):
            raise TooLarge(f"a question or turn is longer than {limit} characters.", fix="send shorter text.")
        if len(history) + 1 > self.config.max_messages:
            raise TooLarge(f"the conversation has more than {self.config.max_messages} messages.",
                           fix="send only the recent turns.")

    def ask(self, name: str, question: str, history: Sequence[Mapping[str, str]],
            options: Mapping[str, Any], trace_id: str) -> Answer:
        """Answer in the calling (worker) thread, under the index's read lock; keeps the trace
        (``trace_id`` is the run's thread id)."""
        served = self.catalog.get(name)
        with served.lock.read():
            answer = self.catalog.agent(name, options).ask(question, history=history, thread_id=trace_id)
        self.keep_trace(name, answer)
        return answer

    def stream(self, name: str, question: str, history: Sequence[Mapping[str, str]],
               options: Mapping[str, Any], trace_id: str) -> Iterator[Any]:
        """The agent's events, in the calling (worker) thread, under the index's read lock."""
        served = self.catalog.get(name)
        with served.lock.read():
            for event in self.catalog.agent(name, options).stream(question, history=history, thread_id=trace_id):
                if event.answer is not None:
                    self.keep_trace(name, event.answer)
                yield event

    def keep_trace(self, name: str, answer: Answer) -> None:
        trace = answer.trace
        if trace is not None and getattr(trace, "thread_id", ""):
            record = trace.to_dict()
            if isinstance(record.get("run"), dict) and "index" in record["run"]:
                record["run"]["index"] = name  # the served name, not the server's path
            self.traces.put(trace.thread_id, name, record)


def new_trace_id() -> str:
    """A fresh trace id (the agent run's thread id): 32 hex digits, unguessable."""
    return uuid.uuid4().hex


def server_state(request: Request) -> ServerState:
    return request.app.state.branchwise  # type: ignore[no-any-return]


def request_key(request: Request) -> str | None:
    return presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))


def authorized(request: Request, name: str) -> ServedIndex:
    """Index ``name``, if it exists (404) and the request's key may use it (401 / 403)."""
    state = server_state(request)
    served = state.catalog.get(name)
    state.keys.check(name, request_key(request))
    request.state.index = name  # for the access log
    return served


def readable(request: Request) -> list[str]:
    """The names of the indexes the request's key may use."""
    state, key = server_state(request), request_key(request)
    return [n for n in state.catalog.names() if state.keys.allows(n, key)]
