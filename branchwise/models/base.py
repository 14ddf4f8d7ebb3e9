"""Backend protocols for language models and embedders.

Backends are injected as objects. Anything with these methods works; the concrete backends
(llama.cpp, OpenAI-compatible HTTP, transformers, sentence-transformers) live beside this
module and are resolved from spec strings by :mod:`branchwise.models.factory`.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenParams:
    """Decoding parameters for one call.

    Attributes:
        max_tokens: upper bound on generated tokens.
        temperature: 0 means greedy (the default: reproducible, cacheable).
        stop: stop sequences.
        seed: sampling seed, used only when ``temperature > 0``.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(slots=True)
class Completion:
    """The result of one generation call.

    Attributes:
        text: generated text.
        prompt_tokens: tokens in the prompt (as counted by the backend).
        completion_tokens: tokens generated.
        latency_s: wall time of the call (0 when served from the cache).
        cached: True when served from the call cache.
        finish_reason: "stop", "length", ... as reported by the backend.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    finish_reason: str = "stop"


@dataclass(slots=True)
class StructuredCompletion:
    """A parsed structured (JSON) output plus the raw completion it came from."""

    value: Any
    completion: Completion
    repaired: bool = False


@runtime_checkable
class LLM(Protocol):
    """A chat language model.

    Every backend implements three capabilities:

    * :meth:`chat` — free-form generation;
    * :meth:`chat_json` — structured output constrained to a JSON schema (a grammar on
      llama.cpp, ``response_format`` on OpenAI-compatible servers, a parse-and-repair loop
      elsewhere);
    * :meth:`continuation_logprobs` — log-probabilities of given continuations of the
      assistant turn (e.g. ``["Yes", "No"]``) from one forward pass, no generation.

    ``name`` identifies the model (used in cache keys and manifests).
    """

    name: str

    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion: ...

    def chat_json(
        self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams = GenParams()
    ) -> StructuredCompletion: ...

    def continuation_logprobs(
        self, messages: Sequence[Message], continuations: Sequence[str]
    ) -> list[float]: ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class Embedder(Protocol):
    """A text embedder returning L2-normalised float32 vectors.

    ``name`` identifies the model (stored in the index manifest: an index opened with a
    different embedder is refused). ``dim`` is the vector size.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents; returns an array of shape ``(len(texts), dim)``."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns shape ``(dim,)``."""
        ...


@dataclass(slots=True)
class UsageMeter:
    """Counts calls and tokens through an LLM wrapper (see ``models.cache.CachedLLM``)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    history: list[Completion] = field(default_factory=list, repr=False)

    def record(self, c: Completion) -> None:
        if c.cached:
            self.cached_calls += 1
        else:
            self.calls += 1
            self.latency_s += c.latency_s
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens


def prompt_hash(messages: Sequence[Message]) -> str:
    """A 16-hex-digit hash of a rendered prompt (stable across runs and machines)."""
    h = hashlib.sha256()
    for m in messages:
        h.update(m.role.encode())
        h.update(b"\0")
        h.update(m.content.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def messages_text(messages: Sequence[Message]) -> str:
    """All message contents joined (for token counting and the trace)."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)
