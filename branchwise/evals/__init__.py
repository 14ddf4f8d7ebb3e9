"""Evaluation: datasets, metrics (incl. UDCG), systems side by side, resumable runs, reports.

* :mod:`~branchwise.evals.datasets` — HotpotQA, 2Wiki, MuSiQue, BEIR, TREC (Vaswani),
  Cranfield, QuALITY and NQ long pages, all loaded into one :class:`EvalDataset` shape;
* :mod:`~branchwise.evals.metrics` — EM/F1 (SQuAD), MC accuracy, Recall@k, nDCG@k
  (trec_eval), MRR, evidence and citation scores, cost;
* :mod:`~branchwise.evals.udcg` — UDCG (arXiv 2510.21440) and :mod:`~branchwise.evals.study`,
  its correlation study;
* :mod:`~branchwise.evals.stats` — bootstrap CIs, paired tests, rank correlations;
* :mod:`~branchwise.evals.systems` — the :class:`System` protocol and registry
  (:mod:`~branchwise.evals.baselines`, :mod:`~branchwise.evals.adapters`);
* :mod:`~branchwise.evals.runner` — :func:`run_eval`; :mod:`~branchwise.evals.report` and
  :mod:`~branchwise.evals.plots` — summary tables and PNGs.

Heavy submodules (systems, runner) are imported on use; ``from branchwise.evals import
metrics`` stays light.
"""

from branchwise.evals.datasets import EvalDataset, EvalQuestion, SupportingFact, load_dataset
from branchwise.evals.metrics import exact_match, mrr, ndcg_at_k, recall_at_k, token_f1

__all__ = [
    "EvalDataset",
    "EvalQuestion",
    "SupportingFact",
    "exact_match",
    "load_dataset",
    "mrr",
    "ndcg_at_k",
    "recall_at_k",
    "token_f1",
]
