"""Incremental tree updates: add and delete chunks without a rebuild, refresh only what changed.

RAPTOR rebuilds its tree for any corpus change and LightRAG leaves stale entities behind;
here an update edits the tree in place and marks exactly the summaries whose subtree
changed as ``stale``, and :func:`refresh_stale` rewrites only those.

* **add** — each new leaf descends greedily from the root, at every step into the internal
  child whose vector (summary embedding) is most similar (cosine) to the leaf's
  embedding, until a node with no internal children; it is attached there. A node that
  now has more than ``M`` children is split in two by balanced 2-means over its
  children's vectors (the new sibling goes next to it in its parent), and the split
  propagates upward; a split root gets a new root above it.
* **delete** — the leaf is removed; internal nodes left without children are pruned
  upward; a non-root node left with a single *internal* child is spliced out (its child
  takes its place), and a root with a single internal child hands the root over.

Every node on a changed path (the new/removed leaf's parent up to the root), every node
created by a split, and the new root are marked stale. New nodes get the normalised mean
of their children's vectors until refreshed. The tree validates after every update.
:func:`sync_leaves` does both to make the leaves match a chunk list (what
``branchwise add`` / ``delete`` use, so an interrupted update is repaired by the next).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.models.base import Embedder
from branchwise.indexing.tree_build import node_request
from branchwise.indexing.cluster import ClusterConfig, balanced_kmeans, derive_seed, normalize
from branchwise.indexing.summarize import Summarizer
from branchwise.retrieval.tree import Node, Tree

log = logging.getLogger(__name__)

#: chunk ids -> their (L2-normalised) embeddings, e.g. ``Index.chunk_embeddings``.
ChunkVectors = Callable[[Sequence[str]], np.ndarray]


@dataclass(slots=True)
class UpdateResult:
    """What an update changed.

    Attributes:
        added: new leaf ids.
        removed: ids of nodes deleted (leaves, pruned and spliced internal nodes).
        created: new internal node ids (split siblings, new roots).
        stale: internal nodes whose summaries must be refreshed.
    """

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)


class _IdMaker:
    """Fresh ``prefix<int>`` ids above every numeric id already in the tree."""

    def __init__(self, tree: Tree):
        self.next: dict[str, int] = {}
        for nid in tree.nodes:
            head, num = nid[:1], nid[1:]
            if num.isdigit():
                self.next[head] = max(self.next.get(head, 0), int(num) + 1)

    def __call__(self, prefix: str) -> str:
        n = self.next.get(prefix, 0)
        self.next[prefix] = n + 1
        return f"{prefix}{n}"


def _relevel(tree: Tree, start: str) -> None:
    """Recompute ``level`` from ``start`` up to the root."""
    nid: str | None = start
    while nid is not None:
        node = tree.nodes[nid]
        if node.children:
            node.level = 1 + max(tree.nodes[c].level for c in node.children)
        nid = node.parent


def _mark_path(tree: Tree, start: str, result: UpdateResult) -> None:
    for nid in tree.path_to_root(start):
        if not tree.nodes[nid].is_leaf:
            tree.nodes[nid].stale = True
            result.stale.add(nid)


def add_chunks(
    tree: Tree,
    chunk_ids: Sequence[str],
    embeddings: np.ndarray,
    *,
    node_vectors: MutableMapping[str, np.ndarray],
    chunk_vectors: ChunkVectors,
    seed: int = 0,
    clustering: ClusterConfig | None = None,
) -> UpdateResult:
    """Attach new chunks as leaves (in place) and mark the changed paths stale.

    Args:
        tree: the tree to edit.
        chunk_ids: ids of the new chunks (not yet in the tree).
        embeddings: their embeddings, shape (len(chunk_ids), dim).
        node_vectors: internal-node vectors by node id; updated for split/new nodes.
        chunk_vectors: embeddings of existing chunks (needed to split leaf-parent nodes).
        seed: seeds the 2-means of splits.
        clustering: k-means settings.
    """
    vecs = normalize(np.asarray(embeddings, dtype=np.float32))
    if vecs.shape[0] != len(chunk_ids):
        raise InputError("embeddings do not match the new chunk ids.", fix="pass one embedding per new chunk, in order.")
    known = [c for c in chunk_ids if tree.leaf_for_chunk(c) is not None]
    if known or len(set(chunk_ids)) != len(chunk_ids):
        raise InputError(f"chunks already in the tree or repeated: {known[:5]}.", fix="delete them first to replace them.")
    new_vec = dict(zip(chunk_ids, vecs))

    def vectors_of(node_ids: Sequence[str]) -> np.ndarray:
        """Vectors of children: node vectors, new chunks' embeddings, or one index lookup."""
        chunk_of = {n: tree.nodes[n].chunk_id for n in node_ids}
        missing = [c for c in chunk_of.values() if c is not None and c not in new_vec]
        known = {**new_vec, **(dict(zip(missing, normalize(chunk_vectors(missing)))) if missing else {})}
        return np.stack([node_vectors[n] if c is None else known[c] for n, c in chunk_of.items()])

    clustering = clustering or ClusterConfig()
    ids, result = _IdMaker(tree), UpdateResult()
    for cid, v in zip(chunk_ids, vecs):
        parent = _descend(tree, v, node_vectors)
        leaf = ids("l")
        tree.nodes[leaf] = Node(id=leaf, level=0, parent=parent, chunk_id=cid)
        tree.nodes[parent].children.append(leaf)
        result.added.append(leaf)
        _mark_path(tree, parent, result)
        node: str | None = parent
        while node is not None and len(tree.nodes[node].children) > tree.max_children:
            node = _split(tree, node, vectors_of, node_vectors, ids, result, derive_seed(seed, len(result.created)), clustering)
    tree.reindex()
    tree.validate()
    return result


