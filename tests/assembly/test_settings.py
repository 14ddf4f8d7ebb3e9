"""``Settings``: one typed object, the same defaults everywhere, nested replace, redacted records."""

from __future__ import annotations

import dataclasses
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
    # an index build makes the graph with the spaCy extractor when it is installed (no LLM
    # calls: the quickstart never waits on LLM graph extraction); the LLM extractor only when asked
    assert s.index.graph == "auto" and s.index.graph_extractor == "spacy"
    assert s.index.wants_graph(None)  # spaCy is in the default install: a graph without any LLM
    assert not s.index.graph_needs_llm()
    extractive = dataclasses.replace(s.index.tree, summary=dataclasses.replace(s.index.tree.summary, mode="extractive"))
    assert not dataclasses.replace(s.index, tree=extractive).needs_llm()  # the graph adds no LLM need
    llm_graph = dataclasses.replace(s.index, graph_extractor="llm")
    assert not llm_graph.wants_graph(None) and llm_graph.wants_graph(object())  # auto: when an LLM is at hand
    assert dataclasses.replace(llm_graph, graph="on").needs_llm()
    assert not dataclasses.replace(s.index, graph="off").wants_graph(object())


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
    assert d["agent"]["max_rounds"] == AgentConfig().max_rounds and d["index"]["graph"] == "auto"
