"""``branchwise add`` and ``branchwise delete``: incremental updates of a built index.

    branchwise add my-index notes/new.md more-notes/ extra.jsonl
    branchwise delete my-index new.md extra-record-7
    branchwise delete my-index --list

Only what changed is embedded and re-summarised (see :mod:`branchwise.indexing.incremental`).
The embedder is the one recorded in the index's manifest; the LLM (needed to refresh
LLM-written summaries, and for graph extraction of added chunks) is ``--llm``, else
``$BRANCHWISE_LLM``, else the one the index was built with, else the embedded default: the
rule of :func:`branchwise.assembly.root.update_llm`, which ``bw.add_documents`` follows too.
"""

from __future__ import annotations

import argparse

from branchwise.cli.options import add_ingest_options, add_model_options, ingest_settings, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("add", help="add (or replace) documents in a built index, refreshing only the touched summaries",
                       description="Ingest files, folders or .jsonl corpora into an existing index: chunk, embed, add to "
                                   "Chroma, BM25 and the tree (and the graph, if built); only the summaries on the "
                                   "touched tree paths are rewritten. A document whose id is already indexed is "
                                   "replaced if its text changed (file ids are paths relative to the folder passed, "
                                   "or the file name for a single file; JSONL records use their id).")
    a.add_argument("dir", help="index directory (from `branchwise index`)")
    a.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or .jsonl files to add")
    a.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_ingest_options(a)
    add_model_options(a)
    a.set_defaults(func=run_add)

    d = sub.add_parser("delete", help="delete documents from a built index (chunks, vectors, BM25, tree, graph)",
                       description="Remove documents by id from every part of an index; empty tree nodes are pruned "
                                   "and the summaries on the touched paths rewritten.")
    d.add_argument("dir", help="index directory (from `branchwise index`)")
    d.add_argument("doc_ids", nargs="*", metavar="DOC_ID", help="ids of the documents to delete (see --list)")
    d.add_argument("--list", action="store_true", help="list the indexed document ids (and their chunk counts) and exit")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_model_options(d)
    d.set_defaults(func=run_delete)


def _open(args: argparse.Namespace):  # -> (Index, Settings)
    from branchwise.assembly.root import load_embedder, open_index

    settings = ingest_settings(settings_from_args(args), args)
    embedder = load_embedder(settings, args.embedder) if args.embedder else None
    return open_index(args.dir, embedder=embedder, check=False), settings  # an update repairs what it can


def run_add(args: argparse.Namespace) -> int:
    from branchwise.assembly.root import add_documents

    idx, settings = _open(args)
    report = add_documents(idx, args.paths, settings, progress=not args.no_progress)
    print(f"updated index {idx.path}")
    for label, ids in (("added", report.added), ("replaced", report.replaced), ("unchanged, skipped", report.unchanged)):
        if ids:
            print(f"  {label}: {', '.join(ids[:10])}" + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""))
    print("  " + report.format().replace("\n", "\n  "))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from branchwise.assembly.root import delete_documents
    from branchwise.errors import InputError

    idx, settings = _open(args)
    if args.list:
        for doc_id in idx.chunks.doc_ids():
            print(f"{doc_id}\t{len(idx.chunks.by_doc(doc_id))} chunks")
        return 0
    if not args.doc_ids:
        raise InputError("no document ids given.", fix=f"pass ids to delete; list them with `branchwise delete {args.dir} --list`.")
    report = delete_documents(idx, args.doc_ids, settings, progress=not args.no_progress)
    print(f"updated index {idx.path}")
    print(f"  deleted: {', '.join(report.deleted)}")
    print("  " + report.format().replace("\n", "\n  "))
    return 0
