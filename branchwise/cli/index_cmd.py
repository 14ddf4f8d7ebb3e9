"""``branchwise index`` (build / dry run) and ``branchwise info``."""

from __future__ import annotations

import argparse
import json

from branchwise.cli.options import add_model_options, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build (or resume) an index of a folder, file or JSONL corpus",
                       description="Ingest, chunk, embed, build the semantic tree and (optionally) the entity graph. "
                                   "Rerunning an interrupted build resumes it.")
    p.add_argument("path", help="folder of .txt/.md/.html/.pdf files, one such file, or a .jsonl file of {id, text, title} records")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to create or resume")
    p.add_argument("--dry-run", action="store_true", help="print the tree shape, LLM calls and estimated tokens/time; write nothing")
    p.add_argument("--strategy", choices=["bottom_up", "top_down"], default="bottom_up", help="tree construction (default: bottom_up)")
    p.add_argument("--max-children", type=int, default=12, metavar="M", help="maximum branching factor (default: 12)")
    p.add_argument("--summaries", choices=["llm", "extractive"], default="llm", help="internal-node summaries (default: llm)")
    p.add_argument("--summary-tokens", type=int, default=None, metavar="N", help="token budget per summary")
    p.add_argument("--graph", choices=["auto", "on", "off"], default="off",
                   help="entity graph: on/off, or auto = when an LLM is used (default: off; extraction costs one LLM call per chunk)")
    p.add_argument("--chunk-tokens", type=int, default=None, metavar="N", help="chunk size in tokens")
    p.add_argument("--overlap-tokens", type=int, default=None, metavar="N", help="chunk overlap in tokens")
    p.add_argument("--store", metavar="SPEC", help="vector store: chroma (in the index dir) or chroma+http://127.0.0.1:8000")
    p.add_argument("--overwrite", action="store_true", help="replace an index of another corpus/embedder at --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_model_options(p)
    p.set_defaults(func=run_index)

    q = sub.add_parser("info", help="show an index: manifest, tree depth and branching histogram, graph size")
    q.add_argument("dir", help="index directory")
    q.add_argument("--json", action="store_true", help="print JSON instead of text")
    q.set_defaults(func=run_info)


def index_config_from_args(args: argparse.Namespace):  # -> IndexConfig
    import dataclasses

    from branchwise.indexing.pipeline import IndexConfig
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.retrieval.chunking import ChunkingConfig
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.indexing.summarize import SummaryConfig

    chunking = ChunkingConfig()
    changes = {k: v for k, v in (("chunk_tokens", args.chunk_tokens), ("overlap_tokens", args.overlap_tokens)) if v is not None}
    chunking = dataclasses.replace(chunking, **changes)
    summary = SummaryConfig(mode=args.summaries)
    if args.summary_tokens is not None:
        summary = dataclasses.replace(summary, summary_tokens=args.summary_tokens)
    settings = settings_from_args(args)
    chunk = IndexBuildConfig(chunking=chunking, store=settings.store, overwrite=args.overwrite,
                             embedder_spec=settings.embedder, llm_spec=settings.llm)
    tree = TreeConfig(strategy=args.strategy, max_children=args.max_children, summary=summary)
    return IndexConfig(chunk=chunk, tree=tree, graph=args.graph)


def run_index(args: argparse.Namespace) -> int:
    from branchwise.facade import load_models
    from branchwise.indexing.pipeline import build_index, plan_index
    from branchwise.retrieval.ingest import require_source

    require_source(args.path)  # fail before the models load
    config = index_config_from_args(args)
    needs_llm = config.needs_llm() or config.graph == "auto"
    embedder, llm = load_models(settings_from_args(args), need_llm=needs_llm)
    progress = not args.no_progress
    if args.dry_run:
        print(plan_index(args.path, embedder=embedder, llm=llm, config=config, progress=progress).format())
        return 0
    idx = build_index(args.path, args.out, embedder=embedder, llm=llm, config=config, progress=progress)
    print(f"index ready at {idx.path}")
    print(describe_index(idx))
    return 0


def index_info(idx) -> dict:
    m = idx.manifest
    info = {"path": str(idx.path), "manifest": m.to_dict() if hasattr(m, "to_dict") else vars(m)}
    if idx.tree is not None:
        info["tree"] = idx.tree.stats()
    if m.stage_done("graph"):
        from branchwise.graph.types import KnowledgeGraph

        g = KnowledgeGraph.load(idx.graph_dir)
        info["graph"] = {"entities": len(g), "relations": g.n_relations}
    return info


def describe_index(idx) -> str:
    info = index_info(idx)
    m = info["manifest"]
    lines = [f"index {info['path']}",
             f"  embedder: {m.get('embedder', {}).get('name')} (dim {m.get('embedder', {}).get('dim')})",
             f"  counts: {m.get('counts')}",
             f"  stages: {m.get('stages')}"]
    t = info.get("tree")
    if t:
        lines += [f"  tree: {t['strategy']}, depth {t['depth']}, {t['leaves']} leaves, {t['internal']} internal nodes "
                  f"(max {t['max_children']} children, {t['stale']} stale)",
                  "  branching histogram (children: nodes): " + ", ".join(f"{k}: {v}" for k, v in t["branching_histogram"].items()),
                  "  nodes per level: " + ", ".join(f"L{k}: {v}" for k, v in t["nodes_per_level"].items())]
    else:
        lines.append("  tree: not built")
    g = info.get("graph")
    lines.append(f"  graph: {g['entities']} entities, {g['relations']} relations" if g else "  graph: not built")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    from branchwise.retrieval.index import Index

    idx = Index.open(args.dir)
    if args.json:
        print(json.dumps(index_info(idx), indent=2, default=str))
    else:
        print(describe_index(idx))
    return 0
