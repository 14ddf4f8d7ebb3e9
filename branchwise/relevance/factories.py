"""The registered rerankers (:data:`branchwise.relevance.registry.RERANKERS`) and :func:`make_reranker`.

Each factory takes the spec's argument (after ``scheme:``) and what it ``needs``.
"""

from __future__ import annotations

from typing import Any

from branchwise.errors import InputError
from branchwise.models.base import LLM, Embedder
from branchwise.relevance.base import Reranker


def make_reranker(spec: str, *, llm: LLM | None = None, embedder: Embedder | None = None) -> Reranker | None:
    """The reranker named by ``spec`` (None for ``none``); missing needs are a clear error."""
    from branchwise.relevance.registry import RERANKERS

    scheme, _, arg = (spec or "none").strip().partition(":")
    entry = RERANKERS.get(scheme)
    for need, value in (("llm", llm), ("embedder", embedder)):
        if need in entry.needs and value is None:
            raise InputError(f"reranker {spec!r} needs an {need}.", fix=f"pass {need}=..., or choose another reranker.")
    return entry.load()(arg, llm=llm, embedder=embedder)  # type: ignore[no-any-return]


def no_reranker(arg: str, **_: Any) -> None:
    return None


def _precision(option: str, spec: str) -> Any:
    """The :class:`CrossEncoderConfig` of a spec's precision option (``""`` or ``"int8"``)."""
    from branchwise.relevance.cross_encoder import CrossEncoderConfig

    if option not in ("", "int8"):
        raise InputError(f"unknown option {option!r} in reranker spec {spec!r}.",
                         fix="the one option is int8 (int8-quantised on CPU): default:int8, cross-encoder:PATH#int8.")
    return CrossEncoderConfig(quantize=option == "int8")


def default_reranker(arg: str, *, embedder: Embedder | None = None, **_: Any) -> Reranker:
    from branchwise.relevance.cross_encoder import default_reranker as bundled

    return bundled(_precision(arg.strip(), f"default:{arg}"), embedder=embedder)


def cross_encoder_reranker(arg: str, *, embedder: Embedder | None = None, **_: Any) -> Reranker:
    from branchwise.relevance.cross_encoder import CrossEncoderReranker

    model, _, option = arg.partition("#")
    if not model:
        raise InputError("cross-encoder: needs a model.", fix="write cross-encoder:/path/to/folder or cross-encoder:org/name.")
    return CrossEncoderReranker(model, _precision(option.strip(), f"cross-encoder:{arg}"), embedder=embedder)


def yesno_reranker(arg: str, *, llm: LLM, **_: Any) -> Reranker:
    from branchwise.relevance.llm import YesNoReranker

    return YesNoReranker(llm)


def listwise_reranker(arg: str, *, llm: LLM, **_: Any) -> Reranker:
    from branchwise.relevance.llm import ListwiseReranker

    return ListwiseReranker(llm)


def rerank_endpoint(arg: str, **_: Any) -> Reranker:
    from branchwise.relevance.http import HTTPReranker

    url, _, model = arg.partition("#")
    return HTTPReranker(url, model, wire="rerank")


def tei_endpoint(arg: str, **_: Any) -> Reranker:
    from branchwise.relevance.http import HTTPReranker

    return HTTPReranker(arg.partition("#")[0], wire="tei")


def cosine_reranker(arg: str, *, embedder: Embedder, **_: Any) -> Reranker:
    from branchwise.relevance.embedding import CosineReranker

    return CosineReranker(embedder)
