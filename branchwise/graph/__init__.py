"""The GRAG-style graph index: entities and relations extracted per chunk, linked to the tree.

* :mod:`~branchwise.graph.types` — ``Entity``/``Mention``/``Relation``, ``KnowledgeGraph``
  (networkx MultiDiGraph) and its versioned JSONL persistence (``branchwise.graph/1``).
* :mod:`~branchwise.graph.spacy_extract` — classical-NLP extraction with spaCy (NER, noun
  chunks, dependency and co-occurrence relations): the default extractor, no LLM calls.
* :mod:`~branchwise.graph.extract` — LLM extraction under a JSON schema, with repair, a
  stricter retry and failure records; the dry-run cost estimate.
* :mod:`~branchwise.graph.registry` — ``EXTRACTORS`` by name (``spacy``, ``llm``).
* :mod:`~branchwise.graph.resolve` — entity resolution (normalised names + embeddings).
* :mod:`~branchwise.graph.build` — resumable build, incremental add, deletes without orphans.
* :mod:`~branchwise.graph.retrieve` — seeds, k-hop ego-graphs, soft pruning, hierarchical
  description (Hu et al., 2024, arXiv 2405.16506).
* :mod:`~branchwise.graph.link` — tree leaf ↔ entity links and graph jumps between leaves.
"""

from branchwise.graph.build import (Extractor, GraphBuildConfig, GraphBuilder, GraphBuildReport, build_graph,
                                    load_failures)
from branchwise.graph.extract import (ChunkExtraction, ExtractionConfig, ExtractionEstimate, ExtractionFailure,
                                      GraphExtractor, estimate_extraction_cost)
from branchwise.graph.link import LeafJump, TreeGraphLink
from branchwise.graph.registry import EXTRACTORS, make_extractor
from branchwise.graph.resolve import EntityResolver, ResolutionConfig, normalize_name
from branchwise.graph.retrieve import GraphRetrievalConfig, GraphRetriever, GraphSearchResult, describe_subgraph
from branchwise.graph.spacy_extract import SpacyExtractionConfig, SpacyGraphExtractor
from branchwise.graph.types import GRAPH_SCHEMA, Entity, KnowledgeGraph, Mention, Relation

__all__ = [
    "EXTRACTORS", "Extractor", "GRAPH_SCHEMA", "ChunkExtraction", "Entity", "EntityResolver", "ExtractionConfig", "ExtractionEstimate",
    "ExtractionFailure", "GraphBuildConfig", "GraphBuildReport", "GraphBuilder", "GraphExtractor",
    "GraphRetrievalConfig", "GraphRetriever", "GraphSearchResult", "KnowledgeGraph", "LeafJump", "Mention",
    "Relation", "ResolutionConfig", "SpacyExtractionConfig", "SpacyGraphExtractor", "TreeGraphLink", "build_graph", "describe_subgraph",
    "estimate_extraction_cost", "load_failures", "make_extractor", "normalize_name",
]
