"""The one place where model spec strings become backend objects.

A spec is ``scheme:argument`` (or ``default``); the schemes, their backends and example specs
are the entries of :data:`~branchwise.models.registry.LLM_BACKENDS` and
:data:`~branchwise.models.registry.EMBEDDER_BACKENDS`. Everything else is injected as
objects; library code never parses specs itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

from branchwise.config import redact
from branchwise.errors import InputError
from branchwise.models.base import LLM, Embedder
from branchwise.models.cache import CachedEmbedder, CachedLLM
from branchwise.models.registry import EMBEDDER_BACKENDS, LLM_BACKENDS, split_spec
from branchwise.registry import Registry

if TYPE_CHECKING:
    from branchwise.models.embedders import OpenAIEmbedderConfig, SentenceTransformerConfig
    from branchwise.models.hf import HFConfig
    from branchwise.models.llamacpp import LlamaCppConfig
    from branchwise.models.openai_http import OpenAIConfig

    LLMConfig = Union[LlamaCppConfig, OpenAIConfig, HFConfig]
    EmbedderConfig = Union[SentenceTransformerConfig, OpenAIEmbedderConfig]

def _examples(registry: Registry) -> tuple[str, ...]:
    return tuple(e.example for e in registry)


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
            f"malformed spec {redact(spec)!r}.",
            fix=f"write it as {prefix}http://host:port/v1#model-name (the model name after '#').",
        )
    return HttpSpec(base_url=url.rstrip("/"), model=model)


def _check_config(config: object, expected: type, spec: str) -> None:
    if config is not None and not isinstance(config, expected):
        raise InputError(
            f"spec {redact(spec)!r} takes a {expected.__name__}, got {type(config).__name__}.",
            fix=f"pass config={expected.__name__}(...) or None for the defaults.",
        )


def _resolve(registry: Registry, spec: str, kind: str) -> tuple[Callable[..., Any], str]:
    scheme, arg = split_spec(spec)
    if scheme not in registry:
        raise InputError(f"unknown {kind} spec {redact(spec)!r}.",
                         fix="use one of: " + ", ".join(_examples(registry)) + ".")
    return registry.get(scheme).load(), arg


def make_llm(spec: str = "default", config: "LLMConfig | None" = None, cache_dir: Path | None = None) -> LLM:
    """Build the LLM named by ``spec`` (see :mod:`branchwise.models.registry`).

    Args:
        spec: ``default``, ``llamacpp:/path.gguf``, ``openai:URL#model``, ``hf:/path``, or a
            scheme registered in :data:`~branchwise.models.registry.LLM_BACKENDS`.
        config: the backend's config dataclass (``LlamaCppConfig`` for ``default`` and
            ``llamacpp:``, ``OpenAIConfig`` for ``openai:``, ``HFConfig`` for ``hf:``).
        cache_dir: when given, wrap the backend in :class:`CachedLLM` with its call cache at
            ``cache_dir/llm.sqlite`` (an index's ``cache/`` folder, typically).
    """
    factory, arg = _resolve(LLM_BACKENDS, spec, "LLM")
    llm: LLM = factory(arg, config)
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
        spec: ``default``, ``st:/path``, ``openai-embed:URL#model``, or a scheme registered
            in :data:`~branchwise.models.registry.EMBEDDER_BACKENDS`.
        config: ``SentenceTransformerConfig`` (``default``, ``st:``) or ``OpenAIEmbedderConfig``.
        cache_dir: when given, vectors persist in ``cache_dir/embeddings.sqlite``.
        memory_cache: keep an in-memory LRU even without ``cache_dir`` (set False to get the
            bare backend, e.g. for benchmarking it).
    """
    factory, arg = _resolve(EMBEDDER_BACKENDS, spec, "embedder")
    emb: Embedder = factory(arg, config)
    if cache_dir is not None:
        return CachedEmbedder(emb, Path(cache_dir) / EMBED_CACHE_FILE)
    return CachedEmbedder(emb) if memory_cache else emb


# -- the registered backends (LLM_BACKENDS / EMBEDDER_BACKENDS name these) ------------------
def embedded_llm(arg: str, config: "LlamaCppConfig | None") -> LLM:
    from branchwise.models.embedded import EMBEDDED_NAME, ensure_embedded_model
    from branchwise.models.llamacpp import LlamaCppConfig, LlamaCppLLM

    _check_config(config, LlamaCppConfig, "default")
    return LlamaCppLLM(ensure_embedded_model(), config, name=EMBEDDED_NAME)  # type: ignore[arg-type]


def llamacpp_llm(arg: str, config: "LlamaCppConfig | None") -> LLM:
    from branchwise.models.llamacpp import LlamaCppConfig, LlamaCppLLM

    _check_config(config, LlamaCppConfig, "llamacpp:")
    path = Path(arg).expanduser()
    if not path.is_file():
        raise InputError(f"GGUF model file not found: {path}.", fix="pass llamacpp:/absolute/path/model.gguf.")
    return LlamaCppLLM(path, config)  # type: ignore[arg-type]


def openai_llm(arg: str, config: "OpenAIConfig | None") -> LLM:
    from branchwise.models.openai_http import OpenAIConfig, OpenAILLM, OpenAITransport

    _check_config(config, OpenAIConfig, "openai:")
    hs = parse_http_spec("openai:" + arg, "openai:")
    return OpenAILLM(OpenAITransport(hs.base_url, config=config), hs.model)  # type: ignore[arg-type]


def hf_llm(arg: str, config: "HFConfig | None") -> LLM:
    from branchwise.models.hf import HFConfig, HFLLM

    _check_config(config, HFConfig, "hf:")
    return HFLLM(arg, config)  # type: ignore[arg-type]


def default_st_embedder(arg: str, config: "SentenceTransformerConfig | None") -> Embedder:
    from branchwise.models.embedders import SentenceTransformerConfig, default_embedder

    _check_config(config, SentenceTransformerConfig, "default")
    return default_embedder(config)  # type: ignore[arg-type]


def st_embedder(arg: str, config: "SentenceTransformerConfig | None") -> Embedder:
    from branchwise.models.embedders import SentenceTransformerConfig, SentenceTransformerEmbedder

    _check_config(config, SentenceTransformerConfig, "st:")
    return SentenceTransformerEmbedder(arg, config=config)  # type: ignore[arg-type]


def openai_embedder(arg: str, config: "OpenAIEmbedderConfig | None") -> Embedder:
    from branchwise.models.embedders import OpenAIEmbedder, OpenAIEmbedderConfig
    from branchwise.models.openai_http import OpenAITransport

    _check_config(config, OpenAIEmbedderConfig, "openai-embed:")
    hs = parse_http_spec("openai-embed:" + arg, "openai-embed:")
    return OpenAIEmbedder(OpenAITransport(hs.base_url), hs.model, config)  # type: ignore[arg-type]


#: example specs, for help texts (derived from the registries)
LLM_SPECS = _examples(LLM_BACKENDS)
EMBEDDER_SPECS = _examples(EMBEDDER_BACKENDS)
