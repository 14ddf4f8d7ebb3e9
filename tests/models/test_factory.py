"""Spec strings → backends: the valid forms, and clear errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwise.errors import InputError
from branchwise.models.cache import CachedLLM
from branchwise.models.factory import EMBEDDER_SPECS, LLM_SPECS, make_embedder, make_llm, parse_http_spec
from branchwise.models.hf import HFConfig
from branchwise.models.llamacpp import LlamaCppConfig
from branchwise.models.openai_http import OpenAIConfig, OpenAILLM


def test_unknown_llm_spec_lists_every_form() -> None:
    with pytest.raises(InputError) as ei:
        make_llm("gpt-4")
    msg = str(ei.value)
    assert "'gpt-4'" in msg
    for form in LLM_SPECS:
        assert form in msg


def test_unknown_embedder_spec_lists_every_form() -> None:
    with pytest.raises(InputError) as ei:
        make_embedder("bge-small")
    for form in EMBEDDER_SPECS:
        assert form in str(ei.value)


@pytest.mark.parametrize("spec", ["openai:localhost:8000/v1#m", "openai:http://localhost:8000/v1", "openai:http://h/v1#"])
def test_malformed_http_specs(spec: str) -> None:
    with pytest.raises(InputError, match="openai:http://host:port/v1#model-name"):
        make_llm(spec)


def test_parse_http_spec() -> None:
    hs = parse_http_spec("openai:https://api.example.com/v1/#org/model:tag", "openai:")
    assert (hs.base_url, hs.model) == ("https://api.example.com/v1", "org/model:tag")


def test_openai_spec_builds_without_contacting_the_server(tmp_path: Path) -> None:
    cfg = OpenAIConfig(max_concurrency=3)
    llm = make_llm("openai:http://127.0.0.1:9/v1#served-model", config=cfg)
    assert isinstance(llm, OpenAILLM)
    assert llm.name == "served-model" and llm.transport.base_url == "http://127.0.0.1:9/v1"
    assert llm.transport.config.max_concurrency == 3
    cached = make_llm("openai:http://127.0.0.1:9/v1#served-model", cache_dir=tmp_path / "cache")
    assert isinstance(cached, CachedLLM) and cached.name == "served-model"
    assert cached.cache_path == tmp_path / "cache" / "llm.sqlite" and cached.cache_path.exists()


@pytest.mark.parametrize(
    ("spec", "config", "expected"),
    [
        ("openai:http://127.0.0.1:9/v1#m", LlamaCppConfig(), "OpenAIConfig"),
        ("default", OpenAIConfig(), "LlamaCppConfig"),
        ("hf:/x", LlamaCppConfig(), "HFConfig"),
        ("llamacpp:/x.gguf", HFConfig(), "LlamaCppConfig"),
    ],
)
def test_config_type_must_match_the_backend(spec: str, config: object, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        make_llm(spec, config=config)  # type: ignore[arg-type]


def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GGUF model file not found"):
        make_llm(f"llamacpp:{tmp_path / 'nope.gguf'}")
