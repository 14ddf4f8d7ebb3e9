"""Benchmark: should the reranker replace hybrid's order, or be fused with it? (training data only)

    .venv/bin/python benchmarks/rerank_fusion.py --questions runs/tune/hotpot_val300.jsonl --out runs/fusion

``--questions`` is a HotpotQA-format file of the *validation split* of the training file
(``split_examples(train_1468, 0.2)``, the 300 questions the bundled reranker never trained on),
written once by ``branchwise.training.reranker_data.split_examples``; never the 200 evaluation
questions. Their paragraphs are pooled into one corpus and indexed through the eval workspace
(the composition root); each question takes hybrid's top 50 (as ``hybrid_rerank`` does), and the
reranker scores them once. Orders compared offline, by nDCG@10 of the gold paragraphs:

* ``hybrid`` — the first stage alone; ``rerank`` — the reranker's order (``hybrid_rerank``);
* ``fuse(w, k)`` — ``w / (k + rank_reranker) + (1 - w) / (k + rank_hybrid)`` (weighted RRF).

The fusion's ``(w, k)`` is chosen on the first half of the questions (by id) and reported on
the second half, with the other orders beside it. Writes ``OUT/fusion.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from branchwise.evals.metrics import ndcg_at_k
from branchwise.files import atomic_write_jsonl

REPO = Path(__file__).resolve().parents[1]
GRID = [(w, k) for w in (0.3, 0.5, 0.7, 0.85) for k in (5, 20, 60)]


def fuse(rerank_scores: Sequence[float], w: float, k: int) -> list[int]:
    """Positions (hybrid order = 0..n-1) ordered by the weighted RRF of both ranks."""
    n = len(rerank_scores)
    r_rank = np.empty(n, dtype=int)
    r_rank[np.argsort(-np.asarray(rerank_scores), kind="stable")] = np.arange(n)
    fused = [w / (k + r_rank[i] + 1) + (1 - w) / (k + i + 1) for i in range(n)]
    return sorted(range(n), key=lambda i: -fused[i])


def score_questions(questions: Path, out: Path) -> list[dict[str, Any]]:
    from branchwise.assembly.root import Assembly, open_index
    from branchwise.assembly.settings import Settings
    from branchwise.evals.datasets import load_dataset
    from branchwise.evals.runner import EvalConfig, run_eval
    from branchwise.models.factory import make_embedder
    from branchwise.relevance.base import passage_text

    cache = out / "scores.jsonl"
    if cache.exists():
        return [json.loads(line) for line in cache.read_text().splitlines()]
    data = load_dataset("hotpotqa", questions)
    settings = Settings.from_env(reranker="default")
    cfg = EvalConfig(out_dir=out, tree_summaries="extractive", settings=settings, progress=False)
    embedder = make_embedder("default", memory_cache=False)
    run_eval(data, ["hybrid"], cfg, embedder=embedder)  # builds the index (and scores hybrid alone)
    index = open_index(out / "index", embedder=embedder)
    reranker = Assembly(index, settings).reranker()
    rows = []
    for q in tqdm(data.questions, desc="reranking hybrid top 50"):
        hits = index.search_hybrid(q.text, 50)
        chunks = [index.chunks.get(h.chunk_id) for h in hits]
        scores = reranker.score(q.text, [passage_text(c.title, c.text) for c in chunks])  # type: ignore[union-attr]
        rows.append({"qid": q.id, "docs": [c.doc_id for c in chunks], "rerank": scores,
                     "gold": sorted(q.gold_doc_ids)})
    atomic_write_jsonl(cache, rows)
    return rows


def evaluate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r["qid"])
    tune, test = rows[: len(rows) // 2], rows[len(rows) // 2 :]

    def mean_ndcg(part: Sequence[dict[str, Any]], order_of) -> float:  # type: ignore[no-untyped-def]
        return float(np.mean([ndcg_at_k([r["docs"][i] for i in order_of(r)], r["gold"], 10) for r in part]))

    def hybrid(r):  # type: ignore[no-untyped-def]
        return range(len(r["docs"]))

    def rerank(r):  # type: ignore[no-untyped-def]
        return list(np.argsort(-np.asarray(r["rerank"]), kind="stable"))

    grid = {f"fuse(w={w}, k={k})": mean_ndcg(tune, lambda r, w=w, k=k: fuse(r["rerank"], w, k)) for w, k in GRID}
    best = max(grid, key=lambda name: grid[name])
    w, k = next((w, k) for w, k in GRID if f"fuse(w={w}, k={k})" == best)
    return {
        "questions": {"tune": len(tune), "test": len(test)},
        "tune": {"hybrid": mean_ndcg(tune, hybrid), "rerank": mean_ndcg(tune, rerank), **grid},
        "chosen": best,
        "test": {"hybrid": mean_ndcg(test, hybrid), "rerank": mean_ndcg(test, rerank),
                 best: mean_ndcg(test, lambda r: fuse(r["rerank"], w, k))},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=Path, default=REPO / "runs" / "tune" / "hotpot_val300.jsonl")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "fusion")
    args = p.parse_args()
    from branchwise.offline import apply_offline_defaults

    apply_offline_defaults()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    result = evaluate(score_questions(args.questions, args.out))
    (args.out / "fusion.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
