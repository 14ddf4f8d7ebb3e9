"""``branchwise ask`` and ``branchwise demo``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from branchwise.cli.options import add_agent_options, add_model_options, settings_from_args

DEMO_QUESTION = "Why does branchwise calibrate relevance scores across slates, and how is path relevance computed?"
#: longest question accepted (as ``branchwise serve``'s ``max_question_chars``): ~1000 tokens,
#: which leaves room for the evidence in the embedded model's 4096-token context
MAX_QUESTION_CHARS = 4000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question over an index, with citations and the tree path")
    p.add_argument("dir", help="index directory (from `branchwise index`)")
    p.add_argument("question", help="the question")
    add_agent_options(p)
    p.add_argument("--trace", metavar="FILE", help="save the full agent trace (JSON) here")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_model_options(p, llm=True)
    p.set_defaults(func=run_ask)

    d = sub.add_parser("demo", help="index branchwise's own docs with the embedded models and answer a question")
    d.add_argument("--out", default="demo-index", metavar="DIR", help="where to build the demo index (default: ./demo-index)")
    d.add_argument("--question", default=DEMO_QUESTION, help="question to ask")
    d.add_argument("--summaries", choices=["llm", "extractive"], default="llm", help="tree summaries (default: llm)")
    add_agent_options(d)
    d.add_argument("--trace", metavar="FILE", help="save the full agent trace (JSON) here")
    add_model_options(d, llm=True)
    d.set_defaults(func=run_demo, json=False)


def _ask(index_dir: str | Path, question: str, args: argparse.Namespace, llm: Any = None) -> int:
    import dataclasses

    from branchwise.assembly.root import build_agent, load_embedder, open_index
    from branchwise.cli.render import render_answer
    from branchwise.retrieval.manifest import Manifest

    check_question(question)
    Manifest.load(Path(index_dir))  # a wrong path fails here, before the models load
    settings = settings_from_args(args)
    # --embedder: the index's own embedder given again (e.g. with the credentials its recorded
    # spec was stripped of); without it, the spec recorded in the manifest
    given = getattr(args, "embedder", None)
    index = open_index(index_dir, embedder=load_embedder(settings, given) if given else None)
    t0 = time.perf_counter()
    with build_agent(index, settings, llm=llm) as agent:
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


def check_question(question: str) -> None:
    """InputError for an empty or over-long question (before any model loads)."""
    from branchwise.errors import InputError

    if not question.strip():
        raise InputError("the question is empty.", fix="pass a question, e.g. `branchwise ask DIR \"What is X?\"`.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}.",
                         fix="ask a shorter question; put long material into the index instead "
                             "(`branchwise add DIR FILE`) and ask about it.")


def run_ask(args: argparse.Namespace) -> int:
    return _ask(args.dir, args.question, args)


def run_demo(args: argparse.Namespace) -> int:
    from branchwise.assembly.root import build_index, load_llm
    from branchwise.cli.index_cmd import describe_index
    from branchwise.facade import demo_corpus_dir

    settings = settings_from_args(args)
    tree = settings.index.tree
    tree = dataclasses.replace(tree, max_children=4,
                               summary=dataclasses.replace(tree.summary, mode=args.summaries, summary_tokens=64))
    settings = settings.replace(index={"tree": tree})
    t0 = time.perf_counter()
    print(f"Building the demo index of {demo_corpus_dir()} in {args.out} ...")
    llm = load_llm(settings)  # loaded once: for the summaries and for the answer
    idx = build_index(demo_corpus_dir(), args.out, settings, llm=llm)
    print(describe_index(idx))
    print(f"(index ready in {time.perf_counter() - t0:.1f} s)\n")
    return _ask(args.out, args.question, args, llm=llm)
