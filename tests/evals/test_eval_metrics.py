"""Metrics against hand-computed values and reference implementations (sklearn, SQuAD)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from branchwise.evals.metrics import (
    choice_accuracy,
    choose_option,
    citation_scores,
    compression_ratio,
    context_tokens,
    cost_metrics,
    evidence_recall,
    exact_match,
    mrr,
    ndcg_at_k,
    normalize_answer,
    precision_at_k,
    recall_at_k,
    token_f1,
)
from branchwise.types import Usage


# ---------------------------------------------------------------- SQuAD normalisation / EM / F1
@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("The Quick, Brown Fox!", "quick brown fox"),
        ("  an   apple a day ", "apple day"),
        ("Theatre", "theatre"),  # 'the' only as a whole word
        ("U.S.A.", "usa"),
        ("Ma\u0142gorzata Braunek", "ma\u0142gorzata braunek"),
    ],
)
def test_normalize_answer_follows_squad(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


def test_exact_match_takes_max_over_golds() -> None:
    assert exact_match("the Eiffel Tower.", ["Louvre", "Eiffel tower"]) == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    assert exact_match("", "") == 1.0


def test_token_f1_hand_computed() -> None:
    # pred {cat, sat}, gold {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # pred {new, york, city, hall}, gold {new, york}: P = 1/2, R = 1 -> 2/3
    assert token_f1("New York City Hall", "New York") == pytest.approx(2 / 3)
    # repeated tokens count with multiplicity (Counter intersection): pred {a1,a1,b}, gold {a1,b,b}
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)
    assert token_f1("Paris", ["London", "paris France"]) == pytest.approx(2 / 3)
    assert token_f1("nothing shared", "Rush") == 0.0
    assert token_f1("", "Rush") == 0.0


# ---------------------------------------------------------------- multiple choice
CHOICES = ["a red car", "a blue boat", "the green house", "nothing"]


@pytest.mark.parametrize(
    ("answer", "idx"),
    [
        ("B", 1),
        ("(c)", 2),
        ("D) nothing at all", 3),
        ("The answer is (A).", 0),
        ("The blue boat", 1),
        ("I think it is the green house, clearly", 2),
        ("purple elephant", None),
    ],
)
def test_choose_option(answer: str, idx: int | None) -> None:
    assert choose_option(answer, CHOICES) == idx


def test_choice_accuracy() -> None:
    assert choice_accuracy("(B) a blue boat", CHOICES, 1) == 1.0
    assert choice_accuracy("A", CHOICES, 1) == 0.0
    assert choice_accuracy("the answer is a boat", ["a car", "a boat"], 1) == 1.0


# ---------------------------------------------------------------- retrieval
def test_recall_precision_mrr_hand_computed() -> None:
    ranked = ["d3", "d1", "d7", "d2", "d1"]
    rel = {"d1": 1, "d2": 2, "d9": 1, "d4": 0}
    assert recall_at_k(ranked, rel, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, rel, 10) == pytest.approx(2 / 3)
    assert precision_at_k(ranked, rel, 4) == pytest.approx(2 / 4)
    assert mrr(ranked, rel) == pytest.approx(1 / 2)
    assert mrr(ranked, rel, k=1) == 0.0
    assert mrr(["x"], {"d1"}) == 0.0
    assert recall_at_k(ranked, {}, 5) == 0.0


def test_ndcg_hand_computed_trec_convention() -> None:
    # gains at ranks 1..3 = [0, 2, 1]; judged relevant {b:2, c:1, d:1} (d never retrieved)
    # DCG = 2/log2(3) + 1/log2(4); IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4)
    dcg = 2 / math.log2(3) + 1 / 2
    idcg = 2 + 1 / math.log2(3) + 1 / 2
    assert ndcg_at_k(["a", "b", "c"], {"b": 2, "c": 1, "d": 1}, k=10) == pytest.approx(dcg / idcg)
    # cut at k=1: the first item is non-relevant
    assert ndcg_at_k(["a", "b"], {"b": 1}, k=1) == 0.0
    # perfect ranking; negative judgements are treated as 0 like trec_eval
    assert ndcg_at_k(["b", "c"], {"b": 3, "c": 1, "z": -1}) == pytest.approx(1.0)
    # binary set input
    assert ndcg_at_k(["x", "y"], {"y"}) == pytest.approx(1 / math.log2(3))


def test_ndcg_matches_sklearn_when_all_judged_items_are_ranked() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = 15
        grades = rng.integers(0, 4, size=n).astype(float)
        if grades.sum() == 0:
            grades[0] = 1
        scores = rng.permutation(n).astype(float)  # no ties
        ids = [f"d{i}" for i in range(n)]
        ranked = [ids[i] for i in np.argsort(-scores)]
        ours = ndcg_at_k(ranked, dict(zip(ids, grades)), k=10)
        # sklearn builds the ideal ranking from the same n items; with all judged items
        # among them it must agree with trec_eval's definition.
        ref = ndcg_score(grades[None, :], scores[None, :], k=10)
        assert ours == pytest.approx(ref, abs=1e-12)


def test_duplicates_collapse_to_first_occurrence_before_the_cutoff() -> None:
    # chunk rankings map to documents with repeats: [a, a, b] is the document ranking [a, b]
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "a"], {"a": 1, "b": 1}, k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert mrr(["x", "x", "a"], {"a"}) == pytest.approx(1 / 2)


# ---------------------------------------------------------------- evidence and citations
def test_evidence_recall() -> None:
    assert evidence_recall(["Neil Peart", "Toto"], ["Neil Peart", "Nobody's Hero"]) == 0.5
    assert evidence_recall([], ["a"]) == 0.0
    assert evidence_recall(["a"], []) == 0.0


def test_citation_scores_hand_computed() -> None:
    facts = ["Rush is a Canadian rock band.", "Neil Peart was its drummer."]
    cited = [
        "Intro. rush is a Canadian rock band! Formed 1968.",  # contains fact 1 (case/punct ignored)
        "Unrelated text about Toto.",  # contains nothing
    ]
    s = citation_scores(cited, facts)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(0.5)
    s2 = citation_scores(cited + ["Neil Peart was its drummer"], facts)
    assert (s2.precision, s2.recall) == (pytest.approx(2 / 3), pytest.approx(1.0))
    assert citation_scores([], facts).precision == 0.0


# ---------------------------------------------------------------- cost
def test_cost_metrics() -> None:
    assert context_tokens(["a b c", "d e"], lambda t: len(t.split())) == 5
    assert compression_ratio(200, 30) == pytest.approx(0.15)
    assert compression_ratio(0, 0) == 1.0
    u = Usage(llm_calls=3, prompt_tokens=100, completion_tokens=20, latency_s=1.5)
    m = cost_metrics(u, 42)
    assert m == {"llm_calls": 3.0, "prompt_tokens": 100.0, "completion_tokens": 20.0, "latency_s": 1.5,
                 "context_tokens": 42.0}


@pytest.mark.parametrize(("prediction", "gold", "expected"), [
    ("The answer is Paris, France.", ["Paris"], 1.0),       # long but right
    ("paris", ["The Paris"], 1.0),                          # articles and case normalised away
    ("Parisian cafes", ["Paris"], 0.0),                      # whole words only
    ("", ["Paris"], 0.0),
    ("yes", ["no", "yes"], 1.0),
])
def test_lenient_match(prediction: str, gold: list[str], expected: float) -> None:
    from branchwise.evals.metrics import lenient_match

    assert lenient_match(prediction, gold) == expected


def test_report_breaks_the_primary_metric_down_by_question_type() -> None:
    from branchwise.evals.report import summarize, to_markdown

    recs = [{"system": "a", "qid": str(i), "type": t, "metrics": {"f1": v}}
            for i, (t, v) in enumerate([("bridge", 1.0), ("bridge", 0.0), ("comparison", 0.5)])]
    s = summarize(recs, {"dataset": "d", "kind": "qa", "systems": ["a"]}, reference="a", n_resamples=200)
    assert s["by_type"] == {"a": {"bridge": {"mean": 0.5, "n": 2}, "comparison": {"mean": 0.5, "n": 1}}}
    assert "| a | 0.500 (n=2) | 0.500 (n=1) |" in to_markdown(s)
