"""Navigated retrieval vs flat dense, BM25 and hybrid on the shared IR sets.

    flock /tmp/bw-heavy.lock .venv/bin/python -m benchmarks.retrieval_quality \\
        --datasets cranfield,vaswani,hotpotqa --llm-sample 10 --llm-scorers yes_no

Every system sees the same chunks (one per document), the same embedder (the bundled
all-MiniLM-L6-v2) and the same BM25 index. The tree is built once per dataset with the
project's builder (bottom-up, extractive summaries, summary embeddings) and cached with the
chunk embeddings under ``--cache`` (``.npy`` + ``tree.json``; no pickle). Navigation uses the
embedding scorer on every query, in several configurations (with/without BM25 prior fusion,
calibration off, α = 0); the LLM scorers (embedded 1.5B model) run on a fixed sample of the
first ``--llm-sample`` queries, reported beside the flat baselines *on that same sample*.
Metrics come from :mod:`branchwise.evals.metrics` (trec_eval-style nDCG@10, Recall@k).
Datasets: Cranfield and Vaswani (research use, Glasgow IR collections), HotpotQA dev
distractor paragraphs (CC BY-SA 4.0, Yang et al. 2018).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from branchwise.evals.datasets import SHARED_PATHS, load_dataset
from branchwise.evals.metrics import ndcg_at_k, recall_at_k
from branchwise.models.base import Embedder
from branchwise.retrieval.bm25 import BM25Index
from branchwise.retrieval.index import embedding_text
from branchwise.retrieval.search import reciprocal_rank_fusion
from branchwise.indexing.tree_build import TreeConfig, build_tree
from branchwise.navigation.navigate import TreeResources, TreeTextSource, navigate_many
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.navigation.priors import ArrayNodeVectors, RetrievalPrior
from branchwise.navigation.scorers import (
    EmbeddingScorer,
    LLMSlateScorer,
    LLMSlateScorerConfig,
    Scorer,
    YesNoScorer,
    YesNoScorerConfig,
)
from branchwise.indexing.summarize import ExtractiveSummarizer, SummaryConfig
from branchwise.retrieval.tree import Tree
from branchwise.types import Chunk, ScoredChunk

log = logging.getLogger("benchmarks.retrieval_quality")

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Query:
    id: str
    text: str
    qrels: dict[str, float]


@dataclass
class Bench:
    """One dataset, indexed in memory: chunks, vectors, BM25 and the tree."""

    name: str
    chunks: list[Chunk]
    queries: list[Query]
    embedder: Embedder
    chunk_vecs: np.ndarray
    bm25: BM25Index
    tree: Tree
    vectors: ArrayNodeVectors

    def dense(self, q: str, k: int) -> list[ScoredChunk]:
        sims = self.chunk_vecs @ self.embedder.embed_query(q)
        top = np.argsort(-sims)[:k]
        return [ScoredChunk(self.chunks[i].id, float(sims[i]), "dense") for i in top]

    def bm25_search(self, q: str, k: int) -> list[ScoredChunk]:
        return self.bm25.search(q, k)

    def hybrid(self, q: str, k: int) -> list[ScoredChunk]:
        return reciprocal_rank_fusion([self.dense(q, 100), self.bm25_search(q, 100)])[:k]

    def resources(self) -> TreeResources:
        text = {c.id: c.text for c in self.chunks}
        prior = RetrievalPrior(vectors=self.vectors, embedder=self.embedder, bm25=self.bm25_search, tree=self.tree)
        return TreeResources(self.tree, TreeTextSource(self.tree, text.__getitem__), prior)


def load_bench(name: str, data_dir: Path, cache: Path, embedder: Embedder, max_children: int,
               limit: int | None = None) -> Bench:
    """Load, embed (cached), BM25-index and tree-build (cached) one dataset.

    ``limit`` keeps the first questions; for HotpotQA the corpus shrinks to their paragraphs.
    """
    ds = load_dataset(name, data_dir / SHARED_PATHS[name]).head(limit)
    chunks = [Chunk(d.id, d.id, d.text, title=d.title) for d in ds.corpus if d.text.strip()]
    queries = [Query(q.id, q.text, {k: float(v) for k, v in q.qrels.items()}) for q in ds.questions]
    digest = hashlib.sha256("\x00".join(embedding_text(c) for c in chunks).encode()).hexdigest()[:12]
    folder = cache / f"{name}-{digest}-{embedder.name.replace('/', '_')}-m{max_children}"
    folder.mkdir(parents=True, exist_ok=True)
    vec_file = folder / "chunks.npy"
    if vec_file.exists():
        chunk_vecs = np.load(vec_file, allow_pickle=False)
    else:
        t0 = time.perf_counter()
        chunk_vecs = np.asarray(embedder.embed([embedding_text(c) for c in chunks]), dtype=np.float32)
        np.save(vec_file, chunk_vecs, allow_pickle=False)
        log.info("%s: embedded %d chunks in %.0f s", name, len(chunks), time.perf_counter() - t0)
    tree_file, node_file = folder / "tree.json", folder / "nodes.json"
    if tree_file.exists() and node_file.exists():
        tree = Tree.load(tree_file)
        node_vecs = {k: np.asarray(v, dtype=np.float32) for k, v in json.loads(node_file.read_text()).items()}
    else:
        config = TreeConfig(max_children=max_children, summary=SummaryConfig(mode="extractive"))
        summarizer = ExtractiveSummarizer.from_corpus((c.text for c in chunks), config.summary)
        built = build_tree(chunks, chunk_vecs, config, summarizer=summarizer, embedder=embedder)
        tree, node_vecs = built.tree, built.node_embeddings
        tree.save(tree_file)
        node_file.write_text(json.dumps({k: np.asarray(v).round(6).tolist() for k, v in node_vecs.items()}))
    leaf_vecs = {n.id: chunk_vecs[i] for i, n in enumerate(_leaves_in_chunk_order(tree, chunks))}
    vectors = ArrayNodeVectors.from_mapping({**node_vecs, **leaf_vecs})
    bm25 = BM25Index.build(chunks)
    log.info("%s: %d chunks, %d queries, tree %s", name, len(chunks), len(queries), tree.stats()["nodes_per_level"])
    return Bench(name, chunks, queries, embedder, chunk_vecs, bm25, tree, vectors)


def _leaves_in_chunk_order(tree: Tree, chunks: Sequence[Chunk]) -> list:
    leaves = [tree.leaf_for_chunk(c.id) for c in chunks]
    if any(leaf is None for leaf in leaves):
        raise RuntimeError("cached tree does not match the chunks; delete the cache folder")
    return leaves


def metrics(runs: Sequence[Sequence[str]], queries: Sequence[Query]) -> dict[str, float]:
    out: dict[str, list[float]] = {"nDCG@10": [], "R@10": [], "R@100": []}
    for ranked, q in zip(runs, queries):
        out["nDCG@10"].append(ndcg_at_k(ranked, q.qrels, 10))
        out["R@10"].append(recall_at_k(ranked, q.qrels, 10))
        out["R@100"].append(recall_at_k(ranked, q.qrels, 100))
    return {k: float(np.mean(v)) for k, v in out.items()}


def run_flat(fn: Callable[[str, int], list[ScoredChunk]], queries: Sequence[Query]) -> tuple[list[list[str]], float]:
    t0 = time.perf_counter()
    runs = [[h.chunk_id for h in fn(q.text, 100)] for q in queries]
    return runs, (time.perf_counter() - t0) / max(1, len(queries))


def run_nav(bench: Bench, scorer: Scorer, queries: Sequence[Query], config: NavigatorConfig) -> tuple[list[list[str]], dict[str, float]]:
    res = navigate_many(bench.resources(), scorer, [q.text for q in queries], config, progress=False)
    runs = [[c.chunk_id for c in r.ranked] for r in res]
    cost = {
        "slates": float(np.mean([len(r.trace.steps) for r in res])),
        "llm_calls": float(np.mean([r.usage.llm_calls for r in res])),
        "prompt_tok": float(np.mean([r.usage.prompt_tokens for r in res])),
        "s/query": float(np.mean([r.trace.total_s for r in res])),
        "leaves": float(np.mean([len(r.ranked) for r in res])),
        "fallbacks": float(sum(len(r.trace.fallbacks) for r in res)),
    }
    return runs, cost


EMB = NavigatorConfig.for_embedding_scorer()
NAV_CONFIGS: dict[str, NavigatorConfig] = {
    "nav emb (embedding preset)": EMB,
    "nav emb, offset_l2=1 (LLM default)": replace(EMB, calib=NavigatorConfig().calib),
    "nav emb, no BM25 prior": replace(EMB, bm25_prior_weight=0.0),
    "nav emb, calibration off": replace(EMB, calibration=False),
    "nav emb, no calibration items (l=0)": replace(EMB, leaf_calibration=0),
    "nav emb, alpha=0": replace(EMB, alpha=0.0),
    "nav emb, N=20": replace(EMB, iterations=20),
}

#: LLM navigation budgets: "small" suits the 1.5B model on 2 CPU cores (about a minute a
#: query); "default" is NavigatorConfig() (B=2, N=10: ≤ 19 slates, several minutes a query).
LLM_BUDGETS = {"small": NavigatorConfig(beam=1, iterations=5, leaf_calibration=3), "default": NavigatorConfig()}


def llm_scorers(names: Sequence[str]) -> dict[str, Scorer]:
    from branchwise.models.factory import make_llm

    llm = make_llm("default")
    table: dict[str, Scorer] = {
        "yes_no": YesNoScorer(llm, YesNoScorerConfig(max_item_chars=300)),
        "yes_no+prior": YesNoScorer(llm, YesNoScorerConfig(max_item_chars=300, show_prior=True)),
        "llm_slate": LLMSlateScorer(llm, LLMSlateScorerConfig(max_item_chars=300, reasoning=False, max_tokens=96)),
    }
    return {n: table[n] for n in names}


def fmt_row(name: str, m: dict[str, float], extra: str = "") -> str:
    return f"| {name} | {m['nDCG@10']:.3f} | {m['R@10']:.3f} | {m['R@100']:.3f} | {extra} |"


def evaluate_dataset(bench: Bench, args: argparse.Namespace, scorers: dict[str, Scorer]) -> list[str]:
    queries = bench.queries[: args.limit] if args.limit else bench.queries
    lines = [f"\n### {bench.name}: {len(bench.chunks)} chunks, {len(queries)} queries, tree depth {bench.tree.depth}",
             "| system | nDCG@10 | R@10 | R@100 | cost per query |", "|---|---|---|---|---|"]
    flat = {"flat dense": bench.dense, "flat BM25": bench.bm25_search, "flat hybrid (RRF)": bench.hybrid}
    flat_runs = {}
    for name, fn in flat.items():
        runs, dt = run_flat(fn, queries)
        flat_runs[name] = runs
        lines.append(fmt_row(name, metrics(runs, queries), f"{dt * 1000:.1f} ms"))
    emb = EmbeddingScorer(bench.vectors, bench.embedder)
    for name, cfg in ({} if args.skip_nav_variants else NAV_CONFIGS).items():
        runs, cost = run_nav(bench, emb, queries, cfg)
        lines.append(fmt_row(name, metrics(runs, queries),
                             f"{cost['slates']:.1f} slates, {cost['leaves']:.0f} leaves, {cost['s/query'] * 1000:.0f} ms"))
        print(lines[-1], flush=True)
    sample = queries[: args.llm_sample]
    llm_nav = LLM_BUDGETS[args.llm_budget]
    if scorers and sample:
        head = (f"\n{bench.name}, LLM sample (first {len(sample)} queries; {args.llm_budget} budget: beam={llm_nav.beam}, "
                f"iterations={llm_nav.iterations}, leaf_calibration={llm_nav.leaf_calibration}):")
        lines += [head, "| system | nDCG@10 | R@10 | R@100 | cost per query |", "|---|---|---|---|---|"]
        for name, runs in flat_runs.items():
            lines.append(fmt_row(name, metrics(runs[: len(sample)], sample)))
        runs, cost = run_nav(bench, emb, sample, replace(EMB, beam=llm_nav.beam, iterations=llm_nav.iterations,
                                                         leaf_calibration=llm_nav.leaf_calibration))
        lines.append(fmt_row("nav emb (same small budget)", metrics(runs, sample), f"{cost['slates']:.1f} slates"))
        for name, scorer in scorers.items():
            runs, cost = run_nav(bench, scorer, sample, replace(llm_nav, dense_prior_weight=args.prior_weight))
            lines.append(fmt_row(f"nav {name} (+priors w={args.prior_weight})", metrics(runs, sample),
                                 f"{cost['slates']:.1f} slates, {cost['llm_calls']:.0f} LLM calls, "
                                 f"{cost['prompt_tok']:.0f} prompt tok, {cost['s/query']:.0f} s, {cost['fallbacks']:.0f} fallbacks"))
            print(lines[-1], flush=True)
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="cranfield,vaswani,hotpotqa")
    p.add_argument("--skip-nav-variants", action="store_true", help="only the flat baselines and the LLM sample")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("BRANCHWISE_SHARED_DATA", REPO.parent / "shared" / "data")))
    p.add_argument("--cache", type=Path, default=REPO / "runs" / "bench-cache")
    p.add_argument("--limit", type=int, default=None, help="first N queries per dataset (default: all)")
    p.add_argument("--llm-sample", type=int, default=0, help="queries per dataset for the LLM scorers")
    p.add_argument("--llm-scorers", default="yes_no", help="comma list of yes_no, yes_no+prior, llm_slate")
    p.add_argument("--prior-weight", type=float, default=1.0, help="dense prior trust for LLM scorers")
    p.add_argument("--llm-budget", choices=sorted(LLM_BUDGETS), default="small")
    p.add_argument("--max-children", type=int, default=12)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from branchwise.models.factory import make_embedder

    embedder = make_embedder("default")
    scorers = llm_scorers(args.llm_scorers.split(",")) if args.llm_sample else {}
    lines = []
    for name in args.datasets.split(","):
        bench = load_bench(name, args.data, args.cache, embedder, args.max_children, args.limit)
        lines += evaluate_dataset(bench, args, scorers)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
