"""OpenAI-compatible HTTP backend (``openai:http://host:8000/v1#model``).

One client speaks to vLLM, Ollama, the llama.cpp server, TGI's OpenAI route and OpenAI
itself. :class:`OpenAITransport` owns the HTTP concerns — timeouts, retries with backoff and
jitter on transient failures (never on 4xx), ``Retry-After``, and a semaphore capping the
requests in flight — and :class:`OpenAILLM` maps the :class:`~branchwise.models.base.LLM`
protocol onto ``/chat/completions``. Embeddings use the same transport
(:class:`~branchwise.models.embedders.OpenAIEmbedder`).

Servers differ in what they support, so structured output degrades gracefully:
``response_format={"type": "json_schema"}`` → ``{"type": "json_object"}`` → plain text with
the schema in the prompt, each followed by lenient parsing. Continuation scoring uses
``logprobs``/``top_logprobs`` with ``max_tokens=1``; a server that returns none gets a clear
error rather than a silent constant.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from branchwise.errors import BackendError, MissingDependencyError
from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion
from branchwise.models.json_output import complete_json, schema_hint
from branchwise.models.openai_logprobs import score_from_top_logprobs
from branchwise.models.retry import RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

JsonMode = Literal["json_schema", "json_object", "prompt"]
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """Settings of the OpenAI-compatible backend.

    Attributes:
        timeout_s: read timeout per request (generation on a loaded server can be slow).
        connect_timeout_s: TCP/TLS connect timeout.
        max_retries: retries of a failed request after the first attempt (retryable
            errors only: timeouts, connection errors, HTTP 408/429/5xx).
        backoff_s: delay before the first retry; doubles each retry (with jitter).
        max_backoff_s: cap on one delay, including a server's ``Retry-After``.
        max_concurrency: requests in flight at once across all threads using this
            transport (protects small servers; vLLM batches what it receives).
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
    json_mode: JsonMode = "json_schema"
    top_logprobs: int = 20

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s)


class HTTPBackendError(BackendError):
    """A failed HTTP call; ``status`` is None for transport failures (timeouts, refused)."""

    def __init__(
        self, message: str, *, status: int | None, retryable: bool, fix: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, fix=fix, retryable=retryable)
        self.status = status
        self.retry_after = retry_after


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
    if status in (429,) or status >= 500:
        return "the server is overloaded or failing; lower OpenAIConfig.max_concurrency or retry later."
    return "the server rejected the request; read its message above (context length, parameters)."


