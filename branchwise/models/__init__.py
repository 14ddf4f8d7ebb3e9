"""Model backends: Protocols, the embedded defaults, HTTP and transformers backends, caches.

Use :func:`make_llm` / :func:`make_embedder` for spec strings; construct backends directly
to inject them. Heavy libraries (llama-cpp, torch, httpx) are imported only by the backend
that needs them.
"""

from branchwise.models.base import (
    LLM,
    Completion,
    Embedder,
    GenParams,
    Message,
    StructuredCompletion,
    UsageMeter,
)
from branchwise.models.batch import BatchLLM, chat_batch, continuation_logprobs_batch
from branchwise.models.cache import CachedEmbedder, CachedLLM
from branchwise.models.factory import EMBEDDER_SPECS, LLM_SPECS, make_embedder, make_llm
from branchwise.text.jsonparse import parse_json_lenient

__all__ = [
    "LLM",
    "EMBEDDER_SPECS",
    "LLM_SPECS",
    "BatchLLM",
    "CachedEmbedder",
    "CachedLLM",
    "Completion",
    "Embedder",
    "GenParams",
    "Message",
    "StructuredCompletion",
    "UsageMeter",
    "chat_batch",
    "continuation_logprobs_batch",
    "make_embedder",
    "make_llm",
    "parse_json_lenient",
]