def _descend(tree: Tree, v: np.ndarray, node_vectors: MutableMapping[str, np.ndarray]) -> str:
    """The lowest internal node reached by following the most similar internal child."""
    nid = tree.root
    while True:
        inner = [c for c in tree.nodes[nid].children if not tree.nodes[c].is_leaf]
        if not inner:
            return nid
        missing = [c for c in inner if c not in node_vectors]
        if missing:
            raise InputError(
                f"no vector for internal node(s) {missing[:3]}.",
                fix="pass the node embeddings saved with the tree (Index.node_embeddings) as node_vectors.",
            )
        sims = np.stack([node_vectors[c] for c in inner]) @ v
        nid = inner[int(np.argmax(sims))]


def _split(tree: Tree, nid: str, vectors_of: Callable[[Sequence[str]], np.ndarray], node_vectors: MutableMapping[str, np.ndarray],
           ids: _IdMaker, result: UpdateResult, seed: int, clustering: ClusterConfig) -> str | None:
    """Split an overfull node in two; return the parent to check next (None at the root)."""
    node = tree.nodes[nid]
    kids = list(node.children)
    x = normalize(vectors_of(kids))
    lo = max(1, math.ceil(len(kids) / 4))  # keep halves reasonably even so they do not re-split soon
    labels = balanced_kmeans(x, 2, [lo, lo], [tree.max_children] * 2, seed=seed, config=clustering)
    sib = ids("n")
    node.children = [k for k, lab in zip(kids, labels) if lab == 0]
    moved = [k for k, lab in zip(kids, labels) if lab == 1]
    tree.nodes[sib] = Node(id=sib, level=0, parent=node.parent, children=moved, stale=True)
    for k in moved:
        tree.nodes[k].parent = sib
    for n_id, rows in ((nid, labels == 0), (sib, labels == 1)):
        node_vectors[n_id] = normalize(x[rows].sum(axis=0, keepdims=True))[0]
        tree.nodes[n_id].level = 1 + max(tree.nodes[c].level for c in tree.nodes[n_id].children)
        tree.nodes[n_id].stale = True
        result.stale.add(n_id)
    result.created.append(sib)
    if node.parent is None:
        root = ids("n")
        tree.nodes[root] = Node(id=root, level=node.level + 1, children=[nid, sib], stale=True)
        node.parent = tree.nodes[sib].parent = root
        tree.root = root
        node_vectors[root] = normalize((node_vectors[nid] + node_vectors[sib])[None, :])[0]
        result.created.append(root)
        result.stale.add(root)
        _relevel(tree, root)
        return None
    siblings = tree.nodes[node.parent].children
    siblings.insert(siblings.index(nid) + 1, sib)
    _relevel(tree, nid)
    return node.parent


def delete_chunks(tree: Tree, chunk_ids: Sequence[str], *, node_vectors: MutableMapping[str, np.ndarray]) -> UpdateResult:
    """Remove the leaves of ``chunk_ids`` (in place), prune and collapse, mark paths stale."""
    leaves = [tree.leaf_for_chunk(c) for c in chunk_ids]
    missing = [c for c, leaf in zip(chunk_ids, leaves) if leaf is None]
    if missing:
        raise InputError(f"{len(missing)} chunk(s) are not in the tree, e.g. {missing[:5]}.", fix="pass ids of indexed chunks.")
    if len({leaf.id for leaf in leaves if leaf}) >= sum(1 for _ in tree.leaves()):
        raise InputError("deleting every chunk would leave an empty tree.", fix="rebuild the index instead.")
    result = UpdateResult()
    for leaf in leaves:
        assert leaf is not None
        if leaf.id not in tree.nodes:
            continue  # repeated id
        changed = _collapse(tree, _detach(tree, leaf.id, node_vectors, result), node_vectors, result)
        if changed is not None:
            _relevel(tree, changed)
            _mark_path(tree, changed, result)
    result.stale &= set(tree.nodes)
    tree.reindex()
    tree.validate()
    return result