class OpenAITransport:
    """HTTP to one OpenAI-compatible base URL, with retries and a concurrency cap.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        config: timeouts, retries, concurrency.
        api_key: bearer token (default :func:`api_key_from_env`; many local servers need none).
    """

    def __init__(self, base_url: str, config: OpenAIConfig | None = None, api_key: str | None = None) -> None:
        try:
            import httpx
        except ImportError as e:  # pragma: no cover - httpx is a core dependency
            raise MissingDependencyError("httpx", "openai", "the OpenAI-compatible backend") from e
        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.config = config or OpenAIConfig()
        key = api_key if api_key is not None else api_key_from_env()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
            limits=httpx.Limits(max_connections=max(1, self.config.max_concurrency) + 2),
            trust_env=False,  # never route a local model server through a proxy from the env
        )
        self._slots = threading.BoundedSemaphore(max(1, self.config.max_concurrency))
        self._rng = random.Random()

    def _post_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        httpx = self._httpx
        url = self.base_url + path
        try:
            with self._slots:
                resp = self._client.post(path, json=body)
        except httpx.TimeoutException as e:
            raise HTTPBackendError(
                f"POST {url} timed out ({type(e).__name__}).",
                status=None,
                retryable=True,
                fix="raise OpenAIConfig.timeout_s, lower max_tokens, or check the server's load.",
            ) from e
        except httpx.TransportError as e:
            raise HTTPBackendError(
                f"could not reach {url}: {e}.",
                status=None,
                retryable=True,
                fix="check that the model server is running and the URL/port are right.",
            ) from e
        if resp.status_code >= 400:
            detail = resp.text[:500].strip()
            raise HTTPBackendError(
                f"POST {url} returned HTTP {resp.status_code}: {detail}",
                status=resp.status_code,
                retryable=resp.status_code in _RETRYABLE_STATUS,
                fix=_status_fix(resp.status_code),
                retry_after=_retry_after(resp.headers.get("retry-after")),
            )
        try:
            data = resp.json()
        except ValueError as e:
            raise HTTPBackendError(
                f"POST {url} returned a non-JSON body: {resp.text[:200]!r}.",
                status=resp.status_code,
                retryable=False,
                fix="check that the URL points at an OpenAI-compatible API (usually .../v1).",
            ) from e
        if not isinstance(data, dict):
            raise HTTPBackendError(f"POST {url} returned JSON that is not an object.", status=resp.status_code, retryable=False)
        return data

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``base_url + path``; retries transient failures per the config."""
        return call_with_retries(
            lambda: self._post_once(path, body),
            self.config.retry_policy,
            what=f"POST {self.base_url}{path}",
            rng=self._rng,
        )

    def close(self) -> None:
        self._client.close()


class OpenAILLM:
    """The :class:`~branchwise.models.base.LLM` protocol over ``/chat/completions``.

    Args:
        transport: the HTTP transport (base URL, key, retries, concurrency).
        model: model name sent with each request; also this backend's ``name``.
    """

    def __init__(self, transport: OpenAITransport, model: str) -> None:
        self.transport = transport
        self.model = model
        self.name = model
        self._json_mode: JsonMode = transport.config.json_mode
        self._mode_lock = threading.Lock()

    # -- generation ---------------------------------------------------------------------
    def _body(self, messages: Sequence[Message], params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "seed": params.seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def _complete(self, body: dict[str, Any]) -> tuple[Completion, dict[str, Any]]:
        t0 = time.perf_counter()
        data = self.transport.post_json("/chat/completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise BackendError(
                f"{self.transport.base_url} answered /chat/completions without choices[0].message: {str(data)[:200]}.",
                fix="check that the server is OpenAI-compatible and the model is a chat model.",
            ) from e
        usage = data.get("usage") or {}
        c = Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - t0,
            finish_reason=choice.get("finish_reason") or "stop",
        )
        return c, choice

    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion:
        return self._complete(self._body(messages, params))[0]

    def _pool_map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(x) for x in items]
        workers = min(len(items), max(1, self.transport.config.max_concurrency))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="branchwise-openai") as pool:
            return list(pool.map(fn, items))

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]:
        """Concurrent :meth:`chat` calls (bounded by ``max_concurrency``), results in order."""
        return self._pool_map(lambda m: self.chat(m, params), list(batch))

    chat_many = chat_batch

    # -- structured output ----------------------------------------------------------------
    def _json_body(self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams, mode: JsonMode) -> dict[str, Any]:
        msgs = list(messages) if mode == "json_schema" else [schema_hint(schema), *messages]
        body = self._body(msgs, params)
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema, "strict": False},
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _complete_json(self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams) -> Completion:
        """One structured-output call in the best mode the server accepts (degrading on 4xx/501)."""
        while True:
            mode = self._json_mode
            try:
                return self._complete(self._json_body(messages, schema, params, mode))[0]
            except HTTPBackendError as e:
                if e.status not in (400, 404, 422, 501) or mode == "prompt":
                    raise
                fallback: JsonMode = "json_object" if mode == "json_schema" else "prompt"
                log.info("%s rejected response_format %s (HTTP %s); using %s", self.transport.base_url, mode, e.status, fallback)
                with self._mode_lock:
                    self._json_mode = fallback

    def chat_json(
        self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams = GenParams()
    ) -> StructuredCompletion:
        """Structured output in the best mode the server accepts; lenient parse; one retry."""
        return complete_json(
            lambda p: self._complete_json(messages, schema, p),
            params,
            name=self.name,
            attempts=2,
            next_params=None,  # the retry repeats the request unchanged
            fix="use a server with JSON-schema constrained decoding (vLLM, llama.cpp server) or a larger model.",
        )

    # -- scoring --------------------------------------------------------------------------
    def continuation_logprobs(self, messages: Sequence[Message], continuations: Sequence[str]) -> list[float]:
        """First-position log-probabilities from ``top_logprobs`` (see :mod:`.openai_logprobs`)."""
        body = self._body(messages, GenParams(max_tokens=1, temperature=0.0))
        body["logprobs"] = True
        body["top_logprobs"] = self.transport.config.top_logprobs
        _, choice = self._complete(body)
        return score_from_top_logprobs(choice, continuations, server=self.transport.base_url)

    def continuation_logprobs_batch(
        self, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
    ) -> list[list[float]]:
        return self._pool_map(lambda m: self.continuation_logprobs(m, continuations), list(batch))

    def count_tokens(self, text: str) -> int:
        """An estimate: the server's tokenizer is unknown, so cl100k_base (tiktoken, offline)."""
        from branchwise.text.tokens import get_tokenizer

        return get_tokenizer().count(text)

    def close(self) -> None:
        self.transport.close()


__all__ = ["HTTPBackendError", "OpenAIConfig", "OpenAILLM", "OpenAITransport", "api_key_from_env"]
