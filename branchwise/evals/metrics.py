"""Evaluation metrics: answer quality, retrieval quality, evidence and cost.

Conventions (each is tested against hand-computed values or a reference implementation):

* **Answers** — :func:`exact_match` and :func:`token_f1` use the official SQuAD v1.1
  normalisation (lower-case, strip punctuation, drop the articles *a/an/the*, squeeze
  whitespace; Rajpurkar et al. 2016) and take the maximum over the gold answers, as the
  SQuAD and HotpotQA scripts do.
* **Retrieval** — ranked lists are sequences of ids, best first; relevance judgements
  ("qrels") are either a mapping ``id -> graded relevance`` or a collection of relevant ids
  (relevance 1). Judgements ``<= 0`` count as non-relevant, as in ``trec_eval``.
  :func:`ndcg_at_k` follows ``trec_eval``'s ``ndcg_cut``: linear gain (the grade itself),
  ``log2(rank + 1)`` discount, and the ideal ranking built from *all* judged relevant ids,
  not only the retrieved ones (so failing to retrieve a relevant id costs).
  Repeated ids keep only their first occurrence *before* the cut-off: rankings of chunks
  mapped to their documents become rankings of distinct documents (the MaxP convention).
* **Evidence** — supporting-evidence recall counts gold evidence ids found among the
  retrieved ones; citation precision/recall ask whether the *cited* texts contain the gold
  supporting facts (normalised substring match).

All functions are pure and return floats in [0, 1] unless documented otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Collection, Mapping, Sequence

# answer metrics live on the ground floor (the compressors' gold labels use them too); re-exported here
from branchwise.text.answers import choice_accuracy, choose_option, exact_match, lenient_match, normalize_answer, token_f1  # noqa: F401
from branchwise.types import Usage

Qrels = Mapping[str, float] | Collection[str]


# ---------------------------------------------------------------------------------------
# retrieval
# ---------------------------------------------------------------------------------------
def _grades(qrels: Qrels) -> dict[str, float]:
    if isinstance(qrels, Mapping):
        return {str(k): float(v) for k, v in qrels.items()}
    return {str(k): 1.0 for k in qrels}


def _relevant(qrels: Qrels) -> set[str]:
    return {k for k, v in _grades(qrels).items() if v > 0}


def _dedupe(ranked: Sequence[str]) -> list[str]:
    """Keep the first occurrence of each id (a retriever listing an id twice gains nothing)."""
    seen: set[str] = set()
    out = []
    for r in ranked:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def recall_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Fraction of the relevant ids found in the top ``k``; 0.0 when nothing is relevant."""
    rel = _relevant(qrels)
    if not rel:
        return 0.0
    return len(rel.intersection(_dedupe(ranked)[:k])) / len(rel)


def precision_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Relevant ids in the top ``k`` divided by ``k`` (trec_eval ``P_k``)."""
    rel = _relevant(qrels)
    return sum(1 for r in _dedupe(ranked)[:k] if r in rel) / k


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain, gain_i / log2(i + 1) for 1-based rank i."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], qrels: Qrels, k: int = 10) -> float:
    """trec_eval ``ndcg_cut_k``: linear graded gain, log2 discount, ideal over all qrels."""
    grades = _grades(qrels)
    gains = [max(grades.get(r, 0.0), 0.0) for r in _dedupe(ranked)[:k]]
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = dcg(ideal)
    return dcg(gains) / idcg if idcg > 0 else 0.0


def mrr(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """Reciprocal rank of the first relevant id (within the top ``k`` if given), else 0."""
    rel = _relevant(qrels)
    for i, r in enumerate(_dedupe(ranked)[: k if k is not None else None]):
        if r in rel:
            return 1.0 / (i + 1)
    return 0.0


def evidence_recall(retrieved_ids: Collection[str], gold_ids: Collection[str]) -> float:
    """Supporting-evidence recall: fraction of gold evidence ids among the retrieved ids.

    For HotpotQA the ids are the gold paragraph (document) ids; a question counts fully
    supported only when both of its paragraphs were retrieved.
    """
    gold = set(gold_ids)
    if not gold:
        return 0.0
    return len(gold.intersection(retrieved_ids)) / len(gold)


# ---------------------------------------------------------------------------------------
# citations
# ---------------------------------------------------------------------------------------
def _norm_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def fact_in_text(fact: str, text: str) -> bool:
    """Whether a supporting fact (a sentence) occurs in ``text``, ignoring case/punctuation."""
    f = _norm_text(fact)
    return bool(f) and f in _norm_text(text)


@dataclass(frozen=True, slots=True)
class CitationScores:
    """Citation quality of one answer.

    Attributes:
        precision: fraction of cited texts that contain at least one gold supporting fact.
        recall: fraction of gold supporting facts contained in at least one cited text.
    """

    precision: float
    recall: float


def citation_scores(
    cited_texts: Sequence[str],
    supporting_facts: Sequence[str],
    contains: Callable[[str, str], bool] = fact_in_text,
) -> CitationScores:
    """Do the cited chunks contain the supporting facts?

    Args:
        cited_texts: the texts of the chunks the answer cites (deduplicated by the caller).
        supporting_facts: the gold supporting sentences.
        contains: ``(fact, text) -> bool``; normalised substring match by default.

    With no citations precision is 0 (nothing cited is correct) and with no gold facts
    recall is 0 — neither case can show a system doing well.
    """
    facts = [f for f in supporting_facts if f.strip()]
    if not cited_texts:
        return CitationScores(0.0, 0.0)
    precision = sum(1 for t in cited_texts if any(contains(f, t) for f in facts)) / len(cited_texts)
    recall = sum(1 for f in facts if any(contains(f, t) for t in cited_texts)) / len(facts) if facts else 0.0
    return CitationScores(precision, recall)


# ---------------------------------------------------------------------------------------
# cost
# ---------------------------------------------------------------------------------------
def context_tokens(texts: Sequence[str], count_tokens: Callable[[str], int]) -> int:
    """Total tokens of the evidence texts handed to the generator."""
    return sum(count_tokens(t) for t in texts)


def compression_ratio(original_tokens: int, compressed_tokens: int) -> float:
    """``compressed / original`` (lower is more compression); 1.0 when nothing was given."""
    if original_tokens <= 0:
        return 1.0
    return compressed_tokens / original_tokens


def cost_metrics(usage: Usage, context_tok: int) -> dict[str, float]:
    """The per-query cost columns of the report: LLM calls, tokens, latency, context."""
    return {
        "llm_calls": float(usage.llm_calls),
        "prompt_tokens": float(usage.prompt_tokens),
        "completion_tokens": float(usage.completion_tokens),
        "latency_s": float(usage.latency_s),
        "context_tokens": float(context_tok),
    }
