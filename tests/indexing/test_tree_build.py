"""Tree building: invariants on real text with the real embedder, dry-run exactness, errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.text.tokens import get_tokenizer
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.indexing.tree_build import TreeConfig, build_tree
from branchwise.indexing.plan import EMBEDDED_DEFAULT_SPEED, plan_build
from branchwise.indexing.summarize import ExtractiveSummarizer, LLMSummarizer, SummaryConfig
from branchwise.types import Chunk

STRATEGIES = ["bottom_up", "top_down"]
_DOC = re.compile(r"<DOC>\s*<DOCNO>\s*(.*?)\s*</DOCNO>(.*?)</DOC>", re.DOTALL)


def vaswani_chunks(shared: Path, n: int) -> list[Chunk]:
    raw = (shared / "vaswani" / "doc-text.trec").read_text(encoding="utf-8", errors="replace")
    docs = _DOC.findall(raw)[:n]
    return [Chunk(id=f"v{no}", doc_id=f"v{no}", text=" ".join(t.split())) for no, t in docs]


def topic_chunks(n: int) -> list[Chunk]:
    topics = [
        "solar panels convert sunlight into electricity with photovoltaic cells",
        "the striker scored a late goal in the football match",
        "python functions and classes organise program code",
        "bread dough rises when yeast ferments the flour sugars",
        "electron spin is a quantum property measured in magnetic fields",
    ]
    return [Chunk(id=f"c{i}", doc_id=f"d{i // 3}", text=f"{topics[i % 5]}. Note {i} adds detail {i * 7 % 13}.") for i in range(n)]


def extractive(chunks: list[Chunk], tokens: int = 48) -> ExtractiveSummarizer:
    return ExtractiveSummarizer.from_corpus([c.text for c in chunks], SummaryConfig(mode="extractive", summary_tokens=tokens))


def check_invariants(result, chunks, config: TreeConfig, tokens: int) -> None:
    tree = result.tree
    tree.validate({c.id for c in chunks})
    internal = [n for n in tree.nodes.values() if not n.is_leaf]
    assert tree.nodes[tree.root].parent is None
    assert max(len(n.children) for n in internal) <= config.max_children
    assert set(result.node_embeddings) == {n.id for n in internal}
    norms = np.linalg.norm(np.stack(list(result.node_embeddings.values())), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)
    tok = get_tokenizer()
    assert all(n.summary and tok.count(n.summary) <= tokens for n in internal)
    assert all(not n.summary for n in tree.leaves())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_build_invariants_unit(strategy):
    chunks = topic_chunks(300)
    emb = HashingEmbedder()
    cfg = TreeConfig(strategy=strategy, max_children=6, summary=SummaryConfig(mode="extractive", summary_tokens=40))
    result = build_tree(chunks, emb.embed([c.text for c in chunks]), cfg, summarizer=extractive(chunks, 40), embedder=emb, progress=False)
    check_invariants(result, chunks, cfg, 40)
    bound = math.ceil(math.log(300, 6))  # 4
    assert result.tree.depth <= bound + 1
    assert result.usage.llm_calls == 0 and result.usage.embed_calls >= result.tree.depth


def test_centroid_vectors_are_normalised_leaf_means():
    chunks = topic_chunks(60)
    vecs = HashingEmbedder().embed([c.text for c in chunks])
    cfg = TreeConfig(max_children=5, node_vectors="centroid", summary=SummaryConfig(mode="extractive"))
    result = build_tree(chunks, vecs, cfg, summarizer=extractive(chunks), progress=False)
    row = {c.id: i for i, c in enumerate(chunks)}
    for nid in (result.tree.root, result.tree.children(result.tree.root)[0].id):
        mean = vecs[[row[leaf.chunk_id] for leaf in result.tree.leaves_under(nid)]].sum(axis=0)
        assert np.allclose(result.node_embeddings[nid], mean / np.linalg.norm(mean), atol=1e-5)


@pytest.mark.parametrize("n", [1, 5, 12])
def test_small_corpus_is_one_root(n):
    chunks = topic_chunks(n)
    emb = HashingEmbedder()
    result = build_tree(chunks, emb.embed([c.text for c in chunks]), TreeConfig(summary=SummaryConfig(mode="extractive")),
                        summarizer=extractive(chunks), embedder=emb, progress=False)
    assert result.tree.depth == 1 and len(result.tree.children(result.tree.root)) == n


def test_input_errors():
    chunks = topic_chunks(10)
    emb = HashingEmbedder()
    vecs = emb.embed([c.text for c in chunks])
    s = extractive(chunks)
    with pytest.raises(InputError, match="zero chunks"):
        build_tree([], vecs[:0], summarizer=s, embedder=emb)
    with pytest.raises(InputError, match="does not match"):
        build_tree(chunks, vecs[:5], summarizer=s, embedder=emb)
    with pytest.raises(InputError, match="not unique"):
        build_tree(chunks[:2] * 2, vecs[:4], summarizer=s, embedder=emb)
    with pytest.raises(InputError, match="needs an embedder"):
        build_tree(chunks, vecs, summarizer=s)
    with pytest.raises(InputError, match="dim"):
        build_tree(chunks, vecs, summarizer=s, embedder=HashingEmbedder(dim=64))
    with pytest.raises(InputError, match="max_children"):
        TreeConfig(max_children=1)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_dry_run_counts_equal_build(strategy):
    chunks = topic_chunks(200)
    emb = HashingEmbedder()
    vecs = emb.embed([c.text for c in chunks])
    cfg = TreeConfig(strategy=strategy, max_children=5, summary=SummaryConfig(mode="llm", summary_tokens=32, input_tokens=256))
    plan = plan_build(chunks, vecs, cfg, speed=EMBEDDED_DEFAULT_SPEED)
    llm = ScriptedLLM(replies=lambda msgs: "Covers " + " ".join(msgs[-1].content.split()[5:12]))
    result = build_tree(chunks, vecs, cfg, summarizer=LLMSummarizer(llm, cfg.summary), embedder=emb, progress=False)
    built_levels = {lvl: k for lvl, k in result.tree.stats()["nodes_per_level"].items() if lvl > 0}
    assert plan.nodes_per_level == built_levels
    assert plan.llm_calls == len(llm.calls) == result.usage.llm_calls == plan.internal_nodes
    assert plan.completion_tokens == plan.llm_calls * 32
    assert plan.seconds is not None and plan.seconds > 0
    assert f"{plan.llm_calls:,} LLM calls" in plan.format()
    extractive_plan = plan_build(chunks, vecs, TreeConfig(strategy=strategy, max_children=5, summary=SummaryConfig(mode="extractive")))
    assert extractive_plan.llm_calls == 0 and extractive_plan.nodes_per_level == built_levels


# --- real text, real embedder ----------------------------------------------------------------
@pytest.fixture(scope="module")
def vaswani_1500(shared_data, real_embedder):
    chunks = vaswani_chunks(shared_data, 1500)
    return chunks, real_embedder.embed([c.text for c in chunks])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_vaswani_tree_real_embedder(strategy, vaswani_1500, real_embedder):
    chunks, vecs = vaswani_1500
    cfg = TreeConfig(strategy=strategy, max_children=12, summary=SummaryConfig(mode="extractive", summary_tokens=64))
    result = build_tree(chunks, vecs, cfg, summarizer=extractive(chunks, 64), embedder=real_embedder, progress=False)
    check_invariants(result, chunks, cfg, 64)
    tree = result.tree
    bound = math.ceil(math.log(1500, 12))  # 3
    assert tree.depth <= bound + 1 if strategy == "bottom_up" else tree.depth <= bound
    # clusters are semantic: siblings under a level-1 node are far more similar than random pairs
    row = {c.id: i for i, c in enumerate(chunks)}
    within = []
    for node in tree.nodes.values():
        leaves = [row[tree[c].chunk_id] for c in node.children if tree[c].is_leaf]
        if len(leaves) >= 2:
            sims = vecs[leaves] @ vecs[leaves].T
            within.append((sims.sum() - len(leaves)) / (len(leaves) * (len(leaves) - 1)))
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 1500, 2000), rng.integers(0, 1500, 2000)
    random_pairs = float(np.mean(np.sum(vecs[a] * vecs[b], axis=1)))
    assert np.mean(within) > random_pairs + 0.2
    # extractive summaries name terms of their own children
    text = {c.id: c.text.lower() for c in chunks}
    for node in [n for n in tree.nodes.values() if n.level == 1][:20]:
        keywords = node.summary.split("\n")[0].removeprefix("Topics: ").split(", ")
        under = " ".join(text[leaf.chunk_id] for leaf in tree.leaves_under(node.id))
        assert all(k in under for k in keywords)


def test_vaswani_dry_run_top_down_is_exact(vaswani_1500):
    chunks, vecs = vaswani_1500
    cfg = TreeConfig(strategy="top_down", node_vectors="centroid", summary=SummaryConfig(mode="llm", summary_tokens=24))
    plan = plan_build(chunks, vecs, cfg)
    llm = ScriptedLLM(replies=["A group of physics abstracts."])
    result = build_tree(chunks, vecs, cfg, summarizer=LLMSummarizer(llm, cfg.summary), progress=False)
    assert plan.llm_calls == len(llm.calls) == result.tree.stats()["internal"]
    assert plan.prompt_tokens > 0 and "unknown" in plan.format()  # no speed given
