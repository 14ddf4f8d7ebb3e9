"""The one place where model spec strings become backend objects.

LLM specs (``--llm`` / ``BRANCHWISE_LLM``):

==================================  ===========================================================
``default``                         embedded Qwen2.5-Coder-1.5B-Instruct GGUF (llama.cpp)
``llamacpp:/path/model.gguf``       any local GGUF through llama-cpp-python
``openai:http://host:8000/v1#name`` an OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenAI)
``hf:/path/or/id``                  a local transformers causal LM (GPU when available)
==================================  ===========================================================

Embedder specs (``--embedder`` / ``BRANCHWISE_EMBEDDER``):

========================================  =====================================================
``default``                               bundled all-MiniLM-L6-v2 (sentence-transformers, CPU)
``st:/path/to/model-dir``                 a local sentence-transformers folder
``openai-embed:http://host/v1#name``      an OpenAI-compatible ``/embeddings`` endpoint
========================================  =====================================================

Everything else is injected as objects; library code never parses specs itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from branchwise.errors import InputError
from branchwise.models.base import LLM, Embedder
from branchwise.models.cache import CachedEmbedder, CachedLLM

if TYPE_CHECKING:
    from branchwise.models.embedders import OpenAIEmbedderConfig, SentenceTransformerConfig
    from branchwise.models.hf import HFConfig
    from branchwise.models.llamacpp import LlamaCppConfig
    from branchwise.models.openai_http import OpenAIConfig

    LLMConfig = Union[LlamaCppConfig, OpenAIConfig, HFConfig]
    EmbedderConfig = Union[SentenceTransformerConfig, OpenAIEmbedderConfig]

LLM_SPECS = (
    "default",
    "llamacpp:/path/model.gguf",
    "openai:http://host:8000/v1#model-name",
    "hf:/path/or/hub-id",
)
EMBEDDER_SPECS = ("default", "st:/path/to/sentence-transformers-dir", "openai-embed:http://host:8000/v1#model-name")

LLM_CACHE_FILE = "llm.sqlite"
EMBED_CACHE_FILE = "embeddings.sqlite"


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """A parsed ``openai:`` / ``openai-embed:`` spec: base URL and model name."""

    base_url: str
    model: str


def parse_http_spec(spec: str, prefix: str) -> HttpSpec:
    """Split ``prefix:http://host:port/v1#model`` into its URL and model name."""
    rest = spec[len(prefix) :]
    url, _, model = rest.partition("#")
    if not url.startswith(("http://", "https://")) or not model:
        raise InputError(
            f"malformed spec {spec!r}.",
            fix=f"write it as {prefix}http://host:port/v1#model-name (the model name after '#').",
        )
    return HttpSpec(base_url=url.rstrip("/"), model=model)


def _check_config(config: object, expected: type, spec: str) -> None:
    if config is not None and not isinstance(config, expected):
        raise InputError(
            f"spec {spec!r} takes a {expected.__name__}, got {type(config).__name__}.",
            fix=f"pass config={expected.__name__}(...) or None for the defaults.",
        )


def _unknown(kind: str, spec: str, valid: tuple[str, ...]) -> InputError:
    return InputError(f"unknown {kind} spec {spec!r}.", fix="use one of: " + ", ".join(valid) + ".")


def make_llm(spec: str = "default", config: "LLMConfig | None" = None, cache_dir: Path | None = None) -> LLM:
    """Build the LLM named by ``spec``.

    Args:
        spec: see the module table.
        config: the backend's config dataclass (``LlamaCppConfig`` for ``default`` and
            ``llamacpp:``, ``OpenAIConfig`` for ``openai:``, ``HFConfig`` for ``hf:``).
        cache_dir: when given, wrap the backend in :class:`CachedLLM` with its call cache at
            ``cache_dir/llm.sqlite`` (an index's ``cache/`` folder, typically).
    """
    spec = (spec or "default").strip()
    llm: LLM
    if spec == "default" or spec.startswith("llamacpp:"):
        from branchwise.models.llamacpp import LlamaCppConfig, LlamaCppLLM

        _check_config(config, LlamaCppConfig, spec)
        if spec == "default":
            from branchwise.models.embedded import EMBEDDED_NAME, ensure_embedded_model

            llm = LlamaCppLLM(ensure_embedded_model(), config, name=EMBEDDED_NAME)  # type: ignore[arg-type]
        else:
            path = Path(spec[len("llamacpp:") :]).expanduser()
            if not path.is_file():
                raise InputError(f"GGUF model file not found: {path}.", fix="pass llamacpp:/absolute/path/model.gguf.")
            llm = LlamaCppLLM(path, config)  # type: ignore[arg-type]
    elif spec.startswith("openai:"):
        from branchwise.models.openai_http import OpenAIConfig, OpenAILLM, OpenAITransport

        _check_config(config, OpenAIConfig, spec)
        hs = parse_http_spec(spec, "openai:")
        llm = OpenAILLM(OpenAITransport(hs.base_url, config=config), hs.model)  # type: ignore[arg-type]
    elif spec.startswith("hf:"):
        from branchwise.models.hf import HFConfig, HFLLM

        _check_config(config, HFConfig, spec)
        llm = HFLLM(spec[len("hf:") :], config)  # type: ignore[arg-type]
    else:
        raise _unknown("LLM", spec, LLM_SPECS)
    if cache_dir is not None:
        return CachedLLM(llm, Path(cache_dir) / LLM_CACHE_FILE)
    return llm


def make_embedder(
    spec: str = "default",
    config: "EmbedderConfig | None" = None,
    cache_dir: Path | None = None,
    memory_cache: bool = True,
) -> Embedder:
    """Build the embedder named by ``spec``, wrapped in a content-hash cache.

    Args:
        spec: see the module table.
        config: ``SentenceTransformerConfig`` (``default``, ``st:``) or ``OpenAIEmbedderConfig``.
        cache_dir: when given, vectors persist in ``cache_dir/embeddings.sqlite``.
        memory_cache: keep an in-memory LRU even without ``cache_dir`` (set False to get the
            bare backend, e.g. for benchmarking it).
    """
    spec = (spec or "default").strip()
    emb: Embedder
    if spec == "default" or spec.startswith("st:"):
        from branchwise.models.embedders import SentenceTransformerConfig, SentenceTransformerEmbedder, default_embedder

        _check_config(config, SentenceTransformerConfig, spec)
        if spec == "default":
            emb = default_embedder(config)  # type: ignore[arg-type]
        else:
            emb = SentenceTransformerEmbedder(spec[len("st:") :], config=config)  # type: ignore[arg-type]
    elif spec.startswith("openai-embed:"):
        from branchwise.models.embedders import OpenAIEmbedder, OpenAIEmbedderConfig
        from branchwise.models.openai_http import OpenAITransport

        _check_config(config, OpenAIEmbedderConfig, spec)
        hs = parse_http_spec(spec, "openai-embed:")
        emb = OpenAIEmbedder(OpenAITransport(hs.base_url), hs.model, config)  # type: ignore[arg-type]
    else:
        raise _unknown("embedder", spec, EMBEDDER_SPECS)
    if cache_dir is not None:
        return CachedEmbedder(emb, Path(cache_dir) / EMBED_CACHE_FILE)
    return CachedEmbedder(emb) if memory_cache else emb

