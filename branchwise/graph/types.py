"""Knowledge-graph records and their versioned JSONL persistence.

An :class:`Entity` is a node; what the corpus says about it is kept as :class:`Mention` s,
one per (chunk, surface name). Everything derived — the display name, the type, the aliases,
the supporting chunk ids — is computed from the mentions, so removing a chunk's mentions is
all a delete has to do (an entity left with no mention is removed: no stale entities, the
known LightRAG complaint). A :class:`Relation` is an edge with exactly one source chunk; the
same triple stated by two chunks is two edges, so deleting either keeps the other.

Format (``graph/`` in the index directory, schema ``branchwise.graph/1``)::

    entities.jsonl   {"id", "name", "type", "mentions": [{"chunk_id", "doc_id", "name",
                      "type", "description"}, ...]}
    relations.jsonl  {"id", "subject", "predicate", "object", "description", "chunk_id", "doc_id"}
    meta.json        {"schema", "counts": {"entities", "relations"}, "info": {...}}

``meta.json`` is written last and carries the counts, so a save torn between files is
detected on load. Entity embeddings live in the vector-store collection ``entities``.
Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import networkx as nx

from branchwise.errors import IndexFormatError
from branchwise.files import atomic_write_json, atomic_write_jsonl

GRAPH_SCHEMA = "branchwise.graph/1"
ENTITY_TYPES = ("person", "organization", "location", "work", "event", "date", "concept", "other")
_REBUILD = "rebuild the graph (branchwise index PATH --out DIR --rebuild-graph)."


@dataclass(frozen=True, slots=True)
class Mention:
    """What one chunk says about an entity (the unit that deletes remove)."""

    chunk_id: str
    doc_id: str
    name: str
    type: str = "other"
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"chunk_id": self.chunk_id, "doc_id": self.doc_id, "name": self.name,
                "type": self.type, "description": self.description}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Mention":
        return cls(str(d["chunk_id"]), str(d.get("doc_id", "")), str(d["name"]),
                   str(d.get("type", "other")), str(d.get("description", "")))


@dataclass(slots=True)
class Entity:
    """A graph node: an entity and every mention that supports it.

    ``name`` and ``type`` are the most frequent surface name and (non-"other") type among
    the mentions, refreshed by :meth:`refresh` whenever the mentions change.
    """

    id: str
    mentions: list[Mention] = field(default_factory=list)
    name: str = ""
    type: str = "other"

    def refresh(self) -> None:
        if not self.mentions:
            return
        names = Counter(m.name for m in self.mentions)
        self.name = max(names, key=lambda n: (names[n], -self._first(n)))
        types = Counter(m.type for m in self.mentions if m.type != "other")
        self.type = types.most_common(1)[0][0] if types else "other"

    def _first(self, name: str) -> int:
        return next(i for i, m in enumerate(self.mentions) if m.name == name)

    @property
    def aliases(self) -> list[str]:
        return sorted({m.name for m in self.mentions})

    @property
    def chunk_ids(self) -> list[str]:
        return sorted({m.chunk_id for m in self.mentions})

    @property
    def descriptions(self) -> list[str]:
        return list(dict.fromkeys(m.description for m in self.mentions if m.description))

    def profile(self, max_descriptions: int = 3) -> str:
        """The text embedded for lookup: name, type and the first few descriptions."""
        desc = "; ".join(self.descriptions[:max_descriptions])
        return f"{self.name} ({self.type})" + (f": {desc}" if desc else "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type,
                "mentions": [m.to_dict() for m in self.mentions]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Entity":
        e = cls(id=str(d["id"]), mentions=[Mention.from_dict(m) for m in d["mentions"]],
                name=str(d.get("name", "")), type=str(d.get("type", "other")))
        if not e.name:
            e.refresh()
        return e


@dataclass(frozen=True, slots=True)
class Relation:
    """A directed, described edge ``subject --predicate--> object`` from one chunk."""

    id: str
    subject: str
    predicate: str
    object: str
    chunk_id: str
    doc_id: str = ""
    description: str = ""

    @staticmethod
    def make_id(subject: str, predicate: str, obj: str, chunk_id: str) -> str:
        key = "\x1f".join((subject, predicate.casefold().strip(), obj, chunk_id))
        return "r_" + hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "subject": self.subject, "predicate": self.predicate,
                "object": self.object, "description": self.description,
                "chunk_id": self.chunk_id, "doc_id": self.doc_id}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Relation":
        return cls(id=str(d["id"]), subject=str(d["subject"]), predicate=str(d["predicate"]),
                   object=str(d["object"]), chunk_id=str(d["chunk_id"]),
                   doc_id=str(d.get("doc_id", "")), description=str(d.get("description", "")))


@dataclass(frozen=True, slots=True)
class RemovalReport:
    """What :meth:`KnowledgeGraph.remove_chunks` changed (for vector-store sync)."""

    removed_entities: tuple[str, ...]
    changed_entities: tuple[str, ...]
    removed_relations: int


class KnowledgeGraph:
    """Entities and relations over a :class:`networkx.MultiDiGraph` (edge key = relation id).

    Node attribute ``entity`` and edge attribute ``relation`` hold the records; chunk → entity
    and chunk → relation indexes make deletes and tree links O(affected).
    """

    def __init__(self, info: Mapping[str, Any] | None = None) -> None:
        self.g: nx.MultiDiGraph = nx.MultiDiGraph()
        self.info: dict[str, Any] = dict(info or {})
        self._relations: dict[str, Relation] = {}
        self._chunk_entities: dict[str, set[str]] = defaultdict(set)
        self._chunk_relations: dict[str, set[str]] = defaultdict(set)

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.g.number_of_nodes())

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self.g

    def entity(self, entity_id: str) -> Entity:
        ent: Entity = self.g.nodes[entity_id]["entity"]
        return ent

    def entities(self) -> Iterator[Entity]:
        return (d["entity"] for _, d in self.g.nodes(data=True))

    def relation(self, relation_id: str) -> Relation:
        return self._relations[relation_id]

    def relations(self) -> Iterator[Relation]:
        return iter(self._relations.values())

    @property
    def n_relations(self) -> int:
        return len(self._relations)

    def chunk_ids(self) -> set[str]:
        return {c for c, s in self._chunk_entities.items() if s} | {c for c, s in self._chunk_relations.items() if s}

    def entities_for_chunk(self, chunk_id: str) -> list[str]:
        return sorted(self._chunk_entities.get(chunk_id, ()))

    def relations_for_chunk(self, chunk_id: str) -> list[Relation]:
        return [self._relations[r] for r in sorted(self._chunk_relations.get(chunk_id, ()))]

    def incident(self, entity_id: str) -> Iterator[Relation]:
        """Every relation with ``entity_id`` as subject or object."""
        for _, _, key in self.g.out_edges(entity_id, keys=True):
            yield self._relations[key]
        for u, _, key in self.g.in_edges(entity_id, keys=True):
            if u != entity_id:
                yield self._relations[key]

    # -- edits ----------------------------------------------------------------------------
    def new_entity_id(self, normalized_name: str) -> str:
        """A readable, unused id derived from the normalised name."""
        slug = "".join(ch if ch.isalnum() else "_" for ch in normalized_name)[:48].strip("_") or "entity"
        base, i = f"e_{slug}", 2
        eid = base
        while eid in self.g:
            eid, i = f"{base}_{i}", i + 1
        return eid

    def add_mention(self, entity_id: str, mention: Mention) -> Entity:
        """Attach ``mention`` to ``entity_id``, creating the entity if needed."""
        if entity_id not in self.g:
            self.g.add_node(entity_id, entity=Entity(id=entity_id))
        ent = self.entity(entity_id)
        if mention not in ent.mentions:
            ent.mentions.append(mention)
            ent.refresh()
        self._chunk_entities[mention.chunk_id].add(entity_id)
        return ent

    def add_relation(self, rel: Relation) -> bool:
        """Add an edge between two existing entities; False if it was already there."""
        for end in (rel.subject, rel.object):
            if end not in self.g:
                raise IndexFormatError(f"relation {rel.id} names unknown entity {end!r}.",
                                       fix="add both entities (add_mention) before the relation.")
        if rel.id in self._relations:
            return False
        self._relations[rel.id] = rel
        self.g.add_edge(rel.subject, rel.object, key=rel.id, relation=rel)
        self._chunk_relations[rel.chunk_id].add(rel.id)
        return True

    def remove_chunks(self, chunk_ids: Iterable[str]) -> RemovalReport:
        """Remove everything the chunks support; entities left unsupported go too."""
        gone = set(chunk_ids)
        n_rel, touched = 0, set()
        for cid in gone:
            for rid in self._chunk_relations.pop(cid, set()):
                rel = self._relations.pop(rid)
                self.g.remove_edge(rel.subject, rel.object, key=rid)
                n_rel += 1
            touched |= self._chunk_entities.pop(cid, set())
        removed, changed = [], []
        for eid in sorted(touched):
            ent = self.entity(eid)
            ent.mentions = [m for m in ent.mentions if m.chunk_id not in gone]
            if ent.mentions:
                ent.refresh()
                changed.append(eid)
                continue
            for rel in list(self.incident(eid)):  # edges from chunks that never mentioned it
                self._drop_relation(rel)
                n_rel += 1
            self.g.remove_node(eid)
            removed.append(eid)
        return RemovalReport(tuple(removed), tuple(changed), n_rel)

    def _drop_relation(self, rel: Relation) -> None:
        self._relations.pop(rel.id, None)
        self._chunk_relations.get(rel.chunk_id, set()).discard(rel.id)
        if self.g.has_edge(rel.subject, rel.object, key=rel.id):
            self.g.remove_edge(rel.subject, rel.object, key=rel.id)

    # -- invariants -----------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`IndexFormatError` on an orphan entity, dangling edge or stale index."""
        for ent in self.entities():
            if not ent.mentions:
                raise IndexFormatError(f"entity {ent.id!r} has no supporting chunk.", fix=_REBUILD)
            for m in ent.mentions:
                if ent.id not in self._chunk_entities.get(m.chunk_id, ()):
                    raise IndexFormatError(f"chunk index misses entity {ent.id!r}.", fix=_REBUILD)
        if self.g.number_of_edges() != len(self._relations):
            raise IndexFormatError("edge count differs from the relation table.", fix=_REBUILD)
        for u, v, key in self.g.edges(keys=True):
            rel = self._relations.get(key)
            if rel is None or (rel.subject, rel.object) != (u, v):
                raise IndexFormatError(f"edge {key!r} does not match its relation record.", fix=_REBUILD)
        for cid, eids in self._chunk_entities.items():
            for eid in eids:
                if eid not in self.g or cid not in self.entity(eid).chunk_ids:
                    raise IndexFormatError(f"chunk {cid!r} points at a stale entity {eid!r}.", fix=_REBUILD)

    def stats(self) -> dict[str, Any]:
        return {"entities": len(self), "relations": self.n_relations, "chunks": len(self.chunk_ids()),
                "types": dict(Counter(e.type for e in self.entities()).most_common()),
                "isolated_entities": sum(1 for n in self.g if self.g.degree(n) == 0)}

    # -- persistence ----------------------------------------------------------------------
    def save(self, graph_dir: Path) -> None:
        """Write entities, relations, then meta (the commit marker), each atomically."""
        graph_dir = Path(graph_dir)
        atomic_write_jsonl(graph_dir / "entities.jsonl", (e.to_dict() for e in self.entities()))
        atomic_write_jsonl(graph_dir / "relations.jsonl", (r.to_dict() for r in self.relations()))
        atomic_write_json(graph_dir / "meta.json", {
            "schema": GRAPH_SCHEMA, "info": self.info,
            "counts": {"entities": len(self), "relations": self.n_relations}})

    @classmethod
    def load(cls, graph_dir: Path) -> "KnowledgeGraph":
        graph_dir = Path(graph_dir)
        meta_path = graph_dir / "meta.json"
        if not meta_path.exists():
            raise IndexFormatError(f"no graph at {graph_dir}.", fix="build one: " + _REBUILD)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise IndexFormatError(f"{meta_path} is corrupt: {e}.", fix=_REBUILD) from e
        if meta.get("schema") != GRAPH_SCHEMA:
            raise IndexFormatError(f"graph schema {meta.get('schema')!r} is not {GRAPH_SCHEMA!r}.",
                                   fix="rebuild with this version of branchwise: " + _REBUILD)
        kg = cls(info=meta.get("info", {}))
        try:
            for d in _read_jsonl(graph_dir / "entities.jsonl"):
                ent = Entity.from_dict(d)
                kg.g.add_node(ent.id, entity=ent)
                for m in ent.mentions:
                    kg._chunk_entities[m.chunk_id].add(ent.id)
            for d in _read_jsonl(graph_dir / "relations.jsonl"):
                kg.add_relation(Relation.from_dict(d))
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(f"a graph record in {graph_dir} is malformed: {e!r}.", fix=_REBUILD) from e
        counts = meta.get("counts", {})
        if (counts.get("entities"), counts.get("relations")) != (len(kg), kg.n_relations):
            raise IndexFormatError(f"graph files in {graph_dir} disagree with meta.json counts (torn save?).",
                                   fix=_REBUILD)
        kg.validate()
        return kg


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise IndexFormatError(f"missing graph file {path}.", fix=_REBUILD)
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise IndexFormatError(f"{path}:{i} is not valid JSON: {e}.", fix=_REBUILD) from e
