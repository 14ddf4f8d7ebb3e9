"""The navigate() driver: batching with doubles, then real embedder, real index, real LLM."""

from __future__ import annotations

import numpy as np
import pytest

from branchwise.retrieval.index import Index
from branchwise.testing import HashingEmbedder
from branchwise.navigation.navigate import (
    TreeResources,
    TreeTextSource,
    navigate,
    navigate_many,
)
from branchwise.navigation.navigator import NavigatorConfig
from branchwise.navigation.priors import (
    ArrayNodeVectors,
    RetrievalPrior,
    RetrievalPriorConfig,
)
from branchwise.navigation.scorers import EmbeddingScorer, YesNoScorer
from branchwise.navigation.slates import SlateItem, SlateScores
from branchwise.retrieval.tree import Node, Tree
from branchwise.types import Chunk

TOPICS = {
    "aero": ("Aerodynamics: lift, drag and boundary layers of wings and bodies in air flow.", [
        "The lift of a swept wing falls at high angles of attack when the flow separates near the tip.",
        "Skin friction drag grows as the turbulent boundary layer thickens along a flat plate.",
        "Shock waves on a transonic airfoil raise the wave drag sharply near Mach one.",
    ]),
    "bake": ("Bread baking: sourdough starters, fermentation, flour, ovens.", [
        "A sourdough starter is a culture of wild yeast and lactic acid bacteria that leavens bread.",
        "Bake the loaf in a preheated Dutch oven at 250 degrees for a crisp crust.",
        "Whole wheat flour absorbs more water than white flour, so the dough needs more hydration.",
    ]),
    "astro": ("Astronomy: planets, stars, telescopes and orbits.", [
        "Jupiter is the largest planet of the solar system and has dozens of moons.",
        "A refracting telescope uses lenses while a reflecting telescope uses mirrors.",
        "Kepler's laws describe elliptical planetary orbits around the sun.",
    ]),
}


def corpus() -> tuple[Tree, dict[str, Chunk]]:
    nodes = {"root": Node("root", 2, None, list(TOPICS), summary="Science and cooking")}
    chunks = {}
    for t, (summary, texts) in TOPICS.items():
        leaves = [f"{t}{i}" for i in range(len(texts))]
        nodes[t] = Node(t, 1, "root", leaves, summary=summary)
        for leaf, text in zip(leaves, texts):
            cid = f"{t}.md#{leaf[-1]}"
            nodes[leaf] = Node(leaf, 0, t, chunk_id=cid)
            chunks[cid] = Chunk(cid, f"{t}.md", text, ordinal=int(leaf[-1]))
    tree = Tree(nodes=nodes, root="root")
    tree.validate(set(chunks))
    return tree, chunks


def resources(embedder) -> tuple[TreeResources, ArrayNodeVectors]:
    tree, chunks = corpus()
    texts = TreeTextSource(tree, lambda c: chunks[c].text)
    vectors = ArrayNodeVectors.from_mapping({n: embedder.embed([texts(n)])[0] for n in tree.nodes})
    prior = RetrievalPrior(vectors=vectors, embedder=embedder, config=RetrievalPriorConfig(bm25=False))
    return TreeResources(tree, texts, prior), vectors


class CountingScorer:
    name = "counting"

    def __init__(self, inner):
        self.inner, self.batch_sizes = inner, []

    def score_batch(self, requests):
        self.batch_sizes.append(len(requests))
        return self.inner.score_batch(requests)


# -- driver with doubles -------------------------------------------------------------------
def test_navigate_many_batches_all_questions_per_round_and_matches_single_runs():
    emb = HashingEmbedder()
    res, vectors = resources(emb)
    questions = ["sourdough starter yeast", "turbulent boundary layer drag", "planet orbits"]
    scorer = CountingScorer(EmbeddingScorer(vectors, emb))
    cfg = NavigatorConfig(dense_prior_weight=0.0)
    many = navigate_many(res, scorer, questions, cfg, progress=False)
    assert scorer.batch_sizes[0] == 3  # every question's root slate in the first call
    singles = [navigate(res, EmbeddingScorer(vectors, emb), q, cfg) for q in questions]
    per_round = [sum(1 for r in singles for s in r.trace.steps if s.iteration == it)
                 for it in range(1, len(scorer.batch_sizes) + 1)]
    assert scorer.batch_sizes == per_round  # one call per round holding every open question's beam
    for r, single in zip(many, singles):
        assert [c.chunk_id for c in r.ranked] == [c.chunk_id for c in single.ranked]
        assert [(s.items, s.raw_scores) for s in r.trace.steps] == [(s.items, s.raw_scores) for s in single.trace.steps]
        assert r.usage.llm_calls == 0 and r.usage.latency_s == pytest.approx(r.trace.total_s)
        assert r.trace.total_s >= r.trace.scorer_s > 0
    assert many[0].ranked[0].chunk_id == "bake.md#0"


