"""Build and maintain the graph: extract per chunk (cached, resumable), resolve, persist.

``graph/`` holds, besides the graph files of :mod:`branchwise.graph.types`:

* ``extractions.jsonl`` — the per-chunk extraction cache: an append-only journal, one line
  per successful extraction ``{"fingerprint", "extraction"}``, flushed and fsynced as each
  chunk finishes, so an interrupted build resumes where it stopped (a torn last line is
  ignored). Entries are keyed by chunk id + text hash + extractor fingerprint (model,
  prompt version, caps), so edited chunks or a new model re-extract. Deletes compact it
  (atomic rewrite).
* ``failures.jsonl`` — chunks whose extraction failed (error + raw output), rewritten
  atomically at the end of every build/add; failed chunks are not cached, so the next
  build, or :meth:`GraphBuilder.retry_failed`, tries them again.

Assembly is deterministic: extractions are merged in chunk order through the
:class:`~branchwise.graph.resolve.EntityResolver`. Entity profile embeddings are kept in the
vector-store collection ``entities`` (ids = entity ids) for seed lookup.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.graph.extract import (ChunkExtraction, ExtractionConfig, ExtractionFailure, GraphExtractor,
                                      text_hash)
from branchwise.graph.resolve import EntityResolver, ResolutionConfig, normalize_name
from branchwise.graph.spacy_extract import SpacyExtractionConfig
from branchwise.graph.types import KnowledgeGraph, Mention, Relation, RemovalReport
from branchwise.models.base import LLM, Embedder
from branchwise.files import atomic_write_jsonl
from branchwise.retrieval.store import VectorStore
from branchwise.types import Chunk

log = logging.getLogger(__name__)

CACHE_FILE = "extractions.jsonl"
FAILURES_FILE = "failures.jsonl"
ENTITY_COLLECTION = "entities"


@runtime_checkable
class Extractor(Protocol):
    """What the graph builder needs from an extractor (the LLM's :class:`GraphExtractor`,
    spaCy's :class:`~branchwise.graph.spacy_extract.SpacyGraphExtractor`, or your own).

    ``fingerprint`` names everything the results depend on (model, rules or prompt version,
    caps): it keys the per-chunk extraction cache, so a different extractor re-extracts.
    ``extract_many`` yields one ``(chunk, ChunkExtraction | ExtractionFailure)`` per chunk,
    in any order; it never raises for a bad chunk (it yields a failure record).
    """

    @property
    def fingerprint(self) -> str: ...

    def extract_many(self, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, ChunkExtraction | ExtractionFailure]]: ...


@dataclass(frozen=True, slots=True)
class GraphBuildConfig:
    """Graph-build settings: each extractor's config, resolution, vector collection, progress."""

    extraction: ExtractionConfig = ExtractionConfig()
    spacy: SpacyExtractionConfig = SpacyExtractionConfig()
    resolution: ResolutionConfig = ResolutionConfig()
    collection: str = ENTITY_COLLECTION
    show_progress: bool = True


@dataclass(slots=True)
class GraphBuildReport:
    """What a build or add did and what it cost (LLM calls count every attempt)."""

    chunks: int = 0
    extracted: int = 0
    cached: int = 0
    failed_chunk_ids: list[str] = field(default_factory=list)
    entities: int = 0
    relations: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extract_seconds: float = 0.0
    repaired: int = 0
    truncated: int = 0
    dropped_items: int = 0
    merges: dict[str, int] = field(default_factory=lambda: {"exact": 0, "embedding": 0, "new": 0})

    @property
    def failed(self) -> int:
        return len(self.failed_chunk_ids)

    @property
    def seconds_per_chunk(self) -> float:
        return self.extract_seconds / self.extracted if self.extracted else 0.0

    def summary(self) -> str:
        return (f"graph: {self.chunks} chunks ({self.extracted} extracted, {self.cached} cached, "
                f"{self.failed} failed), "
                f"{self.entities} entities, {self.relations} relations; {self.llm_calls} LLM calls, "
                f"{self.prompt_tokens}+{self.completion_tokens} tokens, {self.seconds_per_chunk:.1f} s/chunk")


class ExtractionCache:
    """The per-chunk extraction journal (see the module docstring)."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = Path(path), fingerprint
        self._items: dict[str, ChunkExtraction] = {}
        if self.path.exists():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        if rec.get("fingerprint") == fingerprint:
                            ex = ChunkExtraction.from_dict(rec["extraction"])
                            self._items[ex.chunk_id] = ex
                    except (json.JSONDecodeError, KeyError, TypeError):
                        log.warning("skipping a torn/corrupt line in %s", self.path)

    def get(self, chunk: Chunk) -> ChunkExtraction | None:
        ex = self._items.get(chunk.id)
        return ex if ex is not None and ex.text_hash == text_hash(chunk) else None

    def put(self, ex: ChunkExtraction) -> None:
        self._items[ex.chunk_id] = ex
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            record = {"fingerprint": self.fingerprint, "extraction": ex.to_dict()}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def chunk_ids(self) -> set[str]:
        return set(self._items)

    def extractions(self) -> list[ChunkExtraction]:
        """Every cached extraction (e.g. to report what the build cost)."""
        return list(self._items.values())

    def compact(self, keep: Iterable[str]) -> None:
        """Rewrite atomically with only the given chunk ids (drops other fingerprints too)."""
        keep_set = set(keep)
        self._items = {k: v for k, v in self._items.items() if k in keep_set}
        atomic_write_jsonl(self.path, ({"fingerprint": self.fingerprint, "extraction": ex.to_dict()}
                                       for ex in self._items.values()))


def load_failures(graph_dir: Path) -> list[ExtractionFailure]:
    path = Path(graph_dir) / FAILURES_FILE
    if not path.exists():
        return []
    return [ExtractionFailure.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def merge_extraction(graph: KnowledgeGraph, ex: ChunkExtraction, resolver: EntityResolver,
                     merges: dict[str, int] | None = None) -> set[str]:
    """Add one chunk's extraction to ``graph``; return the ids of entities it touched."""
    resolver.prepare([e.name for e in ex.entities])
    ids: dict[str, str] = {}
    for ent in ex.entities:
        res = resolver.resolve(ent.name, ent.type)
        eid = res.entity_id or graph.new_entity_id(normalize_name(ent.name))
        graph.add_mention(eid, Mention(ex.chunk_id, ex.doc_id, ent.name, ent.type, ent.description))
        resolver.register(eid, ent.name, graph.entity(eid).type)
        ids[normalize_name(ent.name)] = eid
        if merges is not None:
            merges[res.how] = merges.get(res.how, 0) + 1
    for rel in ex.relations:
        s, o = ids.get(normalize_name(rel.subject)), ids.get(normalize_name(rel.object))
        if s is None or o is None or s == o:
            continue  # parse_extraction guarantees endpoints; resolution may collapse them
        graph.add_relation(Relation(Relation.make_id(s, rel.predicate, o, ex.chunk_id), s, rel.predicate, o,
                                    ex.chunk_id, ex.doc_id, rel.description))
    return set(ids.values())


def sync_entity_vectors(graph: KnowledgeGraph, embedder: Embedder, store: VectorStore | None, changed: Iterable[str],
                        removed: Iterable[str] = (), collection: str = ENTITY_COLLECTION) -> None:
    """Upsert profile embeddings of ``changed`` entities and delete ``removed`` ones."""
    if store is None:
        return
    gone = sorted(set(removed))
    if gone:
        store.delete(collection, gone)
    ids = sorted(e for e in set(changed) if e in graph)
    if ids:
        ents = [graph.entity(e) for e in ids]
        profiles = [e.profile() for e in ents]
        store.upsert(collection, ids, embedder.embed(profiles), documents=profiles,
                     metadatas=[{"name": e.name, "type": e.type} for e in ents])


class GraphBuilder:
    """Builds a graph over chunks and keeps it in step with the index (add / delete).

    Args:
        extractor: any :class:`Extractor` (e.g. ``make_extractor("spacy")``), or an LLM,
            which is wrapped in the LLM :class:`GraphExtractor` with ``config.extraction``;
            None for a builder that only deletes.
        embedder: name embeddings for resolution and profile embeddings for lookup.
        graph_dir: ``<index>/graph``.
        store: the index's vector store (collection ``entities``), or None.
    """

    def __init__(self, extractor: "Extractor | LLM | None", embedder: Embedder, graph_dir: Path, *,
                 store: VectorStore | None = None, config: GraphBuildConfig = GraphBuildConfig()) -> None:
        self.embedder, self.store, self.config = embedder, store, config
        if extractor is None or isinstance(extractor, Extractor):
            self.extractor: Extractor | None = extractor
        else:
            self.extractor = GraphExtractor(extractor, config.extraction)
        self.llm = getattr(self.extractor, "llm", None)
        self.graph_dir = Path(graph_dir)
        self._failures: dict[str, ExtractionFailure] = {}

    @classmethod
    def for_index(cls, index: Any, extractor: "Extractor | LLM | None",
                  config: GraphBuildConfig = GraphBuildConfig()) -> "GraphBuilder":
        """A builder writing to ``index.graph_dir`` with the index's embedder and store.

        Given an LLM (or None), the extractor is the one the index's graph was built with
        (``manifest.extra["graph"]["extractor"]``; indexes from before the registry: the
        LLM), so adding documents to a spaCy graph never calls the LLM.
        """
        if not isinstance(extractor, Extractor):
            from branchwise.graph.registry import make_extractor

            name = recorded_extractor(index)
            if name != "llm" or extractor is not None:
                extractor = make_extractor(name, llm=extractor, config=config)
        return cls(extractor, index.embedder, index.graph_dir, store=index.store, config=config)

    def _extractor(self) -> Extractor:
        if self.extractor is None:
            raise InputError("graph extraction needs an extractor.",
                             fix="pass make_extractor('spacy'), or an LLM for the LLM extractor.")
        return self.extractor

    def _extract(self, chunks: Sequence[Chunk], report: GraphBuildReport) -> dict[str, ChunkExtraction]:
        extractor = self._extractor()
        cache = ExtractionCache(self.graph_dir / CACHE_FILE, extractor.fingerprint)
        done: dict[str, ChunkExtraction] = {}
        todo = []
        for ch in chunks:
            hit = cache.get(ch)
            if hit is None:
                todo.append(ch)
            else:
                done[ch.id] = hit
        report.chunks += len(chunks)
        report.cached += len(done)
        bar = tqdm(total=len(todo), desc="graph extraction", unit="chunk", disable=not self.config.show_progress)
        for ch, res in extractor.extract_many(todo):
            bar.update(1)
            calls = res.attempts if self.llm is not None else 0  # spaCy & co. make no LLM calls
            if isinstance(res, ExtractionFailure):
                report.failed_chunk_ids.append(ch.id)
                report.llm_calls += calls
                self._failures[ch.id] = res
                continue
            cache.put(res)
            self._failures.pop(ch.id, None)
            done[ch.id] = res
            report.extracted += 1
            report.llm_calls += calls
            report.prompt_tokens += res.prompt_tokens
            report.completion_tokens += res.completion_tokens
            report.extract_seconds += res.latency_s
            report.repaired += int(res.repaired)
            report.truncated += int(res.truncated)
            report.dropped_items += res.dropped
        bar.close()
        return done

    def _finish(self, graph: KnowledgeGraph, report: GraphBuildReport, changed: set[str], removed: set[str]) -> None:
        atomic_write_jsonl(self.graph_dir / FAILURES_FILE, (f.to_dict() for f in self._failures.values()))
        graph.info.update({"extractor": self._extractor().fingerprint,
                           "extractor_name": str(getattr(self._extractor(), "name", type(self._extractor()).__name__)),
                           "merge_threshold": self.config.resolution.merge_threshold,
                           "failed_chunks": len(self._failures)})
        graph.save(self.graph_dir)
        sync_entity_vectors(graph, self.embedder, self.store, changed, removed, self.config.collection)
        report.entities, report.relations = len(graph), graph.n_relations
        if report.failed:
            log.warning("%d chunk(s) failed graph extraction (listed in %s); rebuild or retry_failed() to retry",
                        report.failed, self.graph_dir / FAILURES_FILE)
        log.info(report.summary())

    def build(self, chunks: Sequence[Chunk]) -> tuple[KnowledgeGraph, GraphBuildReport]:
        """Build the graph of ``chunks`` from scratch (re-using cached extractions)."""
        chunks = list(chunks)
        old_ids = set(self.store.ids(self.config.collection)) if self.store is not None else set()
        self._failures = {}
        report = GraphBuildReport()
        done = self._extract(chunks, report)
        ExtractionCache(self.graph_dir / CACHE_FILE, self._extractor().fingerprint).compact(done)
        graph = KnowledgeGraph()
        resolver = EntityResolver(graph, self.embedder, self.config.resolution)
        # every name embedded up front in large batches (one call per chunk cost ~1 s each under load)
        resolver.prepare(e.name for ch in chunks if ch.id in done for e in done[ch.id].entities)
        for ch in tqdm(chunks, desc="graph assembly", unit="chunk", disable=not self.config.show_progress):
            if ch.id in done:
                merge_extraction(graph, done[ch.id], resolver, report.merges)
        ids = {e.id for e in graph.entities()}
        self._finish(graph, report, ids, old_ids - ids)
        return graph, report

    def add(self, graph: KnowledgeGraph, chunks: Sequence[Chunk]) -> GraphBuildReport:
        """Extract ``chunks`` and merge them into ``graph`` (chunks already present are replaced)."""
        chunks = list(chunks)
        self._failures = {f.chunk_id: f for f in load_failures(self.graph_dir)}
        known = graph.chunk_ids()
        present = [c.id for c in chunks if c.id in known]
        removal = graph.remove_chunks(present) if present else RemovalReport((), (), 0)
        report = GraphBuildReport()
        done = self._extract(chunks, report)
        resolver = EntityResolver(graph, self.embedder, self.config.resolution)
        resolver.prepare(e.name for ch in chunks if ch.id in done for e in done[ch.id].entities)
        touched: set[str] = set(removal.changed_entities)
        for ch in chunks:
            if ch.id in done:
                touched |= merge_extraction(graph, done[ch.id], resolver, report.merges)
        removed = set(removal.removed_entities) - set(graph.g.nodes)
        self._finish(graph, report, touched, removed)
        return report

    def retry_failed(self, graph: KnowledgeGraph, chunks: Mapping[str, Chunk]) -> GraphBuildReport:
        """Extract again every chunk listed in ``failures.jsonl`` (looked up in ``chunks``)."""
        ids = [f.chunk_id for f in load_failures(self.graph_dir) if f.chunk_id in chunks]
        return self.add(graph, [chunks[i] for i in ids])

    def delete_chunks(self, graph: KnowledgeGraph, chunk_ids: Iterable[str]) -> RemovalReport:
        """Remove the chunks' relations and every entity left without support; persist."""
        gone = set(chunk_ids)
        rep = graph.remove_chunks(gone)
        failures = [f for f in load_failures(self.graph_dir) if f.chunk_id not in gone]
        atomic_write_jsonl(self.graph_dir / FAILURES_FILE, (f.to_dict() for f in failures))
        cache = ExtractionCache(self.graph_dir / CACHE_FILE, graph.info.get("extractor", ""))
        cache.compact(cache.chunk_ids() - gone)
        graph.save(self.graph_dir)
        sync_entity_vectors(graph, self.embedder, self.store, rep.changed_entities, rep.removed_entities,
                            self.config.collection)
        return rep

    def delete_documents(self, graph: KnowledgeGraph, doc_ids: Iterable[str]) -> RemovalReport:
        """Delete every chunk of the given documents: those in the graph, and those only in the
        extraction cache (nothing extracted) or the failure list."""
        docs = set(doc_ids)
        chunk_ids = {m.chunk_id for e in graph.entities() for m in e.mentions if m.doc_id in docs}
        chunk_ids |= {r.chunk_id for r in graph.relations() if r.doc_id in docs}
        chunk_ids |= {f.chunk_id for f in load_failures(self.graph_dir) if f.doc_id in docs}
        cache = ExtractionCache(self.graph_dir / CACHE_FILE, graph.info.get("extractor", ""))
        chunk_ids |= {ex.chunk_id for ex in cache.extractions() if ex.doc_id in docs}
        return self.delete_chunks(graph, chunk_ids)


def recorded_extractor(index: Any) -> str:
    """The extractor name an index's graph was built with (``"llm"`` for older indexes)."""
    extra = getattr(getattr(index, "manifest", None), "extra", None) or {}
    return str(extra.get("graph", {}).get("extractor", "llm"))


def build_graph(chunks: Sequence[Chunk], llm: "Extractor | LLM", embedder: Embedder, graph_dir: Path, *,
                store: VectorStore | None = None, config: GraphBuildConfig = GraphBuildConfig()
                ) -> tuple[KnowledgeGraph, GraphBuildReport]:
    """Convenience: ``GraphBuilder(...).build(chunks)`` (``llm``: an extractor or an LLM)."""
    return GraphBuilder(llm, embedder, graph_dir, store=store, config=config).build(chunks)
