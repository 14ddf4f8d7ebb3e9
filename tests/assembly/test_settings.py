"""``Settings``: one typed object, the same defaults everywhere, nested replace, redacted records."""

from __future__ import annotations

import json

import pytest

import branchwise as bw
from branchwise.agents.config import AgentConfig
from branchwise.compression.base import CompressionConfig
from branchwise.errors import InputError
from branchwise.indexing.pipeline import IndexConfig
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.ui.settings import ChatSettings


def test_defaults_are_the_component_defaults() -> None:
    s = bw.Settings()
    assert s.agent == AgentConfig() and s.navigator == NavigatorConfig() and s.compression == CompressionConfig()
    assert s.index == IndexConfig() and s.scorer == "embedding" and s.llm is None
    # an index build builds no graph unless asked (LLM extraction costs a call per chunk)
    assert s.index.graph == "off"


def test_the_chat_apps_defaults_are_the_settings_defaults() -> None:
    assert ChatSettings() == ChatSettings.from_settings(bw.Settings())
    knobs = ChatSettings(scorer="yesno", beam=3, iterations=7, rounds=1, budget_tokens=200, compression="none",
                         use_graph=False, summaries="extractive")
    s = knobs.apply(bw.Settings())
    assert ChatSettings.from_settings(s) == knobs


def test_replace_merges_nested_configs_and_keeps_the_rest() -> None:
    s = bw.Settings().replace(scorer="yesno", agent={"max_rounds": 1}, compression={"mode": "none"})
    assert s.scorer == "yesno" and s.agent.max_rounds == 1 and s.agent.k == AgentConfig().k
    assert s.compression.mode == "none"
    with pytest.raises(InputError, match="unknown navigator scorer 'fast'"):
        bw.Settings(scorer="fast")
    with pytest.raises(InputError, match="unknown compressor"):
        bw.Settings().replace(compression={"mode": "zip"})


def test_from_env_then_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANCHWISE_LLM", "openai:http://h:1/v1#m")
    monkeypatch.setenv("BRANCHWISE_EMBEDDER", "st:/models/e5")
    s = bw.Settings.from_env(embedder=None, scorer="llm")
    assert s.llm == "openai:http://h:1/v1#m" and s.embedder == "st:/models/e5" and s.scorer == "llm"
    assert s.llm_spec("recorded") == s.llm
    monkeypatch.delenv("BRANCHWISE_LLM")
    assert bw.Settings.from_env().llm_spec("llamacpp:/x.gguf") == "llamacpp:/x.gguf"  # the index's own
    assert bw.Settings.from_env().llm_spec() == "default"


def test_to_dict_is_json_and_has_no_credentials() -> None:
    s = bw.Settings(llm="openai:http://alice:s3cret@h/v1#m", store="chroma+http://u:p@127.0.0.1:9")
    d = s.to_dict()
    text = json.dumps(d)
    assert "s3cret" not in text and ":p@" not in text and d["llm"] == "openai:http://***@h/v1#m"
    assert d["agent"]["max_rounds"] == AgentConfig().max_rounds and d["index"]["graph"] == "off"
