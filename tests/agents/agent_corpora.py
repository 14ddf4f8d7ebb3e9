"""Small real indexes for the agent tests: chunks in Chroma + BM25, and a two-level tree.

The tree is built by hand (consecutive groups of leaves under internal nodes whose summary
is the group's titles and whose vector is the normalised mean of the leaves' vectors), so
these tests exercise the real ``Index``, navigator and scorer without an LLM-built tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from branchwise.models.base import Embedder
from branchwise.retrieval.index import Index
from branchwise.retrieval.tree import Node, Tree
from branchwise.types import Chunk


def build_small_index(path: Path, embedder: Embedder, chunks: Sequence[Chunk], group_size: int = 3) -> Index:
    """An index over ``chunks`` with a root → groups → leaves tree."""
    index = Index.create(path, embedder)
    index.add_chunks(chunks)
    nodes: dict[str, Node] = {"root": Node("root", level=2)}
    vectors: dict[str, np.ndarray] = {}
    for g, start in enumerate(range(0, len(chunks), group_size)):
        group = list(chunks[start : start + group_size])
        gid = f"n{g}"
        leaf_ids = [f"l{start + i}" for i in range(len(group))]
        for lid, c in zip(leaf_ids, group):
            nodes[lid] = Node(lid, level=0, parent=gid, chunk_id=c.id)
        nodes[gid] = Node(
            gid, level=1, parent="root", children=leaf_ids, summary="Topics: " + "; ".join(c.title for c in group)
        )
        mean = index.chunk_embeddings([c.id for c in group]).mean(axis=0)
        vectors[gid] = (mean / np.linalg.norm(mean)).astype(np.float32)
        nodes["root"].children.append(gid)
    index.save_tree(Tree(nodes=nodes, root="root", max_children=max(group_size, len(nodes["root"].children))), vectors)
    return index


def hotpot_chunks(record: dict[str, Any]) -> list[Chunk]:
    """One chunk per paragraph of a HotpotQA distractor record (id ``title#0``)."""
    return [
        Chunk(id=f"{title}#0", doc_id=title, text="".join(sentences).strip(), title=title)
        for title, sentences in record["context"]
    ]


def hotpot_record(shared_data: Path, question_id: str) -> dict[str, Any]:
    """The record with ``_id == question_id`` from the shared 200-question sample."""
    with (shared_data / "hotpotqa" / "dev_distractor_200.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["_id"] == question_id:
                return rec
    raise KeyError(question_id)
