"""Tree-build benchmark: time and peak memory over N = 1k .. 1M chunks.

    python benchmarks/tree_build.py --sizes 1000,10000,100000 [--include-1m] [--baselines]

Corpus: the Vaswani abstracts (11,429; ../shared/data/vaswani) embedded with the real
default embedder (all-MiniLM-L6-v2), cached as .npy under /tmp. N ≤ 11,429 uses real
abstracts and real embeddings; larger N tiles the real embeddings with Gaussian noise
(σ per dimension, renormalised) and reuses the abstracts' text — stated in the output.

Each (N, strategy, mode) runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its
own; it includes loading the embeddings (and the embedder for summary vectors).
Modes: ``extractive`` (extractive summaries, vectors from the real embedder on the
summaries), ``extractive-centroid`` (extractive summaries, centroid vectors: no embedder)
and ``structure`` (clustering only, empty summaries).

``--baselines`` times sklearn Spectral and Ward agglomerative clustering against one level
of our balanced grouping at small N (they are O(N²) in memory).

Results on the 2-core dev machine: reports/benchmarks.md ("Tree build").
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from branchwise.types import Chunk, Usage

log = logging.getLogger("benchmarks.tree_build")
REPO = Path(__file__).resolve().parents[1]
_DOC = re.compile(r"<DOC>\s*<DOCNO>\s*(.*?)\s*</DOCNO>(.*?)</DOC>", re.DOTALL)


def vaswani(shared: Path) -> list[tuple[str, str]]:
    """(docno, text) of the Vaswani abstracts (TREC SGML)."""
    raw = (shared / "vaswani" / "doc-text.trec").read_text(encoding="utf-8", errors="replace")
    return [(no, " ".join(text.split())) for no, text in _DOC.findall(raw)]


def real_embeddings(texts: Sequence[str], cache: Path) -> np.ndarray:
    """Embeddings of ``texts`` with the default embedder, cached in ``cache`` (.npy)."""
    if cache.exists():
        emb = np.load(cache, allow_pickle=False)
        if emb.shape[0] == len(texts):
            return emb
    from branchwise.models.embedders import default_embedder

    t0 = time.perf_counter()
    emb = default_embedder().embed(list(texts))
    log.info("embedded %d texts in %.1fs", len(texts), time.perf_counter() - t0)
    np.save(cache, emb, allow_pickle=False)
    return emb


def corpus(n: int, shared: Path, cache: Path, noise: float, seed: int) -> tuple[list[Chunk], np.ndarray, str]:
    """``n`` chunks and embeddings: real when n ≤ corpus size, else tiled with noise."""
    docs = vaswani(shared)
    base = real_embeddings([t for _, t in docs], cache)
    if n <= len(docs):
        chunks = [Chunk(id=f"v{no}", doc_id=f"v{no}", text=t) for no, t in docs[:n]]
        return chunks, base[:n], "real Vaswani abstracts + real embeddings"
    rng = np.random.default_rng(seed)
    rows = np.arange(n) % len(docs)
    emb = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):  # in blocks: a float64 noise array for 1M x 384 would be 3 GB
        block = base[rows[i : i + step]] + rng.normal(0.0, noise, (min(step, n - i), base.shape[1])).astype(np.float32)
        emb[i : i + step] = block / np.linalg.norm(block, axis=1, keepdims=True)
    chunks = [Chunk(id=f"v{docs[r][0]}~{i}", doc_id=f"v{docs[r][0]}", text=docs[r][1]) for i, r in enumerate(rows.tolist())]
    return chunks, emb, f"real embeddings of {len(docs)} abstracts tiled x{n / len(docs):.1f} with N(0, {noise}^2) noise per dim"


class NoSummaries:
    """Structure-only benchmark mode: empty summaries, no model."""

    name = "none"

    def __init__(self) -> None:
        self.usage = Usage()

    def summarize_batch(self, requests: Sequence[object]) -> list[str]:
        return [""] * len(requests)


class Timed:
    """Wraps a summarizer or an embedder and adds up the seconds spent in it."""

    def __init__(self, inner: Any):
        self.inner, self.seconds = inner, 0.0
        self.name = inner.name
        self.usage = getattr(inner, "usage", Usage())
        self.dim = getattr(inner, "dim", 0)

    def _timed(self, fn: Any, arg: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(arg)
        finally:
            self.seconds += time.perf_counter() - t0

    def summarize_batch(self, requests: Sequence[Any]) -> list[str]:
        return self._timed(self.inner.summarize_batch, requests)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._timed(self.inner.embed, texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._timed(self.inner.embed_query, text)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_case(n: int, strategy: str, mode: str, args: argparse.Namespace) -> dict[str, object]:
    """One build in this process; returns the measurements."""
    from branchwise.indexing.tree_build import TreeConfig, build_tree
    from branchwise.indexing.summarize import ExtractiveSummarizer, SummaryConfig

    t0 = time.perf_counter()
    chunks, emb, source = corpus(n, args.shared, args.cache, args.noise, args.seed)
    load_s = time.perf_counter() - t0
    summary = SummaryConfig(mode="extractive", summary_tokens=args.summary_tokens)
    vectors: Literal["summary", "centroid"] = "summary" if mode == "extractive" else "centroid"
    strat: Literal["bottom_up", "top_down"] = "top_down" if strategy == "top_down" else "bottom_up"
    cfg = TreeConfig(strategy=strat, max_children=args.max_children, node_vectors=vectors, summary=summary)
    embedder = None
    if vectors == "summary":
        from branchwise.models.embedders import default_embedder

        embedder = Timed(default_embedder())
    t0 = time.perf_counter()
    inner = NoSummaries() if mode == "structure" else ExtractiveSummarizer.from_corpus((c.text for c in chunks), summary)
    fit_s = time.perf_counter() - t0
    summarizer = Timed(inner)
    result = build_tree(chunks, emb, cfg, summarizer=summarizer, embedder=embedder, progress=False)
    build_s = time.perf_counter() - t0
    embed_s = embedder.seconds if embedder is not None else 0.0
    stats = result.tree.stats()
    return {
        "n": n, "strategy": strategy, "mode": mode, "build_s": round(build_s, 1), "load_s": round(load_s, 1),
        "idf_s": round(fit_s, 1), "summaries_s": round(summarizer.seconds, 1), "embed_s": round(embed_s, 1),
        "cluster_s": round(build_s - fit_s - summarizer.seconds - embed_s, 1),
        "peak_rss_mb": round(peak_rss_mb()), "depth": stats["depth"], "nodes": stats["nodes"],
        "internal": stats["internal"], "max_branching": max(stats["branching_histogram"]), "source": source,
    }


def run_baseline(n: int, method: str, args: argparse.Namespace) -> dict[str, object]:
    """One flat clustering of n real embeddings into n/10 groups."""
    from sklearn.cluster import AgglomerativeClustering, SpectralClustering

    from branchwise.indexing.cluster import ClusterConfig, balanced_groups

    _, emb, _ = corpus(n, args.shared, args.cache, args.noise, args.seed)
    k = n // 10
    t0 = time.perf_counter()
    if method == "spectral":
        labels = SpectralClustering(n_clusters=k, random_state=0, assign_labels="cluster_qr").fit_predict(emb)
    elif method == "ward":
        labels = AgglomerativeClustering(n_clusters=k).fit_predict(emb)
    else:
        groups = balanced_groups(emb, k, 12, min_size=3, seed=0, config=ClusterConfig())
        labels = np.zeros(n, dtype=np.int64)
        for j, g in enumerate(groups):
            labels[g] = j
    secs = time.perf_counter() - t0
    sizes = np.bincount(labels)
    return {"n": n, "method": method, "secs": round(secs, 2), "peak_rss_mb": round(peak_rss_mb()),
            "min_size": int(sizes.min()), "max_size": int(sizes.max())}


def _subprocess(argv: list[str], timeout: float) -> dict[str, Any] | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as e:
        log.error("case %s failed:\n%s", argv, e.stderr[-3000:])
        return {"error": e.returncode}
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated N")
    p.add_argument("--include-1m", action="store_true", help="also N = 1,000,000 (extractive, centroid vectors)")
    p.add_argument("--strategies", default="bottom_up,top_down")
    p.add_argument("--mode", default="extractive", choices=["extractive", "extractive-centroid", "structure"])
    p.add_argument("--baselines", action="store_true", help="sklearn spectral / ward vs ours at N = 1k, 5k")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=Path("/tmp/bw-vaswani-minilm.npy"))
    p.add_argument("--noise", type=float, default=0.02, help="σ of the per-dimension noise for tiled N")
    p.add_argument("--max-children", type=int, default=12)
    p.add_argument("--summary-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="per case, seconds")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: N:strategy:mode or N:baseline:method
    args = p.parse_args(argv)
    if args.case:
        n, kind, what = args.case.split(":")
        res = run_baseline(int(n), what, args) if kind == "baseline" else run_case(int(n), kind, what, args)
        print(json.dumps(res))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    common = ["--shared", str(args.shared), "--cache", str(args.cache), "--noise", str(args.noise),
              "--max-children", str(args.max_children), "--summary-tokens", str(args.summary_tokens), "--seed", str(args.seed)]
    corpus(1, args.shared, args.cache, args.noise, args.seed)  # embed + cache once, outside the timings
    if args.baselines:
        print("| N | method | seconds | peak RSS MB | cluster sizes |\n|---|---|---|---|---|")
        for n in (1000, 5000):
            for method in ("spectral", "ward", "balanced"):
                r = _subprocess(["--case", f"{n}:baseline:{method}", *common], args.timeout)
                if r is None:
                    print(f"| {n:,} | {method} | > {args.timeout:.0f} (timeout) | | |", flush=True)
                else:
                    print(f"| {n:,} | {method} | {r['secs']} | {r['peak_rss_mb']} | {r['min_size']}..{r['max_size']} |", flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.include_1m else [])
    print("| N | strategy | mode | build s | clustering+rest s | idf s | summaries s | embed s | "
          "s / (N log2 N) x1e6 | peak RSS MB | depth | nodes | max branching |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    sources = set()
    for n in sizes:
        mode = "extractive-centroid" if n >= 1_000_000 and args.mode == "extractive" else args.mode
        for strategy in args.strategies.split(","):
            r = _subprocess(["--case", f"{n}:{strategy}:{mode}", *common], args.timeout)
            if r is None or "error" in r:
                print(f"| {n:,} | {strategy} | {mode} | {'timeout' if r is None else 'failed'} |" + " |" * 9, flush=True)
                continue
            sources.add(f"N={n:,}: {r['source']}")
            norm = float(r["build_s"]) / (n * math.log2(n)) * 1e6
            print(f"| {n:,} | {strategy} | {mode} | {r['build_s']} | {r['cluster_s']} | {r['idf_s']} | {r['summaries_s']} | "
                  f"{r['embed_s']} | {norm:.2f} | {r['peak_rss_mb']} | {r['depth']} | "
                  f"{r['nodes']:,} | {r['max_branching']} |", flush=True)
    for s in sorted(sources):
        print(f"- {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
