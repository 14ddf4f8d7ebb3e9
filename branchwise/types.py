"""Core typed records that flow between stages.

These are plain frozen/slotted dataclasses, serialisable to JSON with :func:`to_dict` /
``from_dict`` helpers. Stage-specific types live next to their stage (``trees.tree.Node``,
``trees.trace.TraversalTrace``, ``graph.types.Entity``) and are re-exported from
:mod:`branchwise`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Document:
    """One source document before chunking.

    Attributes:
        id: stable identifier (file path relative to the corpus root, or the JSONL ``id``).
        text: the full text (untrusted: it is data, never instructions).
        title: optional human-readable title.
        metadata: free-form JSON-serialisable metadata (source path, url, ...).
    """

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable span of a document; the leaves of the tree point at chunks.

    Attributes:
        id: globally unique chunk id, ``"{doc_id}#{ordinal}"``.
        doc_id: the :class:`Document` it came from.
        text: the chunk text.
        title: the document title (kept for citations and prompts).
        ordinal: position of the chunk within its document (0-based).
        n_tokens: length in tokens of the index tokenizer (tiktoken).
        metadata: document metadata plus chunk-level fields.
    """

    id: str
    doc_id: str
    text: str
    title: str = ""
    ordinal: int = 0
    n_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """A chunk id with a retrieval score, as returned by any retriever (higher is better)."""

    chunk_id: str
    score: float
    source: str = ""  # which retriever produced it: "dense", "bm25", "hybrid", "tree", "graph", ...


@dataclass(slots=True)
class Evidence:
    """One item of the agent's evidence pool.

    Attributes:
        chunk_id: the supporting chunk (citations point here).
        text: the text shown to the generator (chunk text, or a graph description).
        score: relevance score from the retriever that found it, in [0, 1] where possible.
        source: the retrieval route ("tree", "hybrid", "graph", ...).
        round: the agent round in which it entered the pool (0-based).
        query: the (sub/gap) query that retrieved it.
        facts: key facts distilled from it (short sentences).
        title: document title, for display and citation.
    """

    chunk_id: str
    text: str
    score: float = 0.0
    source: str = ""
    round: int = 0
    query: str = ""
    facts: list[str] = field(default_factory=list)
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evidence":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


@dataclass(slots=True)
class EvidencePool:
    """The deduplicated, persistent-across-rounds evidence of one question.

    Items are keyed by ``chunk_id``; adding an item already present keeps the higher score
    and merges facts, so the pool never grows by duplicates.
    """

    items: dict[str, Evidence] = field(default_factory=dict)

    def add(self, ev: Evidence) -> bool:
        """Add ``ev``; return True if it was new."""
        old = self.items.get(ev.chunk_id)
        if old is None:
            self.items[ev.chunk_id] = ev
            return True
        if ev.score > old.score:
            old.score = ev.score
        for f in ev.facts:
            if f not in old.facts:
                old.facts.append(f)
        return False

    def ranked(self) -> list[Evidence]:
        return sorted(self.items.values(), key=lambda e: (-e.score, e.round, e.chunk_id))

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.items

    def to_dict(self) -> dict[str, Any]:
        return {"items": [e.to_dict() for e in self.ranked()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvidencePool":
        pool = cls()
        for item in d.get("items", []):
            pool.add(Evidence.from_dict(item))
        return pool


@dataclass(frozen=True, slots=True)
class Citation:
    """A pointer from an answer to a supporting chunk.

    Attributes:
        chunk_id: cited chunk.
        marker: the marker used in the answer text, e.g. ``"[1]"``.
        title: document title.
        quote: a short excerpt of the chunk (for display).
    """

    chunk_id: str
    marker: str
    title: str = ""
    quote: str = ""


@dataclass(slots=True)
class Usage:
    """Token and call accounting for one query (or one build phase)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embed_calls: int = 0
    latency_s: float = 0.0

    def add(self, other: "Usage") -> None:
        self.llm_calls += other.llm_calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.embed_calls += other.embed_calls
        self.latency_s += other.latency_s


@dataclass(slots=True)
class Answer:
    """The result of asking a question.

    Attributes:
        text: the answer, with citation markers like ``[1]``; ``NOT_FOUND`` text when the
            evidence does not support an answer.
        citations: the chunks the markers point to.
        found: False when the corpus did not support an answer.
        trace: the agent trace (``agents.trace.AgentTrace``) or None.
        usage: LLM calls, tokens and latency for the whole query.
        context_tokens: tokens of evidence given to the generator (after compression).
    """

    text: str
    citations: list[Citation] = field(default_factory=list)
    found: bool = True
    trace: Any = None
    usage: Usage = field(default_factory=Usage)
    context_tokens: int = 0

    def __str__(self) -> str:
        return self.text
