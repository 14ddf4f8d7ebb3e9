"""``branchwise eval``, ``branchwise udcg-study`` and ``branchwise eval-report``.

    branchwise eval --dataset hotpotqa --data ../shared/data/hotpotqa/dev_distractor_200.jsonl \\
        --systems bm25,dense,hybrid,naive_rag --limit 50 --out runs/hotpotqa --llm default
    branchwise udcg-study --run runs/hotpotqa --llm default
    branchwise eval-report --runs runs/cranfield runs/vaswani runs/hotpotqa --out reports
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``eval``, ``udcg-study`` and ``eval-report`` subcommands."""
    p = subparsers.add_parser("eval", help="evaluate systems on a QA or IR dataset (resumable)",
                              description="Run retrieval / QA systems side by side on one index and write "
                                          "results.jsonl, summary.md/json and PNG plots into --out.")
    from branchwise.evals.datasets import DATASETS

    p.add_argument("--dataset", choices=DATASETS.names(), metavar="NAME", help=DATASETS.help())
    p.add_argument("--data", type=Path, help="the dataset file or folder (default: its place under "
                                             "$BRANCHWISE_SHARED_DATA, if known)")
    p.add_argument("--systems", help="comma-separated system names (see --list-systems)")
    p.add_argument("--limit", type=int, default=None, help="first N questions only")
    p.add_argument("--out", type=Path, help="run folder (created; rerun the same command to resume)")
    p.add_argument("--index", type=Path, default=None, help="build/reuse the index here instead of OUT/index")
    p.add_argument("--llm", default=None, help="LLM spec for QA systems (default: $BRANCHWISE_LLM or none)")
    p.add_argument("--embedder", default=None, help="embedder spec (default: $BRANCHWISE_EMBEDDER or 'default')")
    p.add_argument("--k", type=int, default=10, help="chunks retrieved per question for the retrieval metrics")
    p.add_argument("--rag-k", type=int, default=5, help="chunks naive RAG gives the generator")
    p.add_argument("--answer-style", choices=("short", "sentence"), default="short",
                   help="how QA systems answer: short = the answer span + citation (what EM/F1 score), "
                        "sentence = one cited sentence (default: short)")
    p.add_argument("--workers", type=int, default=4,
                   help="threads: parallel questions for HTTP (openai:) LLM backends, in this process "
                        "(for processes on Dask see --dask-workers)")
    p.add_argument("--dask-workers", type=int, default=0, metavar="N",
                   help="map questions over a Dask LocalCluster of N worker processes on 127.0.0.1, "
                        "each with its own models (what `branchwise index --workers N` uses)")
    p.add_argument("--cluster", default=None, metavar="ADDR",
                   help="map questions over a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--tree-summaries", choices=("llm", "extractive"), default="llm",
                   help="how to summarise the tree when a system needs one (llm: one call per node)")
    p.add_argument("--block", type=int, default=0, metavar="N",
                   help="run every system on N questions before the next N (a stopped run then has paired "
                        "results so far; 0: each system runs all questions in turn)")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: write the report from the results so far, on the questions every system answered")
    p.add_argument("--reference", default=None, help="system the paired tests compare against")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--list-systems", action="store_true", help="list the available systems and exit")
    p.set_defaults(func=_eval)

    s = subparsers.add_parser("udcg-study", help="correlate UDCG / nDCG / Recall with answer F1 on a finished run",
                              description="Score each retrieved passage's utility with the reader LLM "
                                          "(arXiv 2510.21440) and correlate the metrics with end-to-end F1.")
    s.add_argument("--run", type=Path, required=True, help="the --out folder of a `branchwise eval` QA run")
    s.add_argument("--llm", default=None, help="reader LLM spec (default: $BRANCHWISE_LLM or 'default')")
    s.add_argument("--k", type=int, default=5, help="passages per question")
    s.add_argument("--read-retrieval-only", action="store_true",
                   help="let the reader answer for retrieval-only systems too (more data points, more LLM calls)")
    s.set_defaults(func=_study)

    r = subparsers.add_parser("eval-report", help="gather finished eval runs into one committable report",
                              description="Write OUT/README.md (tables, UDCG study) and OUT/img/*.png from runs.")
    r.add_argument("--runs", type=Path, nargs="+", required=True, help="--out folders of finished runs")
    r.add_argument("--out", type=Path, required=True, help="report folder (e.g. reports/)")
    r.add_argument("--title", default="Evaluation report")
    r.add_argument("--preface", type=Path, default=None, help="markdown file placed before the tables")
    r.set_defaults(func=_collect)


def _eval(args: argparse.Namespace) -> int:
    from branchwise.errors import InputError
    from branchwise.evals.datasets import SHARED_PATHS, load_dataset
    from branchwise.evals.runner import EvalConfig, run_eval
    from branchwise.evals.systems import available_systems

    if args.list_systems:
        for name, spec in available_systems().items():
            needs = ", ".join(w for w, f in (("LLM", spec.needs_llm), ("tree", spec.needs_tree)) if f)
            print(f"{name:20s} {spec.description}" + (f"  [needs {needs}]" if needs else ""))
        return 0
    missing = [f"--{n}" for n, v in (("dataset", args.dataset), ("systems", args.systems), ("out", args.out)) if not v]
    if missing:
        raise InputError(f"missing {', '.join(missing)}.", fix="see `branchwise eval --help`.")
    data = args.data
    if data is None:
        shared = Path(os.environ.get("BRANCHWISE_SHARED_DATA", "../shared/data"))
        if args.dataset not in SHARED_PATHS:
            raise InputError(f"no default location for dataset {args.dataset!r}.", fix="pass --data PATH.")
        data = shared / SHARED_PATHS[args.dataset]
    dataset = load_dataset(args.dataset, data)
    from branchwise.cli.options import settings_from_args
    from branchwise.models.factory import make_embedder, make_llm

    settings = settings_from_args(args)
    llm_spec = settings.llm  # QA systems need an explicit LLM (--llm or $BRANCHWISE_LLM)
    config = EvalConfig(out_dir=args.out, limit=args.limit, k=args.k, rag_k=args.rag_k,
                        answer_style=args.answer_style, workers=args.workers,
                        index_dir=args.index, llm_spec=llm_spec, embedder_spec=settings.embedder,
                        tree_summaries=args.tree_summaries, reference=args.reference, seed=args.seed,
                        dask_workers=args.dask_workers, cluster=args.cluster, block=args.block, report_only=args.report_only,
                        settings=settings)
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    # No shared query-embedding cache: each system pays for its own query embeddings, so
    # latencies are comparable whatever order the systems run in.
    result = run_eval(dataset, names, config, embedder=make_embedder(settings.embedder, memory_cache=False),
                      llm_factory=(lambda: make_llm(llm_spec)) if llm_spec else None)
    print((result.out_dir / "summary.md").read_text())
    return 0


def _study(args: argparse.Namespace) -> int:
    from branchwise.assembly.root import load_llm
    from branchwise.cli.options import settings_from_args
    from branchwise.evals.study import StudyConfig, run_udcg_study

    llm = load_llm(settings_from_args(args))
    run_udcg_study(args.run, llm, StudyConfig(k=args.k, read_retrieval_only=args.read_retrieval_only))
    print((args.run / "udcg_study.md").read_text())
    return 0


def _collect(args: argparse.Namespace) -> int:
    from branchwise.evals.report import collect_reports

    preface = args.preface.read_text() if args.preface else ""
    path = collect_reports(args.runs, args.out, title=args.title, preface=preface)
    print(f"wrote {path}")
    return 0
