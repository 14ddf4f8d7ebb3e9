"""Benchmark: the relevance models (issue "Relevance models"), side by side with the baselines.

    .venv/bin/python benchmarks/relevance.py --parts sentences,paragraphs,cost,retrieval \\
        --reranker default --out reports/relevance

Parts (each appends its measurements to ``OUT/summary.json``, one object per measurement:
``{"dataset", "system", "metric", "value", "n", ...}``, and a table to ``OUT/summary.md``):

* ``sentences`` — sentence selection on HotpotQA questions 150-199 of the shared evaluation
  file (each question's own 10 paragraphs), compressed to 160 tokens by the extractive
  compressor: the share of questions keeping every gold supporting sentence
  (``all_gold_kept@160``) and the share of gold sentences kept (``fact_recall@160``). Systems:
  MiniLM cosine + bridge hop + lead prior (the previous default) and the reranker (with the
  compressor's settings as ``ExtractiveConfig()`` has them).
* ``paragraphs`` — all 200 questions, each ranking its own 10 paragraphs: both gold
  paragraphs in the top 3 (``both_gold_in_top3``) for BM25, dense (MiniLM), hybrid (RRF of the
  two) and the reranker.
* ``retrieval`` — nDCG@10 on Vaswani, Cranfield and HotpotQA paragraphs through
  ``branchwise eval`` (the composition root): hybrid, hybrid top-50 reranked
  (``hybrid_rerank``), the navigator with the embedding scorer and with the reranker.
* ``cost`` — passages scored per second on ~130-token passages (2 threads), and the query
  latency reranking adds (``hybrid_rerank`` minus ``hybrid``, from the retrieval part).

HotpotQA: CC BY-SA 4.0 (Yang et al. 2018); Vaswani and Cranfield: research use (Glasgow IR
collections). The reranker was trained on a disjoint file (``train_1468.jsonl``); the
evaluation questions are only measured here, never used for a choice.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from branchwise.assembly.settings import Settings
from branchwise.compression.extractive import ExtractiveConfig
from branchwise.files import atomic_write_json, atomic_write_text
from branchwise.models.factory import make_embedder
from branchwise.offline import apply_offline_defaults
from branchwise.relevance.factories import make_reranker
from branchwise.retrieval.search import reciprocal_rank_fusion
from branchwise.training.extractive import gold_sentence_recall
from branchwise.training.mining import load_hotpot_examples
from branchwise.training.reranker_data import question_rows
from branchwise.types import ScoredChunk

log = logging.getLogger("benchmarks.relevance")
REPO = Path(__file__).resolve().parents[1]


def shared(rel: str) -> Path:
    return Path(os.environ.get("BRANCHWISE_SHARED_DATA", REPO.parent / "shared" / "data")) / rel


class Results:
    """summary.json (one object per measurement) and summary.md, kept across parts."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        path = out / "summary.json"
        self.rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []

    def add(self, dataset: str, system: str, metric: str, value: float, n: int, **extra: Any) -> None:
        self.rows = [r for r in self.rows if (r["dataset"], r["system"], r["metric"]) != (dataset, system, metric)]
        self.rows.append({"dataset": dataset, "system": system, "metric": metric, "value": round(float(value), 4),
                          "n": int(n), **extra})
        self.save()

    def save(self) -> None:
        atomic_write_json(self.out / "summary.json", self.rows)
        lines = ["# Relevance models: measurements", "",
                 "Written by `python benchmarks/relevance.py` (see its docstring); 2 CPU cores, 24 GB, no GPU.", "",
                 "| dataset | system | metric | value | n |", "|---|---|---|---:|---:|"]
        for r in sorted(self.rows, key=lambda r: (r["dataset"], r["metric"], r["system"])):
            lines.append(f"| {r['dataset']} | {r['system']} | {r['metric']} | {r['value']:.4f} | {r['n']} |")
        atomic_write_text(self.out / "summary.md", "\n".join(lines) + "\n")


def part_sentences(res: Results, reranker: Any, spec: str, embedder: Any) -> None:
    examples = load_hotpot_examples(shared("hotpotqa/dev_distractor_200.jsonl"))[150:200]
    base = gold_sentence_recall(embedder, examples, 160, ExtractiveConfig(), progress=False)
    res.add("hotpotqa q150-199", "cosine+bridge+lead", "all_gold_kept@160", base.all_rate, len(examples))
    res.add("hotpotqa q150-199", "cosine+bridge+lead", "fact_recall@160", base.fact_recall, len(examples))
    default_w = ExtractiveConfig().reranker_weight
    for w in sorted({1.0, default_w}):
        rr = gold_sentence_recall(embedder, examples, 160, ExtractiveConfig(reranker_weight=w), reranker=reranker,
                                  progress=False)
        name = f"reranker:{spec}" if w == 1.0 else f"cosine+bridge+lead mixed with reranker:{spec} (w={w})"
        res.add("hotpotqa q150-199", name, "all_gold_kept@160", rr.all_rate, len(examples))
        res.add("hotpotqa q150-199", name, "fact_recall@160", rr.fact_recall, len(examples))


def _both3(scores: Sequence[float], gold: np.ndarray) -> float:
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return float(gold[order[:3]].sum() == gold.sum())


