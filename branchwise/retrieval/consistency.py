"""Is an index fit to answer? The checks behind :meth:`Index.open` (which refuses an index
with problems), ``branchwise info`` (which reports them), a resuming build and the updates
(which repair them), and the command that repairs each.

A problem names the build stage to redo (``chunks``, ``embeddings``, ``bm25``, ``tree``,
``graph``), ``update`` (an interrupted ``add`` / ``delete``), or ``store`` (a vector store whose
ids and vectors disagree, seen after a kill -9 landed while Chroma flushed its HNSW files:
rebuilt from ``chunks.jsonl``). The cheap checks (file presence, counts, the tree's leaves
against the chunks) run on every open; ``deep`` ones (loading BM25, reading back and
searching every stored vector) run in ``info``, a resuming build and after an interrupted
update.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from branchwise.errors import BranchwiseError, IndexFormatError
from branchwise.retrieval.bm25 import BM25_DIR
from branchwise.retrieval.chunkstore import CHUNKS_FILE
from branchwise.retrieval.index import CHUNKS, ENTITIES, NODES, TREE_FILE

if TYPE_CHECKING:
    from branchwise.retrieval.index import Index


@dataclass(frozen=True, slots=True)
class IndexProblem:
    """Something that makes an index unfit to answer: ``stage`` is the build stage to redo
    (``chunks``, ``embeddings``, ``bm25``, ``tree``, ``graph``), ``update``, or ``store`` (the
    vector store must be rebuilt from ``chunks.jsonl``);
    ``repairable`` when the next ``branchwise add`` / ``delete`` repairs it (what an
    interrupted update leaves: leftover vectors, leaves out of step, stale counts, BM25)."""

    stage: str
    message: str
    repairable: bool = False


def find_problems(index: "Index", *, deep: bool = False) -> list["IndexProblem"]:
    """What would make this index answer wrongly: unfinished build stages, an interrupted
    update, and finished stages whose files or vectors are missing or out of step. Cheap
    checks only (file presence, counts, the tree's leaves against the chunks); ``deep``
    also loads the BM25 index and reads back every stored vector."""
    m, out = index.manifest, []
    out += [IndexProblem(s, f"its build stopped during the {s!r} stage") for s, st in m.stages.items() if st != "done"]
    pending = m.extra.get("update_in_progress")
    if pending:
        out.append(IndexProblem("update", f"an update ({pending.get('op', '?')} of {pending.get('n_documents', '?')} "
                                          f"document(s), started {pending.get('started', '?')}) did not finish", True))
    n_chunks = len(index.chunks)
    if m.stage_done("chunks") and n_chunks != int(m.counts.get("chunks", n_chunks)):
        what = "is missing" if not (index.path / CHUNKS_FILE).exists() else f"holds {n_chunks} chunks"
        out.append(IndexProblem("chunks", f"{CHUNKS_FILE} {what}, the manifest says {m.counts.get('chunks')}",
                                n_chunks > 0))
    if m.stage_done("embeddings") and (stored := index.store.count(CHUNKS)) != n_chunks:
        out.append(IndexProblem("embeddings", f"the vector store holds {stored} chunk vectors for {n_chunks} chunks",
                                stored > n_chunks))
    if m.stage_done("bm25") and not (index.path / BM25_DIR / "meta.json").is_file():
        out.append(IndexProblem("bm25", f"the BM25 index ({BM25_DIR}/) is missing", True))
    elif m.stage_done("bm25") and deep:
        try:
            _ = index.bm25  # loading it is the check
        except IndexFormatError as e:
            out.append(IndexProblem("bm25", e.message.rstrip("."), True))
    if deep and (why := vectors_unreadable(index)):
        out.append(IndexProblem("store", why))
    if m.stage_done("tree"):
        out += _tree_problems(index)
    if m.stage_done("graph") and not (index.graph_dir / "meta.json").is_file():
        out.append(IndexProblem("graph", "the graph files (graph/) are missing"))
    return out


def vectors_unreadable(index: "Index") -> str | None:
    """Why some stored vector cannot be read back or searched (None when all can): every
    vector of every collection is read, and each collection is queried once."""
    for col in (CHUNKS, NODES, ENTITIES):
        try:
            ids = index.store.ids(col)
            if ids:
                first = index.store.get_embeddings(col, ids)[0]
                index.store.query(col, first, min(10, len(ids)))
        except BranchwiseError as e:
            return f"the vector store cannot serve collection {col!r}: {e.message.rstrip('.')}"
    return None


def _tree_problems(index: "Index") -> list["IndexProblem"]:
    if not index.tree_path.exists():
        return [IndexProblem("tree", f"{TREE_FILE} is missing")]
    try:
        tree = index.tree
        assert tree is not None
        tree.validate()
    except IndexFormatError as e:
        return [IndexProblem("tree", e.message.rstrip("."))]
    out = []
    try:
        tree.validate(set(index.chunks.ids()))
    except IndexFormatError as e:  # leaves out of step with the chunks: an update re-syncs them
        out.append(IndexProblem("tree", e.message.rstrip("."), True))
    internal = sum(1 for n in tree.nodes.values() if not n.is_leaf)
    stored = index.store.count(NODES)
    if stored != internal:
        out.append(IndexProblem("tree", f"the vector store holds {stored} summary vectors for {internal} tree nodes",
                                stored > internal))
    return out


def repair_hint(index: "Index", problems: Sequence["IndexProblem"]) -> str:
    """The command that finishes or repairs this index, for ``problems``."""
    if any(p.stage == "store" for p in problems) and index.manifest.extra.get("last_update"):
        return (f"rebuild its vectors from chunks.jsonl: run any `branchwise add {_shell(str(index.path))} PATH` or "
                "`delete` (re-adding an indexed file changes nothing else), or rerun the build with --overwrite.")
    if any(p.stage == "update" for p in problems):
        pending = index.manifest.extra.get("update_in_progress", {})
        if pending.get("op") == "delete":
            ids = " ".join(_shell(str(d)) for d in pending.get("documents", [])) or "DOC_ID ..."
            return (f"rerun the interrupted update: `branchwise delete {_shell(str(index.path))} {ids}` "
                    "(or any update repairs it).")
        sources = " ".join(_shell(str(s)) for s in pending.get("sources", [])) or "PATH ..."
        return (f"rerun the interrupted update: `branchwise add {_shell(str(index.path))} {sources}` "
                "(or any update repairs it).")
    source = index.manifest.extra.get("ingest", {}).get("source") or "PATH"
    return (f"rerun `branchwise index {_shell(str(source))} --out {_shell(str(index.path))}` to finish or repair it "
            "(the work already done is kept).")


def _shell(word: str) -> str:
    return shlex.quote(word)
