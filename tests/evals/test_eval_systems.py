"""Baseline systems on a real index (Chroma, bm25s) with a hand-built tree; scoring of outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.evals.baselines import CollapsedTree
from branchwise.evals.datasets.types import EvalQuestion, SupportingFact
from branchwise.evals.scoring import score_output, strip_citation_markers
from branchwise.evals.systems import SystemContext, SystemOutput, build_systems
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.types import Answer, Citation, ScoredChunk, Usage


def test_retrieval_baselines_rank_the_matching_chunk_first(tree_index) -> None:
    ctx = SystemContext(tree_index, k=3)
    for system in build_systems(["bm25", "dense", "hybrid"], ctx):
        out = system.run("sourdough bread wild yeast")
        assert out.retrieved[0].chunk_id == "bread#0", system.name
        assert 1 <= len(out.retrieved) <= 3 and out.answer is None and out.usage.latency_s >= 0  # BM25 drops zero scores


def test_collapsed_tree_expands_summaries_to_their_leaves(tree_index, tree_docs: dict[str, str]) -> None:
    ct = CollapsedTree.from_index(tree_index)
    assert sorted(ct.node_ids) == sorted(["l0", "l1", "l2", "l3", "n0", "n1", "n2"])
    assert ct.matrix.shape == (7, 256)
    emb = HashingEmbedder()
    q = "Baking sourdough bread in ovens."  # identical to n2's summary: n2 ranks first
    top, _ = ct.top_nodes(q, 1)
    assert top[0][0] == "n2" and top[0][1] == pytest.approx(1.0, abs=1e-5)
    ranked, evidence = ct.retrieve(q, n_nodes=1, k=4)
    # n2 expands to its two leaves, ordered by their own similarity to the query
    sims = {c: float(emb.embed_query(tree_docs[c.split("#")[0]]) @ emb.embed_query(q)) for c in ("bread#0", "oven#0")}
    assert [h.chunk_id for h in ranked[:2]] == sorted(sims, key=lambda c: -sims[c])
    assert evidence[0].text == "Baking sourdough bread in ovens." and evidence[0].chunk_id == ranked[0].chunk_id
    assert len({h.chunk_id for h in ranked}) == len(ranked)


def test_raptor_rag_answers_from_node_evidence(tree_index, tree_docs: dict[str, str]) -> None:
    llm = ScriptedLLM(replies=["Catania [1]"])
    ctx = SystemContext(tree_index, lambda: llm, None, k=4, rag_k=2)
    (system,) = build_systems(["raptor_rag"], ctx)
    out = system.run("Which town did Etna's lava reach?")
    assert out.answer is not None and out.answer.text.startswith("Catania")
    assert out.answer.citations[0].chunk_id in tree_docs.keys() | {f"{k}#0" for k in tree_docs}
    assert out.usage.llm_calls == 1 and out.context_tokens > 0
    prompt = llm.calls[0][-1].content
    assert prompt.count("<source ") == 2


def test_flat_rag_systems_read_their_retrievers_top_chunks(tree_index) -> None:
    q = "sourdough bread wild yeast"
    for name, kind in (("naive_rag", "dense"), ("hybrid_rag", "hybrid")):
        llm = ScriptedLLM(replies=["Bread [1]"])
        ctx = SystemContext(tree_index, lambda llm=llm: llm, None, k=3, rag_k=2)
        (system,) = build_systems([name], ctx)
        out = system.run(q)
        expected = [h.chunk_id for h in getattr(tree_index, f"search_{kind}")(q, 3)]
        assert [h.chunk_id for h in out.retrieved] == expected, name
        prompt = llm.calls[0][-1].content
        assert prompt.count("<source ") == 2, name
        assert out.answer is not None and out.answer.citations[0].chunk_id == expected[0], name


def test_systems_needing_a_tree_or_llm_are_refused_clearly(tree_index, tmp_path: Path) -> None:
    ctx = SystemContext(tree_index)
    with pytest.raises(InputError, match="needs an LLM"):
        build_systems(["naive_rag"], ctx)
    with pytest.raises(InputError, match="unknown system"):
        build_systems(["raptor", "nope"], ctx)


def test_score_output_hand_computed(tree_docs: dict[str, str]) -> None:
    q = EvalQuestion(
        id="q1", text="Where is Etna?", answers=("Sicily",), gold_doc_ids=("volcano", "lava"),
        supporting_facts=(SupportingFact("volcano", 0, "Mount Etna is an active volcano on the east coast of Sicily."),),
        qrels={"volcano": 1.0, "lava": 1.0},
    )
    answer = Answer(text="Sicily [1][2].", citations=[Citation("volcano#0", "[1]"), Citation("bread#0", "[2]")])
    out = SystemOutput(retrieved=[ScoredChunk("bread#0", 0.9), ScoredChunk("volcano#0", 0.8)], answer=answer,
                       usage=Usage(llm_calls=1, prompt_tokens=50, latency_s=2.0), context_tokens=40)
    rec = score_output(q, out, "qa", lambda c: c.split("#")[0], lambda c: tree_docs[c.split("#")[0]])
    m = rec["metrics"]
    assert strip_citation_markers(answer.text) == "Sicily."
    assert (m["em"], m["f1"]) == (1.0, 1.0)
    assert m["recall@10"] == 0.5 and m["mrr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert m["citation_precision"] == 0.5 and m["citation_recall"] == 1.0
    assert m["evidence_recall"] == 0.5 and m["context_tokens"] == 40 and m["llm_calls"] == 1
    assert rec["retrieved_docs"] == ["bread", "volcano"] and rec["cited"] == ["volcano#0", "bread#0"]


def test_evidence_recall_counts_only_what_the_generator_read(tree_docs: dict[str, str]) -> None:
    q = EvalQuestion(id="q1", text="Where is Etna?", answers=("Sicily",), gold_doc_ids=("volcano", "lava"),
                     qrels={"volcano": 1.0, "lava": 1.0})
    ranked = [ScoredChunk("bread#0", 0.9), ScoredChunk("volcano#0", 0.8), ScoredChunk("lava#0", 0.7)]
    out = SystemOutput(retrieved=ranked, answer=Answer(text="Sicily [1]."), context_ids=["bread#0", "volcano#0"])
    m = score_output(q, out, "qa", lambda c: c.split("#")[0], lambda c: tree_docs[c.split("#")[0]])["metrics"]
    assert m["recall@10"] == 1.0  # the ranking holds both gold documents...
    assert m["evidence_recall"] == 0.5  # ...but the generator read only the top two chunks