def _detach(tree: Tree, nid: str, node_vectors: MutableMapping[str, np.ndarray], result: UpdateResult) -> str:
    """Remove ``nid`` and every ancestor left empty; return the first surviving ancestor."""
    parent = tree.nodes[nid].parent
    while parent is not None:
        tree.nodes[parent].children.remove(nid)
        del tree.nodes[nid]
        node_vectors.pop(nid, None)
        result.removed.append(nid)
        if tree.nodes[parent].children or parent == tree.root:
            return parent
        nid, parent = parent, tree.nodes[parent].parent
    raise AssertionError("unreachable: the root is never detached")


def _collapse(tree: Tree, nid: str, node_vectors: MutableMapping[str, np.ndarray], result: UpdateResult) -> str | None:
    """Splice out ``nid`` if it has a single internal child.

    Returns the node from which the path to the root changed: ``nid`` itself, its parent
    if it was spliced out, or None when the root handed over to its only child (whose
    subtree, and so summary, is unchanged).
    """
    node = tree.nodes[nid]
    if len(node.children) != 1 or tree.nodes[node.children[0]].is_leaf:
        return nid
    child = node.children[0]
    tree.nodes[child].parent = node.parent
    if node.parent is None:
        tree.root = child
    else:
        siblings = tree.nodes[node.parent].children
        siblings[siblings.index(nid)] = child
    del tree.nodes[nid]
    node_vectors.pop(nid, None)
    result.removed.append(nid)
    return tree.nodes[child].parent


def sync_leaves(
    tree: Tree,
    chunk_ids: Sequence[str],
    *,
    replace: Collection[str] = (),
    node_vectors: MutableMapping[str, np.ndarray],
    chunk_vectors: ChunkVectors,
    seed: int = 0,
    clustering: ClusterConfig | None = None,
) -> UpdateResult:
    """Make the tree's leaves exactly ``chunk_ids`` (in place): delete the leaves of chunks
    not in it and of ``replace`` (chunks whose text changed), then place every listed chunk
    without a leaf, in the order given. Stale marks as :func:`add_chunks` / :func:`delete_chunks`.

    Args:
        chunk_vectors: embeddings of any chunk in ``chunk_ids`` (the new ones included).
    """
    keep = set(chunk_ids)
    leaves = {n.chunk_id for n in tree.leaves()}
    result = UpdateResult()
    doomed = sorted((leaves - keep) | (set(replace) & leaves & keep))
    if doomed:
        res = delete_chunks(tree, doomed, node_vectors=node_vectors)
        result.removed, result.stale = res.removed, set(res.stale)
    placed = {n.chunk_id for n in tree.leaves()}
    todo = [c for c in dict.fromkeys(chunk_ids) if c not in placed]
    if todo:
        res = add_chunks(tree, todo, chunk_vectors(todo), node_vectors=node_vectors, chunk_vectors=chunk_vectors,
                         seed=seed, clustering=clustering)
        result.added, result.created = res.added, res.created
        result.stale = (result.stale | res.stale) & set(tree.nodes)
    return result


def refresh_stale(
    tree: Tree,
    summarizer: Summarizer,
    embedder: Embedder | None,
    *,
    leaf_text: Callable[[str], str],
    node_vectors: MutableMapping[str, np.ndarray],
    batch_size: int = 8,
    progress: bool = True,
) -> list[str]:
    """Re-summarise the stale nodes only, deepest first (a parent reads its children's new
    summaries), re-embed them when an ``embedder`` is given, clear their flags.

    Args:
        leaf_text: chunk id -> the text a leaf contributes (``build.chunk_text`` of the chunk).

    Returns:
        the refreshed node ids, in refresh order.
    """
    stale = sorted((n for n in tree.nodes.values() if n.stale and not n.is_leaf), key=lambda n: (n.level, n.id))
    done: list[str] = []
    levels = sorted({n.level for n in stale})
    with tqdm(total=len(stale), desc="refresh summaries", unit="node", disable=not progress or not stale) as bar:
        for level in levels:
            ids = [n.id for n in stale if n.level == level]
            for i in range(0, len(ids), max(1, batch_size)):
                part = ids[i : i + max(1, batch_size)]
                texts = summarizer.summarize_batch([node_request(tree.nodes, n, leaf_text) for n in part])
                for nid, text in zip(part, texts):
                    tree.nodes[nid].summary = text
                    tree.nodes[nid].stale = False
                if embedder is not None:
                    for nid, v in zip(part, normalize(embedder.embed(texts))):
                        node_vectors[nid] = v
                done.extend(part)
                bar.update(len(part))
    log.info("refreshed %d stale summaries", len(done))
    return done