def test_navigate_counts_scorer_usage():
    class Fixed:
        name = "fixed"

        def score_batch(self, requests):
            return [SlateScores([0.5] * len(r.items), prompt_tokens=40, completion_tokens=7, llm_calls=1)
                    for r in requests]

    tree, chunks = corpus()
    res = TreeResources(tree, TreeTextSource(tree, lambda c: chunks[c].text))
    out = navigate(res, Fixed(), "anything", NavigatorConfig(max_calls=3))
    assert out.usage.llm_calls == 3 and out.usage.prompt_tokens == 120 and out.usage.completion_tokens == 21
    assert out.trace.stop_reason == "call_budget" and out.trace.scorer == "fixed"


# -- real embedder ---------------------------------------------------------------------------
def test_real_embedder_navigation_finds_the_passage(real_embedder):
    res, vectors = resources(real_embedder)
    scorer = EmbeddingScorer(vectors, real_embedder)
    out = navigate(res, scorer, "How does a sourdough culture make bread rise?", NavigatorConfig(dense_prior_weight=0.0))
    assert out.ranked[0].chunk_id == "bake.md#0"
    assert out.trace.steps[0].raw_scores[1] == max(out.trace.steps[0].raw_scores)  # "bake" wins at the root
    out2 = navigate(res, scorer, "Why does wave drag rise near the speed of sound?", NavigatorConfig())
    assert out2.ranked[0].chunk_id == "aero.md#2"


def test_real_index_resources_and_priors(real_embedder, tmp_path):
    tree, chunks = corpus()
    idx = Index.create(tmp_path / "idx", real_embedder)
    idx.add_chunks(list(chunks.values()))
    internal = [n for n in tree.nodes.values() if not n.is_leaf]
    vecs = real_embedder.embed([n.summary for n in internal])
    idx.save_tree(tree, {n.id: v for n, v in zip(internal, vecs)})
    res = TreeResources.from_index(idx)
    question = "Kepler elliptical orbits of planets"
    out = navigate(res, EmbeddingScorer(res.prior.vectors, real_embedder), question)
    assert out.trace.steps[0].items == ["aero", "bake", "astro"]
    assert out.ranked[0].chunk_id == "astro.md#2"
    assert res.texts("astro2") == chunks["astro.md#2"].text and res.texts("astro") == TOPICS["astro"][0]
    leaf_slate = next(s for s in out.trace.steps if s.expanded == "astro")
    assert leaf_slate.items[:3] == ["astro0", "astro1", "astro2"]
    # priors read from the index: BM25 (normalised by the best hit, and passed up the tree)
    # and the cosine of Chroma-stored vectors
    prior = res.prior.for_query(question)
    sc = prior.scores([SlateItem("astro2", "", True, "astro.md#2"), SlateItem("astro", "", False),
                       SlateItem("bake1", "", True, "bake.md#1")])
    assert sc["bm25"] == [pytest.approx(1.0), pytest.approx(1.0), 0.0]
    assert sc["dense"][0] > 0.3 > sc["dense"][2]
    assert np.allclose(np.linalg.norm(res.prior.vectors.vectors(["astro", "astro2"]), axis=1), 1.0, atol=1e-4)


# -- real LLM (one small test) ------------------------------------------------------------
@pytest.mark.real_llm
def test_real_llm_yes_no_ranks_relevant_leaf_first(real_llm):
    nodes = {
        "r": Node("r", 1, None, ["rel", "irr"], summary="facts"),
        "rel": Node("rel", 0, "r", chunk_id="water#0"),
        "irr": Node("irr", 0, "r", chunk_id="treaty#0"),
    }
    texts = {"water#0": "At sea level, pure water boils at 100 degrees Celsius (212 degrees Fahrenheit).",
             "treaty#0": "The Peace of Westphalia was signed in 1648 and ended the Thirty Years' War."}
    tree = Tree(nodes=nodes, root="r")
    res = TreeResources(tree, TreeTextSource(tree, texts.__getitem__))
    out = navigate(res, YesNoScorer(real_llm), "At what temperature does water boil at sea level?",
                   NavigatorConfig(calibration=False, dense_prior_weight=0.0, bm25_prior_weight=0.0))
    (step,) = out.trace.steps
    assert step.llm_calls == 2 and step.prompt_tokens > 20
    rel, irr = step.raw_scores
    assert rel > 0.5 > irr, step.raw_scores
    assert [c.chunk_id for c in out.ranked] == ["water#0", "treaty#0"]
