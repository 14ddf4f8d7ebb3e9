"""Internet scale on paper: tree shape, build cost, storage and per-query cost at 10M and 1B
chunks, computed from per-item costs measured in this repository (docs/scaling.md).

    .venv/bin/python benchmarks/scaling_plan.py                      # the tables of docs/scaling.md
    .venv/bin/python benchmarks/scaling_plan.py --index runs/scale_out/build-w0   # re-measure storage
    .venv/bin/python benchmarks/scaling_plan.py --prefill-tps 20000 --decode-tps 2500 --shard 10000000

Nothing here is guessed except the GPU serving throughputs, which are stated inputs (flags):
every per-item cost is a constant in :data:`MEASURED` with the report it comes from, and the
tree shape is the builder's own arithmetic (:func:`branchwise.indexing.cluster.n_groups`).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: per-item costs measured in this repository (value, source)
MEASURED: dict[str, tuple[float, str]] = {
    "internal_nodes_per_leaf": (0.1163, "tree build 100k, M=12: 111,630 nodes over 100,000 leaves (reports/benchmarks.md, Tree build)"),
    "cluster_s_per_chunk": (96.6 / 1e6, "balanced k-means, 1M chunks in 96.6 s on one core (reports/benchmarks.md, Tree build)"),
    "tree_peak_gb_per_1m": (3.2, "1M-chunk build peak RSS 3.2 GB (reports/benchmarks.md, Tree build)"),
    "summary_prompt_tokens": (1348.3, "LLM summary prompt per internal node: the dry-run planner's count (an upper bound) on the 1,971 HotpotQA paragraphs, M=12 (this script, --measure-summaries)"),
    "summary_completion_tokens": (96.0, "summary cap SummaryConfig.summary_tokens (the 1.5B model wrote 26 on average: reports/benchmarks.md, Context compression)"),
    "llm_extract_prompt_tokens": (627.0, "LLM graph extraction, 40 HotpotQA chunks (reports/benchmarks.md, Graph retrieval)"),
    "llm_extract_completion_tokens": (422.0, "same run"),
    "llm_extract_calls_per_chunk": (1.1, "44 calls for 40 chunks (retries) (same run)"),
    "spacy_chunks_per_s_per_core": (23.9, "spaCy extractor, 1,971 HotpotQA paragraphs, 1 process, busy 2-core machine (reports/benchmarks.md, Graph extractors)"),
    "embed_texts_per_s_2core": (237.0, "all-MiniLM-L6-v2 on 2 CPU cores (../shared/MODELS.md)"),
    "nav_slates_per_query": (18.9, "navigation at 100k leaves, default B=2, N=10 (reports/benchmarks.md, Query cost)"),
    "nav_prompt_tokens_per_query": (39135.0, "same table: prompt tokens per query of the listwise slate scorer"),
    "nav_calls_growth_100x": (1.12, "calls(100k)/calls(1k) (same table): slates grow with depth, capped by N iterations"),
    "entities_per_chunk": (9.29, "spaCy graph of 430 HotpotQA chunks: 3,994 entities after resolution (runs of benchmarks/scale_out.py; falls as entities are shared in larger corpora)"),
    "relations_per_chunk": (11.3, "same graph: 4,870 relations"),
    "names_embedded_per_chunk": (13.1, "entity names embedded for resolution: spaCy entities per chunk (reports/benchmarks.md, Graph extractors)"),
    "chroma_bytes_per_vector": (5810.0, "Chroma folder / vectors stored (chunks + nodes + entity profiles; 384-d float32, HNSW, documents, metadata) of the same index; --index re-measures"),
    "bytes_text_per_chunk": (759.0, "chunks.jsonl / chunks (same index)"),
    "bytes_bm25_per_chunk": (680.0, "bm25/ / chunks (same index)"),
    "bytes_graph_per_chunk": (12250.0, "graph/ (entities with their mentions, relations, extraction journal) / chunks (same index)"),
    "bytes_tree_per_node": (163.0, "tree.json / nodes (same index)"),
    "chroma_query_ms_p50": (2.0, "k=10 query on the Chroma server, 1 client process; 16.9 ms with 8 at once (reports/benchmarks.md, Scale-out)"),
}


@dataclass(frozen=True)
class Serving:
    """Stated (not measured here: no GPU in these sessions) serving throughputs per GPU."""

    prefill_tps: float = 20_000.0  # vLLM, an 8B model in bf16 on one H100, batched prefill
    decode_tps: float = 2_500.0  # vLLM, same, aggregate decode with continuous batching
    embed_tps: float = 10_000.0  # MiniLM-class encoder on one GPU
    gpu: str = "H100"


def m(key: str) -> float:
    return MEASURED[key][0]


def tree_shape(n: int, max_children: int = 12, fill: float = 0.8) -> list[int]:
    """Nodes per level of a bottom-up tree over ``n`` leaves (the builder's arithmetic)."""
    from branchwise.indexing.cluster import n_groups

    levels, cur = [n], n
    while cur > max_children:
        cur = n_groups(cur, max_children, fill)
        levels.append(cur)
    levels.append(1)
    return levels


def plan(n: int, shard: int, serving: Serving, max_children: int = 12) -> dict[str, Any]:
    shards = max(1, math.ceil(n / shard))
    per_shard = math.ceil(n / shards)
    shape = tree_shape(per_shard, max_children)
    router = tree_shape(shards, max_children) if shards > 1 else [1]
    internal = shards * (sum(shape) - per_shard) + (sum(router) - shards if shards > 1 else 0)
    # build: LLM summaries (one call per internal node), graph extraction, embeddings, clustering
    sum_prompt = internal * m("summary_prompt_tokens")
    sum_completion = internal * m("summary_completion_tokens")
    sum_gpu_h = (sum_prompt / serving.prefill_tps + sum_completion / serving.decode_tps) / 3600
    ext_calls = n * m("llm_extract_calls_per_chunk")
    ext_prompt = ext_calls * m("llm_extract_prompt_tokens")
    ext_completion = ext_calls * m("llm_extract_completion_tokens")
    ext_gpu_h = (ext_prompt / serving.prefill_tps + ext_completion / serving.decode_tps) / 3600
    spacy_core_h = n / m("spacy_chunks_per_s_per_core") / 3600
    # chunks, node summaries, entity names (resolution) and entity profiles (lookup) of the spaCy graph
    embed_texts = n * (1 + m("names_embedded_per_chunk") + m("entities_per_chunk")) + internal
    embed_gpu_h = embed_texts / serving.embed_tps / 3600
    embed_cpu_core_h = embed_texts / (m("embed_texts_per_s_2core") / 2) / 3600
    cluster_core_h = n * m("cluster_s_per_chunk") * math.log(per_shard) / math.log(1e6) / 3600
    # storage
    vectors = n * (1 + m("entities_per_chunk")) + internal
    other = n * (m("bytes_text_per_chunk") + m("bytes_bm25_per_chunk") + m("bytes_graph_per_chunk")) \
        + internal * m("bytes_tree_per_node")
    storage = vectors * m("chroma_bytes_per_vector") + other
    pq_storage = vectors * (64 + 8) + other  # 64-byte PQ code + id per vector; texts stay in the other files
    # per query: navigation slates grow with depth only through the iteration cap; the forest adds
    # routing slates (beam 2 over the router tree) and navigates the 2 best shards
    depth = len(shape) - 1
    growth = m("nav_calls_growth_100x") ** max(0.0, math.log(per_shard / 1e5, 100))
    slates = m("nav_slates_per_query") * growth * (2 if shards > 1 else 1) + (2 * (len(router) - 1) if shards > 1 else 0)
    tokens_per_slate = m("nav_prompt_tokens_per_query") / m("nav_slates_per_query")
    q_prompt = slates * tokens_per_slate
    q_gpu_s = q_prompt / serving.prefill_tps + slates * 60 / serving.decode_tps  # ~60 output tokens per JSON slate
    return {
        "chunks": n, "shards": shards, "chunks/shard": per_shard, "shard tree levels (leaves→root)": shape,
        "router levels": router if shards > 1 else [], "depth (shard tree)": depth,
        "depth (with router)": depth + (len(router) - 1 if shards > 1 else 0), "internal nodes": internal,
        "LLM summary calls": internal, "summary tokens (prompt+completion)": sum_prompt + sum_completion,
        f"summary GPU-h ({serving.gpu})": sum_gpu_h,
        "LLM extraction calls": ext_calls, "LLM extraction tokens": ext_prompt + ext_completion,
        f"LLM extraction GPU-h ({serving.gpu})": ext_gpu_h, "spaCy extraction core-h": spacy_core_h,
        "embedded texts": embed_texts, f"embedding GPU-h ({serving.gpu})": embed_gpu_h,
        "embedding CPU core-h": embed_cpu_core_h, "clustering core-h": cluster_core_h,
        "clustering peak GB per shard": m("tree_peak_gb_per_1m") * per_shard / 1e6,
        "vectors (chunks, nodes, entities)": vectors,
        "storage TB (as Chroma stores it)": storage / 1e12, "storage TB (64-byte PQ codes)": pq_storage / 1e12,
        "float32 vectors in RAM TB": vectors * 384 * 4 / 1e12,
        "slates per query": slates, "prompt tokens per query": q_prompt,
        f"GPU-s per query ({serving.gpu})": q_gpu_s,
        f"queries/s per {serving.gpu} (navigation only)": 1 / q_gpu_s,
    }


def measure_storage(index_dir: Path) -> dict[str, float]:
    """Bytes per chunk / node of a built index directory (refreshes the storage constants)."""
    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else (p.stat().st_size if p.exists() else 0)

    manifest = json.loads((index_dir / "manifest.json").read_text())
    chunks = manifest["counts"]["chunks"]
    nodes = manifest["counts"].get("nodes", chunks)
    graph = json.loads((index_dir / "graph" / "meta.json").read_text())["counts"] if (index_dir / "graph").is_dir() else {}
    vectors = chunks + (nodes - chunks) + graph.get("entities", 0)
    return {"chroma_bytes_per_vector": size(index_dir / "chroma") / vectors,
            "entities_per_chunk": graph.get("entities", 0) / chunks,
            "relations_per_chunk": graph.get("relations", 0) / chunks,
            "bytes_text_per_chunk": size(index_dir / "chunks.jsonl") / chunks,
            "bytes_bm25_per_chunk": size(index_dir / "bm25") / chunks,
            "bytes_graph_per_chunk": size(index_dir / "graph") / chunks,
            "bytes_tree_per_node": size(index_dir / "tree.json") / nodes}


def measure_summary_prompt(data: Path) -> float:
    """Mean LLM-summary prompt tokens per internal node, from the dry-run planner on HotpotQA."""
    import numpy as np

    from branchwise.indexing.plan import plan_build
    from branchwise.indexing.summarize import SummaryConfig
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.retrieval.index import embedding_text
    from branchwise.types import Chunk

    chunks, seen = [], set()
    for line in data.open(encoding="utf-8"):
        for title, sents in json.loads(line)["context"]:
            if title not in seen:
                seen.add(title)
                chunks.append(Chunk(f"{title}#0", title, "".join(sents), title=title))
    # the prompt size depends on how many children a node has and how long their texts are, not on
    # which chunks are grouped: a hashing embedder clusters them in seconds
    from branchwise.testing import HashingEmbedder

    emb = HashingEmbedder(dim=256)
    vecs = np.asarray(emb.embed([embedding_text(c) for c in chunks]), dtype=np.float32)
    p = plan_build(chunks, vecs, TreeConfig(summary=SummaryConfig(mode="llm")))
    return p.prompt_tokens / max(1, p.llm_calls)


def fmt(v: Any) -> str:
    if isinstance(v, list):
        return " → ".join(f"{x:,}" for x in v)
    if isinstance(v, float):
        return f"{v:,.3g}" if v < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000000,1000000000")
    ap.add_argument("--shard", type=int, default=10_000_000, help="chunks per shard tree (default 10M)")
    ap.add_argument("--prefill-tps", type=float, default=Serving.prefill_tps)
    ap.add_argument("--decode-tps", type=float, default=Serving.decode_tps)
    ap.add_argument("--embed-tps", type=float, default=Serving.embed_tps)
    ap.add_argument("--index", type=Path, default=None, help="re-measure storage per chunk from this built index")
    ap.add_argument("--measure-summaries", type=Path, default=None, metavar="HOTPOT_JSONL",
                    help="re-measure the summary prompt tokens per node with the dry-run planner")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.index:
        for k, v in measure_storage(args.index).items():
            MEASURED[k] = (round(v, 1), f"measured from {args.index}")
    if args.measure_summaries:
        MEASURED["summary_prompt_tokens"] = (round(measure_summary_prompt(args.measure_summaries), 1),
                                             f"dry-run planner on {args.measure_summaries}")
    serving = Serving(args.prefill_tps, args.decode_tps, args.embed_tps)
    plans = [plan(int(n), args.shard, serving) for n in args.sizes.split(",")]
    if args.json:
        print(json.dumps({"measured": MEASURED, "serving": serving.__dict__, "plans": plans}, indent=1, default=str))
        return
    print(f"Serving (stated): {serving.prefill_tps:,.0f} prefill tok/s, {serving.decode_tps:,.0f} decode tok/s, "
          f"{serving.embed_tps:,.0f} embeddings/s per {serving.gpu}; shard = {args.shard:,} chunks\n")
    print("| | " + " | ".join(f"{p['chunks']:,} chunks" for p in plans) + " |")
    print("|---|" + "---|" * len(plans))
    for key in plans[0]:
        print(f"| {key} | " + " | ".join(fmt(p[key]) for p in plans) + " |")
    print("\nMeasured inputs:\n")
    for k, (v, src) in MEASURED.items():
        print(f"- `{k}` = {v:g} — {src}")


if __name__ == "__main__":
    main()
