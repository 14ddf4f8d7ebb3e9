"""The registries: names spelled once, factories loaded on use, clear errors."""

from __future__ import annotations

import pytest

from branchwise.errors import InputError, MissingDependencyError
from branchwise.registry import Registry


def test_entries_load_lazily_and_in_order() -> None:
    reg: Registry = Registry("widget", "--widget")
    reg.register("b", "json:dumps", "serialise")
    reg.register("a", lambda: 1, "one", needs=("llm",))
    assert reg.names() == ("b", "a") and "a" in reg and len(reg) == 2
    assert reg.get("b").load() is __import__("json").dumps  # "module:attr" resolved on use
    assert reg.create("a") == 1 and reg.get("a").needs == ("llm",)
    assert reg.help() == "b: serialise; a: one"


def test_unknown_and_duplicate_names_say_what_to_do() -> None:
    reg: Registry = Registry("widget", "--widget")
    reg.register("x", "json:dumps")
    with pytest.raises(InputError, match=r"unknown widget 'y' \(--widget\).*use one of: x"):
        reg.get("y")
    with pytest.raises(InputError, match="already registered"):
        reg.register("x", "json:loads")
    reg.register("x", "json:loads", replace=True)
    assert reg.get("x").load() is __import__("json").loads
    reg.unregister("x")
    assert reg.names() == ()
    with pytest.raises(InputError, match="empty or has spaces"):
        reg.register("two words", "json:dumps")


def test_a_missing_optional_dependency_names_the_extra() -> None:
    reg: Registry = Registry("backend")
    reg.register("fancy", "json:dumps", requires=("no_such_package_xyz", "fancy-extra"))
    with pytest.raises(MissingDependencyError) as e:
        reg.create("fancy")
    assert e.value.extra == "fancy-extra" and "pip install 'branchwise[fancy-extra]'" in str(e.value)


def test_the_builtin_registries_are_the_choices_everywhere() -> None:
    from branchwise.agents.config import AgentConfig, retrieval_routes
    from branchwise.compression.registry import COMPRESSORS
    from branchwise.evals.systems import available_systems
    from branchwise.navigation.registry import SCORERS
    from branchwise.retrieval.registry import RETRIEVERS
    from branchwise.ui.settings import ChatSettings

    assert SCORERS.names() == ("embedding", "yesno", "llm", "reranker")
    assert COMPRESSORS.names() == ("none", "extractive", "abstractive", "color")
    assert set(RETRIEVERS.names()) <= set(retrieval_routes())
    systems = available_systems()
    assert {f"navigator:{n}" for n in SCORERS.names()} <= set(systems)  # eval names derive from the registry
    with pytest.raises(InputError, match="retrieval"):
        AgentConfig(retrieval="nowhere")
    with pytest.raises(InputError, match="scorer"):
        ChatSettings(scorer="nope")
