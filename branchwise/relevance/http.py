"""Reranking endpoints over HTTP: what vLLM, Infinity, Jina/Cohere-style servers and TEI serve.

Two wire formats, one class:

* ``rerank:http://host:port/v1#model`` — ``POST {base}/rerank`` with
  ``{"model", "query", "documents", "top_n"}``, answered with
  ``{"results": [{"index", "relevance_score"}]}`` (vLLM's ``/v1/rerank``, Infinity, Jina, Cohere);
* ``tei:http://host:port`` — Hugging Face Text Embeddings Inference: ``POST {base}/rerank`` with
  ``{"query", "texts"}``, answered with ``[{"index", "score"}]``.

Scores outside [0, 1] (raw logits) go through a sigmoid. Transient failures (timeouts,
connection errors, 408/429/5xx) are retried with backoff (``Retry-After`` honoured); an API key
is read from ``BRANCHWISE_RERANKER_API_KEY`` and never logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import httpx

from branchwise.config import redact
from branchwise.errors import BackendError, InputError
from branchwise.models.retry import RetryPolicy, call_with_retries
from branchwise.relevance.base import sigmoid

WireFormat = Literal["rerank", "tei"]


@dataclass(frozen=True, slots=True)
class HTTPRerankerConfig:
    """Settings of :class:`HTTPReranker`.

    Attributes:
        timeout_s: read timeout per request.
        connect_timeout_s: connect timeout.
        max_retries: retries of a transient failure after the first attempt.
        batch_size: passages per request (large lists are split).
    """

    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_retries: int = 3
    batch_size: int = 64


class HTTPReranker:
    """A remote reranker (see the module docstring for the two wire formats)."""

    def __init__(self, base_url: str, model: str = "", wire: WireFormat = "rerank",
                 config: HTTPRerankerConfig = HTTPRerankerConfig()) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"reranker URL {redact(base_url)!r} is not http(s).",
                             fix="write rerank:http://host:port/v1#model or tei:http://host:port.")
        if wire == "rerank" and not model:
            raise InputError("a rerank: spec needs a model name after '#'.", fix="e.g. rerank:http://host:8000/v1#bge-reranker-base")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.wire = wire
        self.config = config
        self.name = redact(f"{wire}:{self.base_url}" + (f"#{model}" if model else ""))
        key = os.environ.get("BRANCHWISE_RERANKER_API_KEY")
        self._client = httpx.Client(
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        out: list[float] = []
        step = self.config.batch_size
        for start in range(0, len(passages), step):
            out.extend(self._score(query, list(passages[start : start + step])))
        return out

    def _score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        if self.wire == "rerank":
            body: dict[str, Any] = {"model": self.model, "query": query, "documents": passages, "top_n": len(passages)}
        else:
            body = {"query": query, "texts": passages}
        data = call_with_retries(lambda: self._post(body), RetryPolicy(max_retries=self.config.max_retries),
                                 what=f"POST {self.name}/rerank")
        items = data.get("results") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BackendError(f"{self.name} answered /rerank without a result list.",
                               fix="check that the server serves a reranking model (wire format rerank: or tei:).")
        scores: list[float | None] = [None] * len(passages)
        for item in items:
            idx = item.get("index") if isinstance(item, dict) else None
            val = item.get("relevance_score", item.get("score")) if isinstance(item, dict) else None
            if isinstance(idx, int) and 0 <= idx < len(passages) and isinstance(val, (int, float)):
                scores[idx] = float(val)
        if any(s is None for s in scores):
            raise BackendError(f"{self.name} did not score every passage.", fix="check the server's reranking model.")
        vals = [float(s) for s in scores]  # type: ignore[arg-type]
        return vals if all(0.0 <= v <= 1.0 for v in vals) else [sigmoid(v) for v in vals]

    def _post(self, body: dict[str, Any]) -> Any:
        url = f"{self.base_url}/rerank"
        try:
            r = self._client.post(url, json=body)
        except (httpx.TimeoutException, httpx.TransportError) as e:
            raise BackendError(f"reranker {self.name} is unreachable or slow ({type(e).__name__}).",
                               fix="check that the server is running, or raise HTTPRerankerConfig.timeout_s.",
                               retryable=True) from e
        if r.status_code in (408, 429) or r.status_code >= 500:
            err = BackendError(f"reranker {self.name} answered HTTP {r.status_code}.",
                               fix="the server is overloaded or failing; retry later.", retryable=True)
            err.retry_after = _retry_after(r)  # type: ignore[attr-defined]
            raise err
        if r.status_code >= 400:
            raise BackendError(f"reranker {self.name} refused the request (HTTP {r.status_code}): {r.text[:200]}",
                               fix="check the model name and the API key (BRANCHWISE_RERANKER_API_KEY).")
        try:
            return r.json()
        except ValueError as e:
            raise BackendError(f"reranker {self.name} answered with invalid JSON.", fix="check the server.") from e

    def close(self) -> None:
        self._client.close()


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return float(r.headers["retry-after"])
    except (KeyError, ValueError):
        return None
