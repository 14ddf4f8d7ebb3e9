"""Per-query cost of tree navigation at 1k, 10k and 100k leaves.

    flock /tmp/bw-heavy.lock .venv/bin/python -m benchmarks.query_cost --queries 20 --real-llm 3

Synthetic part: balanced trees (branching 10) over clustered random unit vectors (384-d,
the MiniLM size); each internal node's vector is the mean of its leaves, texts are
synthetic strings of realistic length (96-token summaries, 150-token passages). Queries are
noisy copies of a random leaf, so "target in top 10" is a sanity check of the search. The
scorer is the embedding scorer wrapped in :class:`SimulatedLLM`, which renders the real
slate prompt, counts its tokens (tiktoken) and charges an LLM latency from a throughput
profile: ``gpu`` *sleeps* that long (one forward pass per slate; the issue's figure of
~20 ms for a 1.5k-token slate), so the framework's own share of real wall time is measured;
``cpu`` (the embedded 1.5B model: prefill ~57 tok/s, decode ~18 tok/s on 2 cores) is only
modelled. Framework overhead = navigation wall time − time inside the scorer.

Real part (``--real-llm N``): N Cranfield queries (1.4k leaves, the tree from
``benchmarks.retrieval_quality``'s cache) through the embedded model's Yes/No scorer, with
everything measured.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from branchwise.text.tokens import get_tokenizer
from branchwise.navigation.navigate import NavigationResult, TreeResources, navigate_many
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.navigation.priors import (
    ArrayNodeVectors,
    RetrievalPrior,
    RetrievalPriorConfig,
)
from branchwise.navigation.scorers import EmbeddingScorer, Scorer
from branchwise.navigation.slates import (
    SlateRequest,
    SlateScores,
    messages_text,
    render_slate_prompt,
)
from branchwise.retrieval.tree import Node, Tree

log = logging.getLogger("benchmarks.query_cost")

DIM = 384
PROFILES = {  # prefill tok/s, decode tok/s, generated tokens per slate, sleep instead of modelling?
    "gpu": (75_000.0, 100.0, 0, True),
    "cpu": (57.0, 18.0, 40, False),
}


@dataclass
class LookupEmbedder:
    """Queries are ids of precomputed vectors (synthetic benchmark only)."""

    table: dict[str, np.ndarray]
    name: str = "lookup"
    dim: int = DIM

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.table[text]


class SimulatedLLM:
    """Embedding scores + the token count and (modelled or slept) latency of an LLM slate call."""

    name = "simulated-llm"

    def __init__(self, inner: Scorer, profile: str):
        self.inner = inner
        self.prefill, self.decode, self.gen, self.sleep = PROFILES[profile]
        self.tok = get_tokenizer()
        self.modelled_s = 0.0
        self.cpu_s = 0.0  # CPU time inside the scorer (sleeping costs none)

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        c0 = time.process_time()
        out = self.inner.score_batch(requests)
        for req, sc in zip(requests, out):
            sc.prompt_tokens = self.tok.count(messages_text(render_slate_prompt(req, reasoning=False)))
            sc.completion_tokens = self.gen
            sc.llm_calls = 1
            sc.latency_s = sc.prompt_tokens / self.prefill + self.gen / self.decode
            self.modelled_s += sc.latency_s
        self.cpu_s += time.process_time() - c0
        if self.sleep:
            time.sleep(sum(sc.latency_s for sc in out))
        return out


def synthetic_tree(n_leaves: int, branching: int, rng: np.random.Generator) -> tuple[Tree, dict[str, np.ndarray]]:
    depth = max(1, math.ceil(math.log(n_leaves, branching) - 1e-9))
    nodes: dict[str, Node] = {}
    vecs: dict[str, np.ndarray] = {}
    leaves = 0
    spread = [0.9 / (k + 1) for k in range(depth + 1)]

    def grow(nid: str, center: np.ndarray, d: int, parent: str | None) -> None:
        nonlocal leaves
        if d == depth or leaves >= n_leaves:
            v = center + spread[d] * rng.standard_normal(DIM).astype(np.float32) / math.sqrt(DIM)
            vecs[nid] = v / np.linalg.norm(v)
            nodes[nid] = Node(nid, 0, parent, chunk_id=f"c{leaves}")
            leaves += 1
            return
        kids = []
        for j in range(branching):
            if leaves >= n_leaves:
                break
            c = center + spread[d] * rng.standard_normal(DIM).astype(np.float32) / math.sqrt(DIM) * 3
            cid = f"{nid}.{j}"
            grow(cid, c / np.linalg.norm(c), d + 1, nid)
            kids.append(cid)
        nodes[nid] = Node(nid, 0, parent, kids, summary=f"summary {nid}")
        m = np.mean([vecs[k] for k in kids], axis=0)
        vecs[nid] = m / np.linalg.norm(m)

    root = rng.standard_normal(DIM).astype(np.float32)
    grow("n", root / np.linalg.norm(root), 0, None)
    for nid in sorted(nodes, key=len, reverse=True):  # fix levels bottom-up
        node = nodes[nid]
        if node.children:
            node.level = 1 + max(nodes[c].level for c in node.children)
    tree = Tree(nodes=nodes, root="n", max_children=branching)
    return tree, vecs


class SyntheticTexts:
    """Node texts of realistic length (≈96-token summaries, ≈150-token passages) drawn from
    a fixed pool, so the lookup costs what a dict lookup costs in a real index."""

    def __init__(self, tree: Tree, pool: int = 512):
        def text(words: int, k: int) -> str:
            return " ".join(f"topic{zlib.crc32(f'{k}/{i}'.encode()) % 997}" for i in range(words))

        self.tree = tree
        self.leaf = [text(70, k) for k in range(pool)]
        self.summary = [text(45, k) for k in range(pool)]

    def __call__(self, node_id: str) -> str:
        pool = self.leaf if self.tree[node_id].is_leaf else self.summary
        return pool[zlib.crc32(node_id.encode()) % len(pool)]


def summarise(name: str, results: Sequence[NavigationResult], own_cpu_s: float, targets: Sequence[str] | None) -> dict[str, float]:
    slates = np.mean([len(r.trace.steps) for r in results])
    prompt = np.mean([r.usage.prompt_tokens for r in results])
    total = np.mean([r.trace.total_s for r in results])
    scorer = np.mean([r.trace.scorer_s for r in results])
    own = total - scorer
    cpu = own_cpu_s / len(results)
    llm = scorer  # wall time inside the scorer: the (slept) GPU latency plus prompt rendering
    row = {"slates": float(slates), "prompt_tok": float(prompt), "wall_s": float(total), "own_ms": float(own * 1000),
           "own_cpu_ms": cpu * 1000, "overhead_pct": float(100 * own / total) if total > 0 else 0.0,
           "overhead_cpu_pct": float(100 * cpu / (cpu + llm)) if llm > 0 else 0.0}
    stops = ",".join(sorted({r.trace.stop_reason for r in results}))
    if targets is not None:
        row["hit@10"] = float(np.mean([t in [c.chunk_id for c in r.ranked[:10]] for r, t in zip(results, targets)]))
    print(f"| {name} | {slates:.1f} | {prompt:.0f} | {row.get('hit@10', float('nan')):.2f} | {own * 1000:.1f} / {cpu * 1000:.1f} | "
          f"{total:.3f} | {row['overhead_pct']:.1f} % / {row['overhead_cpu_pct']:.1f} % | {stops} |", flush=True)
    return row


def run_synthetic(
    sizes: Sequence[int], n_queries: int, configs: dict[str, NavigatorConfig], seed: int
) -> dict[tuple[str, int], dict[str, float]]:
    print("| tree / config | slates/q | prompt tok/q | hit@10 | framework ms/q (wall / CPU) | wall s/q (gpu sleep) | "
          "overhead (wall / CPU) | stop |\n|---|---|---|---|---|---|---|---|")
    out = {}
    for n in sizes:
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        tree, vecs = synthetic_tree(n, 10, rng)
        build_s = time.perf_counter() - t0
        leaf_ids = [x.id for x in tree.leaves()]
        picks = rng.choice(len(leaf_ids), n_queries, replace=False)
        queries = {}
        for k, i in enumerate(picks):
            v = vecs[leaf_ids[i]] + 0.6 * rng.standard_normal(DIM).astype(np.float32) / math.sqrt(DIM)
            queries[f"query {k}"] = (v / np.linalg.norm(v), str(tree[leaf_ids[i]].chunk_id))
        emb = LookupEmbedder({q: v for q, (v, _) in queries.items()})
        vectors = ArrayNodeVectors.from_mapping(vecs)
        prior = RetrievalPrior(vectors=vectors, embedder=emb, config=RetrievalPriorConfig(bm25=False))
        res = TreeResources(tree, SyntheticTexts(tree), prior)
        log.info("%d leaves: %d nodes, depth %d, built in %.1f s", n, len(tree), tree.depth, build_s)
        for cname, cfg in configs.items():
            scorer = SimulatedLLM(EmbeddingScorer(vectors, emb), "gpu")
            results = []
            c0 = time.process_time()
            for q in queries:  # one query at a time: the latency a user sees
                results += navigate_many(res, scorer, [q], cfg, progress=False)
            own_cpu = time.process_time() - c0 - scorer.cpu_s
            row = summarise(f"{n // 1000}k / {cname}", results, own_cpu, [t for _, t in queries.values()])
            cpu_model = SimulatedLLM(EmbeddingScorer(vectors, emb), "cpu")
            navigate_many(res, cpu_model, list(queries), cfg, progress=False)
            row["modelled_cpu_llm_s"] = cpu_model.modelled_s / len(queries)
            print(f"| (same on the embedded 1.5B, CPU: {row['modelled_cpu_llm_s']:.0f} s/query of modelled LLM time; "
                  f"framework share {100 * row['own_cpu_ms'] / 1000 / row['modelled_cpu_llm_s']:.4f} %) | | | | | | | |")
            out[(cname, n)] = row
    return out


def run_real(n_queries: int, cache: Path) -> None:
    from benchmarks.retrieval_quality import LLM_BUDGETS, load_bench
    from branchwise.models.factory import make_embedder, make_llm
    from branchwise.navigation.scorers import YesNoScorer, YesNoScorerConfig

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    bench = load_bench("cranfield", data, cache, make_embedder("default"), 12)
    llm = make_llm("default")
    scorer = YesNoScorer(llm, YesNoScorerConfig(max_item_chars=300))
    queries = [q.text for q in bench.queries[:n_queries]]
    small = LLM_BUDGETS["small"]
    print(f"\nreal embedded LLM (Yes/No scorer), Cranfield tree ({len(bench.chunks)} leaves, depth {bench.tree.depth}), "
          f"config beam={small.beam} iterations={small.iterations} leaf_calibration={small.leaf_calibration}")
    print("| query | slates | LLM calls (forward passes) | prompt tok | prefix-reused tok | wall s | framework s | overhead |\n|---|---|---|---|---|---|---|---|")
    for i, q in enumerate(queries):
        before = getattr(llm, "prefix_hits", 0)
        (r,) = navigate_many(bench.resources(), scorer, [q], replace(small, dense_prior_weight=1.0), progress=False)
        own = r.trace.total_s - r.trace.scorer_s
        print(f"| {i} | {len(r.trace.steps)} | {r.usage.llm_calls} | {r.usage.prompt_tokens} | "
              f"{getattr(llm, 'prefix_hits', 0) - before} | {r.trace.total_s:.1f} | {own:.3f} | {100 * own / r.trace.total_s:.2f} % |", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--real-llm", type=int, default=0, help="Cranfield queries through the embedded LLM")
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "bench-cache")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    configs = {"default (B=2, N=10)": NavigatorConfig(dense_prior_weight=0.0),
               "converge (patience=2)": NavigatorConfig(dense_prior_weight=0.0, patience=2),
               "LATTICE N=20": NavigatorConfig(dense_prior_weight=0.0, iterations=20)}
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = run_synthetic(sizes, args.queries, configs, args.seed)
    print("\ncalls(largest)/calls(smallest):", {c: round(rows[(c, sizes[-1])]["slates"] / rows[(c, sizes[0])]["slates"], 2)
                                                for c in configs})
    if args.real_llm:
        run_real(args.real_llm, args.cache)


if __name__ == "__main__":
    main()
