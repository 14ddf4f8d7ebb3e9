"""``branchwise index`` (build / dry run) and ``branchwise info``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from branchwise.errors import BranchwiseError

from branchwise.cli.options import add_ingest_options, add_model_options, ingest_settings, settings_from_args

#: builds estimated to take longer than this ask first (``--yes`` skips the question)
CONFIRM_OVER_S = 30 * 60


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build (or resume) an index of a folder, file or JSONL corpus",
                       description="Ingest, chunk, embed, build the semantic tree and the entity graph (spaCy by default). "
                                   "Rerunning an interrupted build resumes it. --workers N / --cluster ADDR run "
                                   "the build on Dask.")
    p.add_argument("path", help="folder of .txt/.md/.html/.pdf files, one such file, or a .jsonl file of {id, text, title} records")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to create or resume")
    p.add_argument("--dry-run", action="store_true", help="print the tree shape, LLM calls and estimated tokens/time; write nothing")
    p.add_argument("--strategy", choices=["bottom_up", "top_down"], default="bottom_up", help="tree construction (default: bottom_up)")
    p.add_argument("--max-children", type=int, default=12, metavar="M", help="maximum branching factor (default: 12)")
    p.add_argument("--summaries", choices=["llm", "extractive"], default="llm", help="internal-node summaries (default: llm)")
    p.add_argument("--summary-tokens", type=int, default=None, metavar="N", help="token budget per summary")
    from branchwise.graph.registry import EXTRACTORS

    p.add_argument("--graph", choices=["auto", "on", "off"], default=None,
                   help="entity graph: auto (the default: built when the extractor can run — the spaCy extractor "
                        "whenever spaCy's English model is installed, the LLM extractor when the build has an LLM), "
                        "on (always; fail if the extractor cannot run) or off")
    p.add_argument("--graph-extractor", choices=EXTRACTORS.names(), default=None,
                   help="how the graph is extracted (default: spacy). " + EXTRACTORS.help())
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="build on a Dask LocalCluster of N worker processes on 127.0.0.1 (embedding, leaf "
                        "clustering, summaries and graph extraction run as Dask tasks; same index as without)")
    p.add_argument("--cluster", default=None, metavar="ADDR",
                   help="build on a running Dask scheduler, e.g. tcp://host:8786 (overrides --workers)")
    p.add_argument("--partitions", type=int, default=None, metavar="P",
                   help="independent clustering pieces per tree level on Dask (default: 2 x workers)")
    p.add_argument("--chunk-tokens", type=int, default=None, metavar="N", help="chunk size in tokens")
    p.add_argument("--overlap-tokens", type=int, default=None, metavar="N", help="chunk overlap in tokens")
    p.add_argument("--store", metavar="SPEC", help="vector store: chroma (in the index dir) or chroma+http://127.0.0.1:8000")
    p.add_argument("--overwrite", action="store_true", help="replace an index of another corpus/embedder at --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--yes", action="store_true",
                   help="start a build estimated at over 30 minutes without asking (the estimate is still printed)")
    add_ingest_options(p)
    add_model_options(p)
    p.set_defaults(func=run_index)

    q = sub.add_parser("info", help="show an index: manifest, tree depth and branching histogram, graph size")
    q.add_argument("dir", help="index directory")
    q.add_argument("--json", action="store_true", help="print JSON instead of text")
    q.set_defaults(func=run_info)


def index_settings_from_args(args: argparse.Namespace):  # -> Settings
    """The :class:`branchwise.Settings` of ``branchwise index``: its options over ``Settings.index``."""
    settings = ingest_settings(settings_from_args(args), args)
    cfg = settings.index
    chunking = dataclasses.replace(cfg.chunk.chunking, **{k: v for k, v in (
        ("chunk_tokens", args.chunk_tokens), ("overlap_tokens", args.overlap_tokens)) if v is not None})
    summary = dataclasses.replace(cfg.tree.summary, mode=args.summaries, **(
        {"summary_tokens": args.summary_tokens} if args.summary_tokens is not None else {}))
    tree = dataclasses.replace(cfg.tree, strategy=args.strategy, max_children=args.max_children, summary=summary)
    chunk = dataclasses.replace(cfg.chunk, chunking=chunking, overwrite=args.overwrite)
    changes = {"chunk": chunk, "tree": tree}
    for name, value in (("graph", args.graph), ("graph_extractor", args.graph_extractor), ("workers", args.workers),
                        ("cluster", args.cluster), ("partitions", args.partitions)):
        if value is not None:
            changes[name] = value
    return settings.replace(index=changes)


def run_index(args: argparse.Namespace) -> int:
    from branchwise.assembly.root import build_index, plan_index
    from branchwise.retrieval.ingest import require_source

    require_source(args.path)  # fail before the models load
    settings = index_settings_from_args(args)
    progress = not args.no_progress
    if args.dry_run:
        print(plan_index(args.path, settings, progress=progress).format())
        return 0
    _confirm_long_build(args, settings)
    out = Path(args.out)
    new = not out.exists()
    try:
        idx = build_index(args.path, args.out, settings, progress=progress)
    except BranchwiseError:
        if new and out.is_dir() and not (out / "manifest.json").exists():
            shutil.rmtree(out, ignore_errors=True)  # failed before the index began: leave nothing behind
        raise
    print(f"index ready at {idx.path}")
    print(describe_index(idx))
    _print_skipped(idx)
    return 0


def _confirm_long_build(args: argparse.Namespace, settings) -> None:
    """Print the estimate of a long new build and ask (a terminal) or refuse without --yes."""
    import sys

    from branchwise.errors import InputError
    from branchwise.indexing.preflight import estimate_build
    from branchwise.retrieval.ingest import check_file_size

    if (Path(args.out) / "manifest.json").exists():
        return  # resuming or rebuilding: asked when it started
    est = estimate_build(args.path, settings.index)
    for path, size in est.oversize:  # an error ingestion would meet, before the models load
        check_file_size(Path(path), size, settings.index.chunk.ingest)
    if est.total_s <= CONFIRM_OVER_S:
        return
    print("This build looks long: " + est.format().replace("\n", "\n  "), file=sys.stderr)
    cheaper = " --summaries extractive" if settings.index.tree.summary.mode == "llm" else ""
    if args.yes:
        return
    if sys.stdin.isatty():
        if input("Start it? [y/N] ").strip().lower() in ("y", "yes"):
            return
        raise InputError("build not started.", fix=f"see the plan with --dry-run, or make it cheaper (e.g.{cheaper} "
                                                      "or --max-file-mb to leave out huge files).")
    raise InputError(f"this build is estimated at ~{est.total_s / 3600:.1f} h ({est.chunks:,} chunks, "
                     f"{est.summaries:,} LLM summaries).",
                     fix=f"pass --yes to start it anyway, see the exact plan with --dry-run, or make it cheaper"
                         f"{' with' + cheaper if cheaper else ''}.")


def _print_skipped(idx) -> None:
    skipped = idx.manifest.extra.get("ingest", {}).get("skipped", [])
    n = idx.manifest.extra.get("ingest", {}).get("n_skipped", len(skipped))
    if n:
        print(f"  left out {n} input(s):")
        for s in skipped[:20]:
            print(f"    {s['where']}: {s['reason']}")
        if n > 20:
            print(f"    ... (+{n - 20} more; all in manifest.json, extra.ingest.skipped, up to 100)")


def index_info(idx) -> dict:
    m = idx.manifest
    problems = idx.problems(deep=True)
    info = {"path": str(idx.path), "manifest": m.to_dict() if hasattr(m, "to_dict") else vars(m),
            "problems": [{"stage": p.stage, "message": p.message} for p in problems]}
    broken = {p.stage for p in problems}
    if "tree" not in broken and idx.tree is not None:
        info["tree"] = idx.tree.stats()
    if m.stage_done("graph") and "graph" not in broken:
        from branchwise.errors import IndexFormatError
        from branchwise.graph.types import KnowledgeGraph

        try:
            g = KnowledgeGraph.load(idx.graph_dir)
            info["graph"] = {"entities": len(g), "relations": g.n_relations}
        except IndexFormatError as e:
            info["problems"].append({"stage": "graph", "message": e.message})
    if info["problems"]:
        from branchwise.retrieval.consistency import IndexProblem

        info["fix"] = idx.repair_hint([IndexProblem(**p) for p in info["problems"]])
    return info


def describe_index(idx) -> str:
    info = index_info(idx)
    m = info["manifest"]
    lines = [f"index {info['path']}",
             f"  embedder: {m.get('embedder', {}).get('name')} (dim {m.get('embedder', {}).get('dim')})",
             f"  counts: {m.get('counts')}",
             f"  stages: {m.get('stages')}"]
    broken = {p["stage"] for p in info["problems"]}
    t = info.get("tree")
    if t:
        lines += [f"  tree: {t['strategy']}, depth {t['depth']}, {t['leaves']} leaves, {t['internal']} internal nodes "
                  f"(max {t['max_children']} children, {t['stale']} stale)",
                  "  branching histogram (children: nodes): " + ", ".join(f"{k}: {v}" for k, v in t["branching_histogram"].items()),
                  "  nodes per level: " + ", ".join(f"L{k}: {v}" for k, v in t["nodes_per_level"].items())]
    else:
        lines.append("  tree: BROKEN (see the problems below)" if "tree" in broken else "  tree: not built")
    g = info.get("graph")
    lines.append(f"  graph: {g['entities']} entities, {g['relations']} relations" if g else
                 "  graph: BROKEN (see the problems below)" if "graph" in broken else "  graph: not built")
    if info["problems"]:
        lines.append(f"  PROBLEMS ({len(info['problems'])}): this index cannot answer questions until repaired")
        lines += [f"    - {p['message']}" for p in info["problems"]]
        lines.append(f"  Fix: {info['fix']}")
    return "\n".join(lines)


class _RecordedEmbedder:
    """The manifest's embedder by name and size only: ``info`` describes an index without loading
    its model (or needing the credentials a recorded endpoint spec was stripped of)."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def embed(self, texts):  # type: ignore[no-untyped-def]
        raise RuntimeError("branchwise info does not embed")  # pragma: no cover - never called

    def embed_query(self, text):  # type: ignore[no-untyped-def]
        raise RuntimeError("branchwise info does not embed")  # pragma: no cover - never called


def run_info(args: argparse.Namespace) -> int:
    from branchwise.retrieval.index import Index
    from branchwise.retrieval.manifest import Manifest
    from branchwise.retrieval.store import StoreUnreadable

    manifest = Manifest.load(args.dir)
    try:
        idx = Index.open(args.dir, embedder=_RecordedEmbedder(manifest.embedder.name, manifest.embedder.dim),
                         check=False, warn_unfinished=False)
    except StoreUnreadable as e:  # what the manifest says, and the problem
        info = {"path": args.dir, "manifest": manifest.to_dict(),
                "problems": [{"stage": "embeddings", "message": e.message}], "fix": e.fix}
        print(json.dumps(info, indent=2, default=str) if args.json else
              f"index {args.dir}\n  stages: {info['manifest']['stages']}\n  PROBLEMS (1): {e.message}\n  Fix: {e.fix}")
        return 1
    info = index_info(idx)
    print(json.dumps(info, indent=2, default=str) if args.json else describe_index(idx))
    return 1 if info["problems"] else 0
