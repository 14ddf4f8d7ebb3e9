"""Scoring one system output against one question's gold annotations.

Retrieval metrics are computed at the *document* level: retrieved chunks are mapped to their
documents (first occurrence wins, see :mod:`branchwise.evals.metrics`) and compared with the
question's graded qrels. Answer text is scored after removing citation markers (``[1]``),
which are not part of the answer and would otherwise count as tokens.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from branchwise.evals.datasets.types import EvalQuestion
from branchwise.evals.metrics import (
    choice_accuracy,
    citation_scores,
    cost_metrics,
    evidence_recall,
    exact_match,
    lenient_match,
    mrr,
    ndcg_at_k,
    recall_at_k,
    token_f1,
)
from branchwise.evals.systems import SystemOutput

_MARKERS = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")

#: the headline metric of each dataset kind (used for CIs, paired tests and plots)
PRIMARY_METRIC = {"qa": "f1", "mc": "accuracy", "ir": "ndcg@10", "unanswerable": "not_found"}


def strip_citation_markers(text: str) -> str:
    """``"Rush [1][2]."`` → ``"Rush."``."""
    return _MARKERS.sub("", text).strip()


def score_output(
    question: EvalQuestion, out: SystemOutput, kind: str, chunk_doc: Callable[[str], str], chunk_text: Callable[[str], str]
) -> dict[str, Any]:
    """The per-question record: what was retrieved and answered, and every metric.

    Args:
        question: the gold question.
        out: the system's output.
        kind: the dataset kind ("qa", "mc", "ir").
        chunk_doc: chunk id → document id (the index's chunk store).
        chunk_text: chunk id → text (for citation checks).
    """
    chunk_ids = [h.chunk_id for h in out.retrieved]
    docs = [chunk_doc(c) for c in chunk_ids]
    qrels = dict(question.qrels)
    metrics: dict[str, float] = {
        "ndcg@10": ndcg_at_k(docs, qrels, 10),
        "recall@5": recall_at_k(docs, qrels, 5),
        "recall@10": recall_at_k(docs, qrels, 10),
        "mrr@10": mrr(docs, qrels, 10),
    }
    record: dict[str, Any] = {
        "qid": question.id,
        "question": question.text,
        "type": question.type,
        "retrieved": chunk_ids,
        "retrieved_docs": list(dict.fromkeys(docs)),
        "gold_docs": list(question.gold_doc_ids),
        "answers": list(question.answers),
    }
    if out.answer is not None:
        text = strip_citation_markers(out.answer.text)
        cited = list(dict.fromkeys(c.chunk_id for c in out.answer.citations))
        record.update(answer=out.answer.text, found=out.answer.found, cited=cited)
        read = docs if out.context_ids is None else [chunk_doc(c) for c in out.context_ids]
        metrics["evidence_recall"] = evidence_recall(set(read), question.gold_doc_ids)
        if kind == "mc" and question.gold_choice is not None:
            metrics["accuracy"] = choice_accuracy(text, question.choices, question.gold_choice)
        elif kind == "unanswerable":
            metrics["made_up_gold"] = lenient_match(text, question.answers) if question.answers else 0.0
        elif question.answers:
            metrics["em"] = exact_match(text, question.answers)
            metrics["f1"] = token_f1(text, question.answers)
            metrics["lenient_acc"] = lenient_match(text, question.answers)
        metrics["not_found"] = float(not out.answer.found)
        trace = out.answer.trace
        support = getattr(trace, "support", None)
        if support and support.get("supported") is not None and support.get("method") != "abstain":
            metrics["supported"] = float(bool(support["supported"]))
        answer_rec = getattr(trace, "answer", None) or {}
        if out.answer.found and out.answer.citations:
            metrics["inferred_citations"] = float(bool(answer_rec.get("inferred_citations")))
        if question.supporting_facts:
            cs = citation_scores([chunk_text(c) for c in cited], [f.text for f in question.supporting_facts])
            metrics["citation_precision"] = cs.precision
            metrics["citation_recall"] = cs.recall
    metrics.update(cost_metrics(out.usage, out.context_tokens))
    before = out.info.get("tokens_before_compression")
    if before:
        metrics["compression_ratio"] = out.context_tokens / before
    record["metrics"] = metrics
    if out.info:
        record["info"] = out.info
    return record
