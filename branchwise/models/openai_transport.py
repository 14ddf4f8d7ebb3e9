"""HTTP to one OpenAI-compatible base URL: bounded time, bounded retries, bounded concurrency.

:class:`OpenAITransport` is what :class:`~branchwise.models.openai_http.OpenAILLM` and
:class:`~branchwise.models.embedders.OpenAIEmbedder` post through. Each request:

1. takes one of ``max_concurrency`` slots, queueing behind at most ``max_queue`` others
   (back-pressure); a request that cannot start within ``queue_timeout_s`` fails with a
   clear, non-retryable error instead of queueing without bound;
2. runs with a hard wall-clock bound: ``timeout_s`` per attempt, cut to the time left of the
   enclosing :class:`~branchwise.models.retry.CallScope` deadline (a question's). The
   socket work runs on a helper thread, so a server that accepts the connection and never
   answers, or trickles its body byte by byte, costs at most that bound (plus ~50 ms);
3. is retried on transient failures only — timeouts, refused / reset connections, HTTP
   408/409/425/429/5xx, a JSON body that does not parse, a response of the wrong shape —
   with capped exponential backoff and jitter; ``Retry-After`` is honoured (capped at
   ``max_backoff_s``); no retry is started that the deadline would cut short.

Every failed attempt is reported to the fault log (:func:`~branchwise.models.retry.report_fault`),
which the agent turns into trace notes. Credentials never appear in messages, logs or faults:
user:password in the URL are sent as HTTP basic auth and stripped from the URL, the API key
travels only in the ``Authorization`` header, and every message is passed through
:func:`branchwise.config.redact`.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from branchwise.config import redact
from branchwise.errors import BackendError, BranchwiseError, MissingDependencyError
from branchwise.models.retry import (
    QueueTimeout,
    RequestLimiter,
    RetryPolicy,
    call_with_retries,
    current_deadline,
    deadline_error,
)

log = logging.getLogger(__name__)

JsonMode = Literal["json_schema", "json_object", "prompt"]
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_BODY_BYTES = 64 * 1024 * 1024
_GRACE_S = 0.05  # the helper thread's own timeouts fire this much after ours at most

Parse = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """Settings of the OpenAI-compatible backend.

    Attributes:
        timeout_s: the longest one request may take, start to last byte (generation on a
            loaded server can be slow); a body that trickles in slower is cut off there.
            Under a question's deadline, the time left is the bound when it is shorter.
        connect_timeout_s: TCP/TLS connect timeout.
        max_retries: retries of a failed request after the first attempt (transient errors
            only: timeouts, connection errors, HTTP 408/429/5xx, unparsable or misshapen
            responses).
        backoff_s: delay before the first retry; doubles each retry (with jitter).
        max_backoff_s: cap on one delay, including a server's ``Retry-After``.
        max_concurrency: requests in flight at once across all threads using this
            transport. Batched calls (``chat_batch``, ``continuation_logprobs_batch``) send
            this many at a time, which keeps a batching server (vLLM, llama.cpp with
            ``--parallel``) busy; lower it for a small server that queues requests anyway.
        max_queue: requests allowed to wait for a slot; callers beyond it wait for room in
            the queue itself (both waits count against ``queue_timeout_s``).
        queue_timeout_s: the longest a request waits to start before failing with a
            back-pressure error (not retried: the caller is sending more than the server
            takes).
        json_mode: the first structured-output mode to try; it degrades automatically
            when the server rejects it.
        top_logprobs: alternatives requested per position for continuation scoring
            (OpenAI allows up to 20).
    """

    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_concurrency: int = 8
    max_queue: int = 256
    queue_timeout_s: float = 300.0
    json_mode: JsonMode = "json_schema"
    top_logprobs: int = 20

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s)


class HTTPBackendError(BackendError):
    """A failed HTTP call; ``status`` is None for transport failures (timeouts, refused).

    ``kind`` names the fault for the fault log (``timeout``, ``connect``, ``reset``,
    ``http_503``, ``malformed_json``, ``wrong_schema``, ``rejected_param``, ``queue_full``).
    """

    def __init__(
        self, message: str, *, status: int | None, retryable: bool, fix: str | None = None,
        retry_after: float | None = None, kind: str = "",
    ) -> None:
        super().__init__(redact(message), fix=fix, retryable=retryable)
        self.status = status
        self.retry_after = retry_after
        self.kind = kind or (f"http_{status}" if status else "transport")


def api_key_from_env() -> str | None:
    """``BRANCHWISE_OPENAI_API_KEY`` (wins) or ``OPENAI_API_KEY``; None when neither is set."""
    return os.environ.get("BRANCHWISE_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


def _retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_fix(status: int) -> str:
    if status in (401, 403):
        return "set BRANCHWISE_OPENAI_API_KEY (or OPENAI_API_KEY) to a key the server accepts."
    if status == 404:
        return "check the base URL (it usually ends in /v1) and the model name after '#'."
    if status == 429 or status >= 500:
        return "the server is overloaded or failing; lower OpenAIConfig.max_concurrency or retry later."
    return "the server rejected the request; read its message above (context length, parameters)."


class _TooSlow(Exception):
    """The helper thread's body read passed the attempt's end."""


class OpenAITransport:
    """HTTP to one OpenAI-compatible base URL, with bounded time, retries and concurrency.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (``user:password@`` is sent as basic auth).
        config: timeouts, retries, concurrency.
        api_key: bearer token (default :func:`api_key_from_env`; many local servers need none).

    ``base_url`` (the attribute) is the URL without credentials, safe to show.
    """

    def __init__(self, base_url: str, config: OpenAIConfig | None = None, api_key: str | None = None) -> None:
        try:
            import httpx
        except ImportError as e:  # pragma: no cover - httpx is a core dependency
            raise MissingDependencyError("httpx", "openai", "the OpenAI-compatible backend") from e
        self._httpx = httpx
        url = httpx.URL(base_url.rstrip("/"))
        username, password = url.username, url.password
        # a spec read back from a manifest or trace, whose credentials were masked on the way in
        self.masked_credentials = username == "***" or "=***" in url.query.decode("ascii", "replace")
        if self.masked_credentials:
            username = password = ""
        auth = httpx.BasicAuth(username, password) if (username or password) else None
        url = url.copy_with(username=None, password=None)
        self.base_url = redact(str(url))
        self.config = config or OpenAIConfig()
        key = api_key if api_key is not None else api_key_from_env()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # never shown, even when a server echoes them back in an error body
        basic = base64.b64encode(f"{username}:{password}".encode()).decode() if password else None
        self._secrets = tuple(s for s in (key, password, basic) if s and len(s) >= 4)
        slots = max(1, self.config.max_concurrency)
        self._client = httpx.Client(
            base_url=url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
            # abandoned attempts keep their connection until their own timeout fires
            limits=httpx.Limits(max_connections=2 * slots + 2, max_keepalive_connections=slots),
            trust_env=False,  # never route a local model server through a proxy from the env
        )
        self.limiter = RequestLimiter(slots, self.config.max_queue)
        self._rng = random.Random()

    # -- one attempt ------------------------------------------------------------------------
    def _exchange(self, path: str, body: dict[str, Any], budget: float) -> tuple[int, dict[str, str], bytes]:
        """The socket work of one attempt (runs on a helper thread)."""
        httpx = self._httpx
        end = time.monotonic() + budget
        timeout = httpx.Timeout(budget, connect=min(self.config.connect_timeout_s, budget))
        with self._client.stream("POST", path, json=body, timeout=timeout) as resp:
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > end:
                    raise _TooSlow(f"the response body was still arriving after {budget:.1f} s ({size} bytes)")
                if size > _MAX_BODY_BYTES:
                    raise _TooSlow(f"the response body exceeded {_MAX_BODY_BYTES} bytes")
            return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, b"".join(chunks)

    def _bounded_exchange(self, path: str, body: dict[str, Any], budget: float) -> tuple[int, dict[str, str], bytes]:
        """:meth:`_exchange` with a hard wall-clock bound of ``budget`` seconds."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["value"] = self._exchange(path, body, budget)
            except BaseException as e:  # handed to the waiting thread  # noqa: BLE001
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=work, name="branchwise-http", daemon=True).start()
        if not done.wait(budget + _GRACE_S):
            raise _TooSlow(f"no complete response within {budget:.1f} s")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def _post_once(self, path: str, body: dict[str, Any], parse: Parse | None) -> Any:
        httpx = self._httpx
        url = self.base_url + path
        deadline = current_deadline()
        budget = self.config.timeout_s
        if deadline is not None:
            left = deadline.remaining()
            if left <= 0:
                raise deadline_error(f"POST {url}", deadline, "no time was left to send the request.")
            budget = min(budget, left)
        cut = deadline is not None and budget < self.config.timeout_s
        try:
            status, headers, raw = self._bounded_exchange(path, body, budget)
        except (httpx.TimeoutException, _TooSlow) as e:
            what = "connecting" if isinstance(e, httpx.ConnectTimeout) else "waiting for the answer"
            if cut and deadline is not None:
                raise deadline_error(f"POST {url}", deadline, f"the server gave no complete answer ({what}: "
                                     f"{redact(str(e)) or type(e).__name__}).") from e
            raise HTTPBackendError(
                f"POST {url} timed out after {budget:.1f} s {what} ({redact(str(e)) or type(e).__name__}).",
                status=None, retryable=True, kind="connect_timeout" if what == "connecting" else "timeout",
                fix="check the server's load; raise OpenAIConfig.timeout_s or lower max_tokens if answers are "
                "legitimately slow.",
            ) from e
        except httpx.TransportError as e:
            kind = "connect" if isinstance(e, httpx.ConnectError) else "reset"
            raise HTTPBackendError(
                f"could not {'reach' if kind == 'connect' else 'read an answer from'} {url}: "
                f"{redact(str(e)) or type(e).__name__}.",
                status=None, retryable=True, kind=kind,
                fix="check that the model server is running and the URL/port are right.",
            ) from e
        return self._interpret(url, body, status, headers, raw, parse)

    def _interpret(self, url: str, body: dict[str, Any], status: int, headers: dict[str, str], raw: bytes,
                   parse: Parse | None) -> Any:
        text = raw.decode("utf-8", errors="replace")
        if status >= 400:
            detail = text[:500].strip()
            # a server that does not know a parameter we sent (llama-cpp-python answers 500 for
            # an unknown response_format): repeating the request cannot help
            rejected = "response_format" in body and "response_format" in detail
            raise HTTPBackendError(
                f"POST {url} returned HTTP {status}: {detail}",
                status=status,
                retryable=status in _RETRYABLE_STATUS and not rejected,
                fix=_status_fix(status),
                retry_after=_retry_after(headers.get("retry-after")),
                kind="rejected_param" if rejected else "",
            )
        try:
            data = json.loads(text)
        except ValueError as e:
            says_json = "json" in headers.get("content-type", "")
            raise HTTPBackendError(
                f"POST {url} returned a body that is not JSON: {text[:200]!r}.",
                status=status,
                retryable=says_json,  # a garbled JSON answer may be transient; an HTML page is a wrong URL
                kind="malformed_json",
                fix="check that the URL points at an OpenAI-compatible API (usually .../v1).",
            ) from e
        if not isinstance(data, dict):
            raise HTTPBackendError(f"POST {url} returned JSON that is not an object: {text[:200]!r}.",
                                   status=status, retryable=True, kind="wrong_schema",
                                   fix="check that the server is OpenAI-compatible.")
        return parse(data) if parse is not None else data

    def _attempt(self, path: str, body: dict[str, Any], parse: Parse | None) -> Any:
        if self.masked_credentials:  # sending "***" as a password would only earn a puzzling 401
            raise HTTPBackendError(
                f"POST {self.base_url}{path}: this endpoint's credentials were masked when its spec was recorded "
                "(branchwise never writes passwords or keys to manifests, traces or logs), so there are none "
                "to send.",
                status=None, retryable=False, kind="masked_credentials",
                fix="give the spec again with its credentials: --llm 'openai:http://USER:PASSWORD@host/v1#model' "
                "or --embedder 'openai-embed:http://USER:PASSWORD@host/v1#model' (llm= / embedder= in "
                "Settings), or put a key in BRANCHWISE_OPENAI_API_KEY and leave the URL without credentials.",
            )
        deadline = current_deadline()
        wait = self.config.queue_timeout_s
        if deadline is not None:
            wait = min(wait, max(0.0, deadline.remaining()))
        try:
            with self.limiter.slot(wait):
                return self._post_once(path, body, parse)
        except BranchwiseError as e:
            self._scrub(e)
            raise
        except QueueTimeout as e:
            what = f"POST {self.base_url}{path}"
            if deadline is not None and wait < self.config.queue_timeout_s:
                raise deadline_error(what, deadline, f"the request waited {e.waited_s:.1f} s for a free slot "
                                     f"({e.reason}).") from None
            raise HTTPBackendError(
                f"{what} could not start within {e.waited_s:.1f} s: {e.reason} (back-pressure).",
                status=None, retryable=False, kind="queue_full",
                fix="send fewer requests at once (fewer workers), raise OpenAIConfig.max_concurrency if the server "
                "takes more at once (vLLM does), or raise OpenAIConfig.queue_timeout_s / max_queue.",
            ) from None

    def _scrub(self, error: BranchwiseError) -> None:
        """Mask this transport's key and password wherever the error's text holds them."""
        for secret in self._secrets:
            error.message = error.message.replace(secret, "***")
            error.args = tuple(a.replace(secret, "***") if isinstance(a, str) else a for a in error.args)

    # -- public -----------------------------------------------------------------------------
    def post_json(self, path: str, body: dict[str, Any], parse: Parse | None = None) -> Any:
        """POST ``body`` to ``base_url + path``; retries transient failures per the config.

        ``parse`` (optional) turns the JSON object into the caller's value inside the retry
        loop: raise :class:`HTTPBackendError` with ``retryable=True`` for a response of the
        wrong shape, and it is retried like any transient failure.
        """
        return call_with_retries(
            lambda: self._attempt(path, body, parse),
            self.config.retry_policy,
            what=f"POST {self.base_url}{path}",
            rng=self._rng,
            fault_kind=_fault_kind,
        )

    def close(self) -> None:
        self._client.close()


def _fault_kind(e: BranchwiseError) -> str:
    return getattr(e, "kind", "") or type(e).__name__


__all__ = ["HTTPBackendError", "JsonMode", "OpenAIConfig", "OpenAITransport", "api_key_from_env"]
