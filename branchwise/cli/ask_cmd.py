"""``branchwise ask`` and ``branchwise demo``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from branchwise.cli.options import add_model_options, settings_from_args

DEMO_QUESTION = "Why does branchwise calibrate relevance scores across slates, and how is path relevance computed?"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question over an index, with citations and the tree path")
    p.add_argument("dir", help="index directory (from `branchwise index`)")
    p.add_argument("question", help="the question")
    _agent_options(p)
    p.add_argument("--trace", metavar="FILE", help="save the full agent trace (JSON) here")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_model_options(p, llm=True)
    p.set_defaults(func=run_ask)

    d = sub.add_parser("demo", help="index branchwise's own docs with the embedded models and answer a question")
    d.add_argument("--out", default="demo-index", metavar="DIR", help="where to build the demo index (default: ./demo-index)")
    d.add_argument("--question", default=DEMO_QUESTION, help="question to ask")
    d.add_argument("--summaries", choices=["llm", "extractive"], default="llm", help="tree summaries (default: llm)")
    _agent_options(d)
    d.add_argument("--trace", metavar="FILE", help="save the full agent trace (JSON) here")
    add_model_options(d, llm=True)
    d.set_defaults(func=run_demo, json=False)


def _agent_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agent")
    g.add_argument("--scorer", choices=["embedding", "yesno", "llm"], default="embedding",
                   help="tree-navigation scorer (default: embedding; 0 LLM calls)")
    g.add_argument("--retrieval", choices=["auto", "tree", "hybrid", "dense", "bm25", "tree+hybrid"], default="auto",
                   help="retrieval route (default: auto = tree when present)")
    g.add_argument("--rounds", type=int, default=2, help="max retrieval rounds (default: 2)")
    g.add_argument("--beam", type=int, default=2, help="navigator beam width B (default: 2)")
    g.add_argument("--iterations", type=int, default=20, help="navigator iterations N (default: 20)")
    g.add_argument("--compression", choices=["none", "extractive", "abstractive", "color"], default="extractive",
                   help="context compression (default: extractive)")
    g.add_argument("--budget", type=int, default=None, metavar="TOKENS", help="context token budget for the generator")
    g.add_argument("--no-graph", action="store_true", help="do not use the graph index even if present")


def _ask(index_dir: str | Path, question: str, args: argparse.Namespace) -> int:
    import dataclasses

    from branchwise.agents.config import AgentConfig
    from branchwise.cli.render import render_answer
    from branchwise.facade import build_agent, load_models, open_index
    from branchwise.compression.base import CompressionConfig
    from branchwise.navigation.navigator import NavigatorConfig

    from branchwise.retrieval.manifest import Manifest

    Manifest.load(Path(index_dir))  # a wrong path fails here, before the models load
    settings = settings_from_args(args)
    embedder, llm = load_models(settings, need_llm=True)
    index = open_index(index_dir, embedder=embedder)
    config = AgentConfig(max_rounds=args.rounds, retrieval=args.retrieval)
    compression = CompressionConfig(mode=args.compression)
    if args.budget:
        config = dataclasses.replace(config, context_budget_tokens=args.budget)
        compression = dataclasses.replace(compression, budget_tokens=args.budget)
    nav = NavigatorConfig(beam=args.beam, iterations=args.iterations)
    t0 = time.perf_counter()
    with build_agent(index, llm=llm, config=config, scorer=args.scorer, navigator=nav, compression=compression,
                     use_graph=not args.no_graph) as agent:
        answer = agent.ask(question)
    if args.trace and answer.trace is not None:
        answer.trace.save(Path(args.trace))
    if args.json:
        print(json.dumps({"question": question, "answer": answer.text, "found": answer.found,
                          "citations": [dataclasses.asdict(c) for c in answer.citations],
                          "usage": dataclasses.asdict(answer.usage), "context_tokens": answer.context_tokens},
                         indent=2))
    else:
        print(f"Question: {question}")
        print(render_answer(answer, index))
        print(f"(answered in {time.perf_counter() - t0:.1f} s)")
    return 0


def run_ask(args: argparse.Namespace) -> int:
    return _ask(args.dir, args.question, args)


def demo_corpus_dir() -> Path:
    """The bundled demo corpus: branchwise's own documentation."""
    import branchwise

    return Path(branchwise.__file__).resolve().parent / "demo_corpus"


def run_demo(args: argparse.Namespace) -> int:
    from branchwise.cli.index_cmd import describe_index
    from branchwise.facade import load_models
    from branchwise.indexing.pipeline import IndexConfig, build_index
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.indexing.summarize import SummaryConfig

    settings = settings_from_args(args)
    embedder, llm = load_models(settings, need_llm=True)
    config = IndexConfig(
        chunk=IndexBuildConfig(embedder_spec=settings.embedder, llm_spec=settings.llm),
        tree=TreeConfig(max_children=4, summary=SummaryConfig(mode=args.summaries, summary_tokens=64)),
        graph="off",
    )
    t0 = time.perf_counter()
    print(f"Building the demo index of {demo_corpus_dir()} in {args.out} ...")
    idx = build_index(demo_corpus_dir(), args.out, embedder=embedder, llm=llm, config=config)
    print(describe_index(idx))
    print(f"(index ready in {time.perf_counter() - t0:.1f} s)\n")
    return _ask(args.out, args.question, args)
