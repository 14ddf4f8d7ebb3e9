"""OpenAI-compatible HTTP backend (``openai:http://host:8000/v1#model``).

One client speaks to vLLM, Ollama, the llama.cpp server, TGI's OpenAI route and OpenAI
itself. :class:`~branchwise.models.openai_transport.OpenAITransport` owns the HTTP concerns —
bounded time per request and per question, retries with backoff and jitter on transient
failures (never on 4xx), ``Retry-After``, back-pressure on the requests in flight, redaction
of credentials — and :class:`OpenAILLM` maps the :class:`~branchwise.models.base.LLM`
protocol onto ``/chat/completions``. Embeddings use the same transport
(:class:`~branchwise.models.embedders.OpenAIEmbedder`).

Servers differ in what they support, so structured output degrades gracefully:
``response_format={"type": "json_schema"}`` → ``{"type": "json_object"}`` → plain text with
the schema in the prompt, each followed by lenient parsing; each step down is reported to the
fault log. Continuation scoring uses ``logprobs``/``top_logprobs`` with ``max_tokens=1``; a
server that returns none gets a clear error rather than a silent constant. Batched calls run
``max_concurrency`` requests at a time (the transport's slots), in the caller's
:class:`~branchwise.models.retry.CallScope` (deadline, fault log).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Sequence

from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion
from branchwise.models.batch import map_concurrent
from branchwise.models.json_output import complete_json, schema_hint
from branchwise.models.openai_logprobs import score_from_top_logprobs
from branchwise.models.openai_transport import (
    HTTPBackendError,
    JsonMode,
    OpenAIConfig,
    OpenAITransport,
    api_key_from_env,
)
from branchwise.models.retry import Fault, report_fault

log = logging.getLogger(__name__)

#: HTTP statuses with which servers reject a ``response_format`` they do not support
_FORMAT_REJECTED = frozenset({400, 404, 422, 501})


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

    def _parse_choice(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(choices[0], usage)`` of a response; a response of another shape is a transient fault."""
        try:
            choice = data["choices"][0]
            message = choice["message"]
            if not isinstance(message, dict) or not isinstance(message.get("content") or "", str):
                raise TypeError("message.content is not a string")
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise HTTPBackendError(
                f"{self.transport.base_url} answered /chat/completions without choices[0].message.content: "
                f"{str(data)[:200]}.",
                status=200, retryable=True, kind="wrong_schema",
                fix="check that the server is OpenAI-compatible and the model is a chat model.",
            ) from e
        return choice, (data.get("usage") or {})

    def _complete(self, body: dict[str, Any]) -> tuple[Completion, dict[str, Any]]:
        t0 = time.perf_counter()
        choice, usage = self.transport.post_json("/chat/completions", body, parse=self._parse_choice)
        c = Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - t0,
            finish_reason=choice.get("finish_reason") or "stop",
        )
        return c, choice

    def _check_empty(self, c: Completion, what: str) -> Completion:
        if not c.text.strip():
            report_fault(Fault(f"POST {self.transport.base_url}/chat/completions", "empty_completion",
                               f"{what}: no text (finish_reason={c.finish_reason}, "
                               f"{c.completion_tokens} tokens)", 1, "returned the empty text to the caller"))
        return c

    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion:
        return self._check_empty(self._complete(self._body(messages, params))[0], "chat")

    def _workers(self) -> int:
        return max(1, self.transport.config.max_concurrency)

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]:
        """Concurrent :meth:`chat` calls (``max_concurrency`` at a time), results in order."""
        return map_concurrent(lambda m: self.chat(m, params), list(batch), self._workers())

    chat_many = chat_batch

    # -- structured output ----------------------------------------------------------------
    def _json_body(self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams,
                   mode: JsonMode) -> dict[str, Any]:
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
        """One structured-output call in the best mode the server accepts (degrading when rejected)."""
        while True:
            mode = self._json_mode
            try:
                return self._check_empty(self._complete(self._json_body(messages, schema, params, mode))[0],
                                         "chat_json")
            except HTTPBackendError as e:
                if mode == "prompt" or not (e.status in _FORMAT_REJECTED or e.kind == "rejected_param"):
                    raise
                fallback: JsonMode = "json_object" if mode == "json_schema" else "prompt"
                report_fault(Fault(f"POST {self.transport.base_url}/chat/completions", "format_fallback",
                                   f"response_format {mode} rejected (HTTP {e.status})", 1,
                                   f"using {fallback} from now on"))
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
        """Concurrent :meth:`continuation_logprobs` calls (``max_concurrency`` at a time), in order."""
        return map_concurrent(lambda m: self.continuation_logprobs(m, continuations), list(batch), self._workers())

    def count_tokens(self, text: str) -> int:
        """An estimate: the server's tokenizer is unknown, so cl100k_base (tiktoken, offline)."""
        from branchwise.text.tokens import get_tokenizer

        return get_tokenizer().count(text)

    def close(self) -> None:
        self.transport.close()


__all__ = ["HTTPBackendError", "OpenAIConfig", "OpenAILLM", "OpenAITransport", "api_key_from_env"]
