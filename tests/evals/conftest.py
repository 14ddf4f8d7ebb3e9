"""Fixtures of the eval tests: a small real index (Chroma + bm25s) with a hand-built tree."""

from __future__ import annotations

import pytest

from branchwise.testing import HashingEmbedder
from branchwise.retrieval.tree import Node, Tree

DOCS = {
    "volcano": "Mount Etna is an active volcano on the east coast of Sicily.",
    "lava": "Lava flows from Etna reached the town of Catania in 1669.",
    "bread": "Sourdough bread is leavened by wild yeast and lactobacilli.",
    "oven": "A baking oven for bread must be preheated to a high temperature.",
}


@pytest.fixture(scope="session")
def tree_docs() -> dict[str, str]:
    """The documents of :func:`tree_index` by id."""
    return dict(DOCS)


@pytest.fixture(scope="module")
def tree_index(tmp_path_factory: pytest.TempPathFactory):
    """Four one-chunk documents under two topic nodes: n0 -> (n1: volcano, lava), (n2: bread, oven)."""
    from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index

    root = tmp_path_factory.mktemp("eval-index")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(f'{{"id": "{k}", "title": "{k}", "text": "{v}"}}\n' for k, v in DOCS.items()))
    emb = HashingEmbedder()
    idx = build_chunk_index(corpus, root / "index", emb, IndexBuildConfig(), progress=False)
    leaves = {f"l{i}": Node(f"l{i}", 0, parent="n1" if i < 2 else "n2", chunk_id=f"{k}#0")
              for i, k in enumerate(DOCS)}
    nodes = {
        "n0": Node("n0", 2, children=["n1", "n2"], summary="Volcanoes and baking."),
        "n1": Node("n1", 1, parent="n0", children=["l0", "l1"], summary="Etna, a Sicilian volcano, and its lava."),
        "n2": Node("n2", 1, parent="n0", children=["l2", "l3"], summary="Baking sourdough bread in ovens."),
        **leaves,
    }
    tree = Tree(nodes=nodes, root="n0", max_children=4)
    idx.save_tree(tree, {n: emb.embed_query(nodes[n].summary) for n in ("n0", "n1", "n2")})
    return idx
