"""Graph (GRAG) retrieval vs tree navigation vs flat dense on HotpotQA paragraphs, with each
graph extractor side by side (spaCy, the default; the LLM), their extraction cost, and the
merge-threshold measurement.

    flock /tmp/bw-llm.lock .venv/bin/python benchmarks/graph_retrieval.py \\
        --questions 8 --distractors 3 --extractors spacy,llm --out runs/graph_bench
    .venv/bin/python benchmarks/graph_retrieval.py --questions 200 --distractors 8 --extractors spacy \\
        --no-tree --out runs/graph_spacy          # every paragraph of the dev sample
    .venv/bin/python benchmarks/graph_retrieval.py --speed 2000   # spaCy chunks/s, 1 and 2 processes
    .venv/bin/python benchmarks/graph_retrieval.py --measure-merge

Each extractor builds its own graph (``OUT/graph`` for the LLM — the cache of earlier runs —
and ``OUT/spacy/graph``) over the same paragraphs through :class:`branchwise.graph.GraphBuilder`,
and the graph route is scored on the same questions. "extract chunks/s" is extraction alone
(model loaded); "graph build s" adds entity resolution and the entity-profile embeddings.

Sample: the first ``--questions`` records of ``hotpotqa/dev_distractor_200.jsonl`` (file
order, fixed), each contributing its gold paragraphs and its first ``--distractors`` other
paragraphs; all paragraphs are pooled into one corpus (one chunk per paragraph) that every
system searches. Metric: supporting-paragraph recall@k (the gold ``supporting_facts``
titles found in the top k), and "both@k", the share of questions with *all* their gold
paragraphs in the top k (what a bridge question needs). The extraction goes through
:class:`branchwise.graph.GraphBuilder` with its per-chunk cache under ``--out``, so an
interrupted run resumes; the cost table is computed from that cache (every attempt's
tokens and latency), and is compared with :func:`estimate_extraction_cost`.

Systems: ``dense`` (all-MiniLM-L6-v2 over title + text), ``tree nav`` (the project's
bottom-up tree, extractive summaries, navigated with the embedding scorer — the LLM scorer
costs minutes per question on 2 cores), ``graph`` (GraphRetriever alone: it returns only
chunks its pruned subgraph supports, possibly fewer than k), ``graph+dense`` (graph hits,
then dense hits to fill k).

Merge threshold (``--measure-merge``; all-MiniLM-L6-v2, 22 same-entity variant pairs whose
normalised keys differ, 22 look-alike pairs of different entities): threshold 0.90 merges
8/22 variants with 1/22 false merge ("George Bush" / "George W. Bush", 0.916); 0.92 merges
4/22 with 0/22 false merges; 0.85: 15/22 vs 5/22. A wrong merge fuses two neighbourhoods
(and corrupts every multi-hop path through them) while a missed merge loses one link that
query-time name matching often recovers, so the default is the lowest threshold with no
false merge: 0.92. Exact-key normalisation handles case, punctuation, articles,
diacritics and "Last, First" before embeddings are consulted.

Data: HotpotQA (Yang et al., 2018), CC BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from branchwise.evals.metrics import recall_at_k
from branchwise.graph import GraphBuildConfig, GraphBuilder, GraphRetrievalConfig, GraphRetriever, load_failures
from branchwise.graph.build import CACHE_FILE, ExtractionCache
from branchwise.graph.extract import GraphExtractor, estimate_extraction_cost
from branchwise.models.base import Embedder
from branchwise.retrieval.index import embedding_text
from branchwise.retrieval.store import ChromaStore
from branchwise.types import Chunk

log = logging.getLogger("benchmarks.graph_retrieval")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hotpotqa" / "dev_distractor_200.jsonl"
KS = (2, 5, 10)


@dataclass(frozen=True)
class Question:
    text: str
    gold: frozenset[str]
    type: str


def load_sample(path: Path, n_questions: int, n_distractors: int) -> tuple[list[Question], list[Chunk]]:
    questions: list[Question] = []
    chunks: dict[str, Chunk] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if len(questions) == n_questions:
                break
            rec = json.loads(line)
            gold = {t for t, _ in rec["supporting_facts"]}
            distractors = [t for t, _ in rec["context"] if t not in gold][:n_distractors]
            for title, sents in rec["context"]:
                if title in gold or title in distractors:
                    chunks.setdefault(title, Chunk(f"{title}#0", title, "".join(sents).strip(), title=title))
            questions.append(Question(rec["question"], frozenset(f"{t}#0" for t in gold), rec["type"]))
    return questions, list(chunks.values())


def score(runs: Sequence[Sequence[str]], questions: Sequence[Question]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in KS:
        out[f"R@{k}"] = float(np.mean([recall_at_k(r, q.gold, k) for r, q in zip(runs, questions)]))
        out[f"both@{k}"] = float(np.mean([q.gold <= set(r[:k]) for r, q in zip(runs, questions)]))
    out["avg returned"] = float(np.mean([len(r) for r in runs]))
    return out


def dense_runs(chunks: list[Chunk], vecs: np.ndarray, emb: Embedder, questions: Sequence[Question]) -> list[list[str]]:
    return [[chunks[i].id for i in np.argsort(-(vecs @ emb.embed_query(q.text)), kind="stable")] for q in questions]


def tree_runs(chunks: list[Chunk], vecs: np.ndarray, emb: Embedder, questions: Sequence[Question]) -> list[list[str]]:
    from branchwise.indexing.tree_build import TreeConfig, build_tree
    from branchwise.navigation.navigate import TreeResources, TreeTextSource, navigate_many
    from branchwise.navigation.navigator import NavigatorConfig
    from branchwise.navigation.priors import ArrayNodeVectors
    from branchwise.navigation.scorers import EmbeddingScorer
    from branchwise.indexing.summarize import ExtractiveSummarizer, SummaryConfig

    config = TreeConfig(max_children=8, summary=SummaryConfig(mode="extractive"))
    summarizer = ExtractiveSummarizer.from_corpus((c.text for c in chunks), config.summary)
    built = build_tree(chunks, vecs, config, summarizer=summarizer, embedder=emb, progress=False)
    tree = built.tree
    leaf_vecs = {tree.leaf_for_chunk(c.id).id: vecs[i] for i, c in enumerate(chunks)}  # type: ignore[union-attr]
    scorer = EmbeddingScorer(ArrayNodeVectors.from_mapping({**built.node_embeddings, **leaf_vecs}), emb)
    text = {c.id: c.text for c in chunks}
    res = navigate_many(TreeResources(tree, TreeTextSource(tree, text.__getitem__)), scorer,
                        [q.text for q in questions], NavigatorConfig(), progress=False)
    return [[c.chunk_id for c in r.ranked] for r in res]


def graph_runs(retriever: GraphRetriever, questions: Sequence[Question], fill: list[list[str]] | None = None
               ) -> tuple[list[list[str]], float]:
    runs, t0 = [], time.perf_counter()
    for i, q in enumerate(questions):
        ids = [e.chunk_id for e in retriever.retrieve(q.text, k=max(KS))]
        if fill is not None:
            ids += [c for c in fill[i] if c not in ids]
        runs.append(ids)
    return runs, (time.perf_counter() - t0) / max(1, len(questions))


def extraction_cost(out: Path, extractor: GraphExtractor, chunks: list[Chunk]) -> dict[str, float]:
    cached = ExtractionCache(out / "graph" / CACHE_FILE, extractor.fingerprint).extractions()
    lat = [e.latency_s for e in cached]
    est = estimate_extraction_cost(chunks, extractor.config)
    return {
        "chunks extracted": len(cached), "failed": len(load_failures(out / "graph")),
        "LLM calls": sum(e.attempts for e in cached), "retried": sum(e.attempts > 1 for e in cached),
        "repaired": sum(e.repaired for e in cached), "items dropped": sum(e.dropped for e in cached),
        "prompt tok/chunk": statistics.mean(e.prompt_tokens for e in cached) if cached else 0.0,
        "completion tok/chunk": statistics.mean(e.completion_tokens for e in cached) if cached else 0.0,
        "s/chunk mean": statistics.mean(lat) if lat else 0.0, "s/chunk median": statistics.median(lat) if lat else 0.0,
        "decode tok/s": sum(e.completion_tokens for e in cached) / max(1e-9, sum(lat)),
        "estimate: prompt tok/chunk": est.prompt_tokens / max(1, est.chunks),
        "estimate: completion tok/chunk": est.completion_tokens / max(1, est.chunks),
        "estimate: s/chunk": est.est_seconds / max(1, est.chunks),
    }


SAME_ENTITY = [
    ("Barack Obama", "President Barack Obama"), ("Barack Obama", "Barack H. Obama"),
    ("Barack Obama", "Barack Hussein Obama"), ("United States", "United States of America"),
    ("Neil Peart", "Neil Ellwood Peart"), ("Modern Drummer Hall of Fame", "Modern Drummer magazine Hall of Fame"),
    ("Tolkien", "J. R. R. Tolkien"), ("Christopher Nolan", "Chris Nolan"), ("Leonardo DiCaprio", "Leonardo Di Caprio"),
    ("Academy Award", "Academy Awards"), ("Oscar", "Academy Award"), ("Rush (band)", "Rush"),
    ("Beatles", "The Beatles band"), ("Los Angeles, California", "Los Angeles"), ("Harvard University", "Harvard"),
    ("Microsoft Corporation", "Microsoft"), ("World War II", "Second World War"),
    ("Jeffrey Thomas Porcaro", "Jeff Porcaro"), ("Steely Dan's Katy Lied", "Katy Lied"),
    ("The New York Times", "New York Times newspaper"), ("Rolling Stones", "The Rolling Stones band"),
    ("Toto", "Toto (band)"),
]
DIFFERENT_ENTITY = [
    ("Barack Obama", "Michelle Obama"), ("George Bush", "George W. Bush"), ("Paris", "Paris Hilton"),
    ("Jeff Porcaro", "Steve Porcaro"), ("Harvard University", "Yale University"), ("New York", "New Jersey"),
    ("Christopher Nolan", "Jonathan Nolan"), ("Rush", "Russia"), ("John Lennon", "Julian Lennon"),
    ("Katy Lied", "Katy Perry"), ("Academy Award for Best Actor", "Academy Award for Best Actress"),
    ("United States Navy", "United States Army"), ("Carmine Appice", "Vinny Appice"),
    ("Manchester United", "Manchester City"), ("Star Wars", "Star Trek"), ("Apple Inc.", "Apple Records"),
    ("University of Oxford", "University of Cambridge"), ("Ford Motor Company", "Ford Foundation"),
    ("Modern Drummer Hall of Fame", "Rock and Roll Hall of Fame"),
    ("Queen Elizabeth II", "Queen Elizabeth The Queen Mother"), ("Washington", "Washington, D.C."),
    ("Nobody's Hero", "Nobody Knows"),
]


def measure_merge(emb: Embedder) -> None:
    """Cosine of name pairs; merges and false merges per threshold (module docstring)."""

    def cos(pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.sum(emb.embed([a for a, _ in pairs]) * emb.embed([b for _, b in pairs]), axis=1)

    same, diff = cos(SAME_ENTITY), cos(DIFFERENT_ENTITY)
    for label, pairs, sims in (("same", SAME_ENTITY, same), ("different", DIFFERENT_ENTITY, diff)):
        for (a, b), c in sorted(zip(pairs, sims), key=lambda t: -t[1]):
            print(f"{label:9s} {c:.3f}  {a} / {b}")
    for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94):
        print(f"threshold {t:.2f}: merges {int((same >= t).sum())}/{len(same)} variants, "
              f"{int((diff >= t).sum())}/{len(diff)} false merges")


def table(rows: dict[str, dict[str, float]]) -> str:
    cols = list(next(iter(rows.values())))
    lines = ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in r.values()) + " |" for name, r in rows.items()]
    return "\n".join(lines)


def spacy_speed(path: Path, n: int) -> dict[str, float]:
    """spaCy extractor throughput on the first ``n`` paragraphs, 1 and 2 processes (model loaded first)."""
    from branchwise.graph.spacy_extract import SpacyExtractionConfig, SpacyGraphExtractor

    _, chunks = load_sample(path, 10_000, 10)
    chunks = chunks[:n]
    out: dict[str, float] = {"paragraphs": float(len(chunks))}
    for procs in (1, 2):
        ex = SpacyGraphExtractor(SpacyExtractionConfig(n_process=procs))
        list(ex.extract_many(chunks[:16]))  # load + warm up
        t0 = time.perf_counter()
        res = [r for _, r in ex.extract_many(chunks)]
        dt = time.perf_counter() - t0
        out[f"chunks/s ({procs} process{'es' if procs > 1 else ''})"] = len(chunks) / dt
        out["entities/chunk"] = statistics.mean(len(r.entities) for r in res)
        out["relations/chunk"] = statistics.mean(len(r.relations) for r in res)
    return out


def build_with(name: str, out: Path, chunks: list[Chunk], emb: Embedder, max_extract: int | None
               ) -> tuple[Any, Any, Any, dict[str, float]] | None:
    """Build ``name``'s graph over ``chunks``; (graph, store, extractor, cost) or None on a partial LLM run."""
    from branchwise.graph.registry import make_extractor

    root = out if name == "llm" else out / name  # the LLM keeps the folder of earlier runs (its cache)
    root.mkdir(parents=True, exist_ok=True)
    store = ChromaStore.persistent(root / "chroma")
    if name == "llm":
        from branchwise.models.factory import make_llm

        extractor: Any = GraphExtractor(make_llm("default"))
    else:
        extractor = make_extractor(name)
        list(extractor.extract_many(chunks[:2]))  # load the pipeline outside the timing
    todo = chunks
    if max_extract is not None:  # extract a slice now; the cache makes the next run resume
        cache = ExtractionCache(root / "graph" / CACHE_FILE, extractor.fingerprint)
        new = [c for c in chunks if cache.get(c) is None][:max_extract]
        todo = [c for c in chunks if cache.get(c) is not None] + new
    builder = GraphBuilder(extractor, emb, root / "graph", store=store, config=GraphBuildConfig())
    t0 = time.perf_counter()
    graph, report = builder.build(todo)
    build_s = time.perf_counter() - t0
    log.info("%s: %s (%.0f s)", name, report.summary(), build_s)
    if len(todo) < len(chunks):
        log.info("partial run: %d/%d chunks extracted; run again to continue", len(todo), len(chunks))
        return None
    cached = ExtractionCache(root / "graph" / CACHE_FILE, extractor.fingerprint).extractions()
    lat = sum(e.latency_s for e in cached)
    cost: dict[str, float] = {
        "chunks": len(chunks), "extract chunks/s": len(cached) / max(1e-9, lat),
        "s/chunk": lat / max(1, len(cached)), "entities": len(graph), "relations": graph.n_relations,
        "entities/chunk (extracted)": statistics.mean(len(e.entities) for e in cached),
        "relations/chunk (extracted)": statistics.mean(len(e.relations) for e in cached),
        "LLM calls": report.llm_calls if report.extracted else (sum(e.attempts for e in cached) if name == "llm" else 0),
        "graph build s (this run)": build_s,
    }
    if name == "llm":
        cost.update(extraction_cost(root, extractor, chunks))
    return graph, store, extractor, cost


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--distractors", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "graph_bench")
    ap.add_argument("--extractors", default="spacy,llm", help="comma-separated names from EXTRACTORS")
    ap.add_argument("--max-extract", type=int, default=None, help="LLM: extract at most this many new chunks, then stop")
    ap.add_argument("--speed", type=int, default=None, metavar="N", help="only measure spaCy chunks/s on N paragraphs")
    ap.add_argument("--measure-merge", action="store_true", help="only measure the entity-merge threshold")
    ap.add_argument("--no-tree", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.speed:
        print(json.dumps(spacy_speed(args.data, args.speed), indent=1))
        return None
    from branchwise.models.factory import make_embedder

    emb = make_embedder("default")
    if args.measure_merge:
        return measure_merge(emb)
    questions, chunks = load_sample(args.data, args.questions, args.distractors)
    log.info("%d questions, %d paragraphs", len(questions), len(chunks))
    args.out.mkdir(parents=True, exist_ok=True)
    vecs = np.asarray(emb.embed([embedding_text(c) for c in chunks]), dtype=np.float32)
    dense = dense_runs(chunks, vecs, emb, questions)
    rows = {"dense": score(dense, questions)}
    if not args.no_tree:
        rows["tree nav (embedding scorer)"] = score(tree_runs(chunks, vecs, emb, questions), questions)
    result: dict[str, Any] = {"questions": len(questions), "paragraphs": len(chunks), "extractors": {}}
    for name in [n.strip() for n in args.extractors.split(",") if n.strip()]:
        built = build_with(name, args.out, chunks, emb, args.max_extract if name == "llm" else None)
        if built is None:
            continue
        graph, store, _extractor, cost = built
        retriever = GraphRetriever(graph, emb, store, GraphRetrievalConfig(), chunks={c.id: c for c in chunks})
        g, g_s = graph_runs(retriever, questions)
        rows[f"graph ({name})"] = score(g, questions)
        rows[f"graph+dense ({name})"] = score(graph_runs(retriever, questions, dense)[0], questions)
        cost["graph s/query"] = g_s
        result["extractors"][name] = {"cost": cost, "graph": graph.stats(),
                                      "example": retriever.describe(questions[0].text)[:1500]}
    result["retrieval"] = rows
    (args.out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    print(table(rows))
    for name, r in result["extractors"].items():
        print(f"\n{name}: " + json.dumps(r["cost"], indent=1, default=float))
    return None


if __name__ == "__main__":
    main()