def part_paragraphs(res: Results, reranker: Any, spec: str, embedder: Any) -> None:
    import bm25s

    rows = [question_rows(e) for e in load_hotpot_examples(shared("hotpotqa/dev_distractor_200.jsonl"))]
    got: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": [], f"reranker:{spec}": []}
    for r in rows:
        q = r.example.question
        bm = bm25s.BM25()
        bm.index(bm25s.tokenize(r.paragraphs, stopwords="en", show_progress=False), show_progress=False)
        ids, sc = bm.retrieve(bm25s.tokenize([q], stopwords="en", show_progress=False), k=len(r.paragraphs),
                              show_progress=False)
        bm25 = np.zeros(len(r.paragraphs))
        bm25[ids[0]] = sc[0]
        dense = np.asarray(embedder.embed(r.paragraphs)) @ np.asarray(embedder.embed_query(q))
        fused = reciprocal_rank_fusion([
            [ScoredChunk(str(i), float(bm25[i]), "bm25") for i in np.argsort(-bm25, kind="stable")],
            [ScoredChunk(str(i), float(dense[i]), "dense") for i in np.argsort(-dense, kind="stable")]])
        hybrid = np.zeros(len(r.paragraphs))
        for rank, h in enumerate(fused):
            hybrid[int(h.chunk_id)] = len(fused) - rank
        for name, s in (("bm25", bm25), ("dense", dense), ("hybrid", hybrid),
                        (f"reranker:{spec}", reranker.score(q, r.paragraphs))):
            got[name].append(_both3(s, r.paragraph_gold))
    for name, vals in got.items():
        res.add("hotpotqa 200 (own 10 paragraphs)", name, "both_gold_in_top3", float(np.mean(vals)), len(vals))


def part_cost(res: Results, reranker: Any, spec: str) -> None:
    from transformers import AutoTokenizer

    from branchwise.models.embedders import bundled_minilm_path

    tok = AutoTokenizer.from_pretrained(str(bundled_minilm_path()), local_files_only=True)
    rows = [question_rows(e) for e in load_hotpot_examples(shared("hotpotqa/train_1468.jsonl"), limit=300)]
    pairs = [(r.example.question, p) for r in rows for p in r.paragraphs if 115 <= len(tok(p)["input_ids"]) <= 145]
    pairs = pairs[:256]
    reranker.score(pairs[0][0], [pairs[0][1]])  # load and warm up
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for q, p in _by_query(pairs):
            reranker.score(q, p)
        rates.append(len(pairs) / (time.perf_counter() - t0))
    res.add("hotpotqa train paragraphs (~130 tokens)", f"reranker:{spec}", "passages_per_s", max(rates), len(pairs),
            median=round(statistics.median(rates), 1), threads=_threads())


def _by_query(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    out: dict[str, list[str]] = {}
    for q, p in pairs:
        out.setdefault(q, []).append(p)
    return list(out.items())


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def part_retrieval(res: Results, spec: str, datasets: Sequence[str], runs: Path,
                   systems: Sequence[str] = ("hybrid", "hybrid_rerank", "navigator:embedding", "navigator:reranker")) -> None:
    from branchwise.evals.datasets import SHARED_PATHS, load_dataset
    from branchwise.evals.runner import EvalConfig, run_eval

    settings = Settings.from_env(reranker=spec)
    systems = list(systems)
    for name in datasets:
        data = load_dataset(name, shared(SHARED_PATHS[name]))
        out = runs / f"relevance-{name}"
        cfg = EvalConfig(out_dir=out, tree_summaries="extractive", settings=settings, progress=False)
        result = run_eval(data, systems, cfg, embedder=make_embedder("default", memory_cache=False))
        for system, s in result.summary["systems"].items():
            m = s["metrics"]
            res.add(name, system, "ndcg@10", m["ndcg@10"]["mean"], m["ndcg@10"]["n"])
            res.add(name, system, "latency_s", m["latency_s"]["mean"], m["latency_s"]["n"])
        lat = result.summary["systems"]
        added = lat["hybrid_rerank"]["metrics"]["latency_s"]["mean"] - lat["hybrid"]["metrics"]["latency_s"]["mean"]
        res.add(name, f"reranker:{spec}", "added_latency_s(hybrid top-50)", added, lat["hybrid"]["metrics"]["latency_s"]["n"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="sentences,paragraphs,cost,retrieval")
    p.add_argument("--reranker", default="default", help="reranker spec (see branchwise.relevance.registry)")
    p.add_argument("--datasets", default="vaswani,cranfield,hotpotqa", help="retrieval part: datasets")
    p.add_argument("--retrieval-systems", default="hybrid,hybrid_rerank,navigator:embedding,navigator:reranker",
                   help="retrieval part: systems (hybrid and hybrid_rerank are needed for the added latency)")
    p.add_argument("--runs", type=Path, default=REPO / "runs", help="where the retrieval part's eval runs go")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "relevance")
    args = p.parse_args()
    apply_offline_defaults()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    res = Results(args.out)
    embedder = make_embedder("default")
    reranker = make_reranker(args.reranker, embedder=embedder)  # a residual model reuses this MiniLM
    parts = set(args.parts.split(","))
    if "sentences" in parts:
        part_sentences(res, reranker, args.reranker, embedder)
    if "paragraphs" in parts:
        part_paragraphs(res, reranker, args.reranker, embedder)
    if "cost" in parts:
        part_cost(res, reranker, args.reranker)
    if "retrieval" in parts:
        part_retrieval(res, args.reranker, args.datasets.split(","), args.runs, args.retrieval_systems.split(","))
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
