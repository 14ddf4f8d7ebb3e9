"""The UDCG study: which retrieval metric best predicts end-to-end answer quality?

Trappolini et al. (2025, arXiv 2510.21440) report that UDCG correlates with end-to-end
accuracy markedly better than nDCG / Recall (up to +36%). This study measures the same thing
on a finished evaluation run:

1. for every (system, question) record of a QA run, the top ``k`` retrieved chunks are the
   reader's context; each gets its utility ``u = 1 - P("NO" | question, chunk)`` from the
   reader LLM (:mod:`branchwise.evals.udcg`), cached per (question, chunk) in
   ``udcg_utilities.jsonl`` because systems retrieve overlapping chunks;
2. relevance labels are the gold documents; UDCG, nDCG@k and Recall@k are computed over the
   same ``k`` chunks;
3. with ``read_retrieval_only`` the reader also answers from the top ``k`` chunks of each
   retrieval-only system (bm25, dense, ...), so those systems get an F1 too (answers cached in
   ``udcg_reader.jsonl``) — the paper's setting of many retrievers feeding one reader;
4. Spearman and Kendall correlations of each metric with answer F1, pooled over all
   (system, question) pairs, and over system means.

Outputs ``udcg_study.json`` and ``udcg_study.md`` in the run folder.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.evals.baselines import answer_from_evidence, evidence_from_chunks
from branchwise.evals.metrics import ndcg_at_k, recall_at_k, token_f1
from branchwise.evals.runner import RESULTS_FILE, ResultsFile
from branchwise.evals.scoring import strip_citation_markers
from branchwise.evals.stats import correlation
from branchwise.evals.systems import SystemContext
from branchwise.evals.udcg import UDCGConfig, passage_utilities, udcg
from branchwise.models.base import LLM, Embedder
from branchwise.files import atomic_write_json, atomic_write_text
from branchwise.types import ScoredChunk

log = logging.getLogger(__name__)

METRICS = ("udcg", "ndcg", "recall")


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """Settings of the UDCG study.

    Attributes:
        k: passages per question (the reader's context size; naive RAG uses 5).
        read_retrieval_only: let the reader answer for retrieval-only systems too.
        udcg: UDCG weights and prompt settings.
    """

    k: int = 5
    read_retrieval_only: bool = False
    udcg: UDCGConfig = field(default_factory=UDCGConfig)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InputError("StudyConfig.k must be >= 1.", fix="e.g. k=5.")


def _load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta_path = run_dir / "run.json"
    if not meta_path.exists():
        raise InputError(f"{run_dir} is not an evaluation run (no run.json).",
                         fix="pass the --out folder of a finished `branchwise eval` run.")
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") != "qa":
        raise InputError(f"the UDCG study needs a QA run with answers; {run_dir} is a {meta.get('kind')!r} run.",
                         fix="run `branchwise eval` on hotpotqa / musique / 2wikimultihopqa first.")
    return meta, ResultsFile(run_dir / RESULTS_FILE).load()


class _JsonlCache:
    """A resumable key → value cache in a JSONL file."""

    def __init__(self, path: Path, key_fields: tuple[str, ...]) -> None:
        self.file = ResultsFile(path)
        self.fields = key_fields
        self.data = {tuple(r[f] for f in key_fields): r for r in self.file.load()}

    def get(self, *key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, record: dict[str, Any]) -> None:
        self.data[tuple(record[f] for f in self.fields)] = record
        self.file.append(record)


def run_udcg_study(
    run_dir: Path, llm: LLM, config: StudyConfig = StudyConfig(), *, embedder: Embedder | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute UDCG for every QA record of the run and correlate the metrics with F1.

    ``embedder`` opens the run's index (None: the one recorded in its manifest).
    """
    from branchwise.retrieval.index import Index

    run_dir = Path(run_dir)
    meta, records = _load_run(run_dir)
    index = Index.open(Path(meta["config"].get("index_dir") or run_dir / "index"), embedder)
    utilities = _JsonlCache(run_dir / "udcg_utilities.jsonl", ("qid", "chunk_id"))
    reader = _JsonlCache(run_dir / "udcg_reader.jsonl", ("system", "qid"))
    ctx = SystemContext(index, lambda: llm, run_dir / "cache" / "llm.sqlite", rag_k=config.k)
    rows = []
    for rec in tqdm(records, desc="UDCG study", unit="record", disable=not progress):
        top = rec["retrieved"][: config.k]
        f1 = rec["metrics"].get("f1")
        if f1 is None and config.read_retrieval_only and top and rec.get("answer") is None:
            f1 = _read(ctx, reader, rec, top)
        if f1 is None or not top:
            continue
        missing = [c for c in dict.fromkeys(top) if utilities.get(rec["qid"], c) is None]
        if missing:
            texts = [index.chunks.get(c).text for c in missing]
            with ctx.session_llm() as session:
                found = passage_utilities(session, rec["question"], texts, config.udcg)
            for c, u in zip(missing, found):
                utilities.put({"qid": rec["qid"], "chunk_id": c, "utility": u})
        gold = set(rec["gold_docs"])
        docs = [index.chunks.get(c).doc_id for c in top]
        us = [utilities.get(rec["qid"], c)["utility"] for c in top]  # type: ignore[index]
        rows.append({"system": rec["system"], "qid": rec["qid"], "f1": f1,
                     "udcg": udcg(us, [d in gold for d in docs], config.udcg),
                     "ndcg": ndcg_at_k(docs, gold, config.k), "recall": recall_at_k(docs, gold, config.k)})
    return _write_study(run_dir, rows, config)


def _read(ctx: SystemContext, cache: _JsonlCache, rec: dict[str, Any], top: list[str]) -> float:
    """The reader's F1 answering from a retrieval-only system's top chunks (cached)."""
    hit = cache.get(rec["system"], rec["qid"])
    if hit is None:
        evidence = evidence_from_chunks(ctx.index, [ScoredChunk(c, 0.0, rec["system"]) for c in top])
        answer, _, _ = answer_from_evidence(ctx, rec["question"], evidence)
        hit = {"system": rec["system"], "qid": rec["qid"], "answer": answer.text}
        cache.put(hit)
    gold = rec.get("answers") or []
    return token_f1(strip_citation_markers(hit["answer"]), gold) if gold else 0.0


def _correlations(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pooled = {m: asdict(correlation([r[m] for r in rows], [r["f1"] for r in rows])) for m in METRICS}
    by_sys: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_sys[r["system"]].append(r)
    means = {s: {k: sum(r[k] for r in rs) / len(rs) for k in ("f1", *METRICS)} for s, rs in by_sys.items()}
    system_level = {m: asdict(correlation([v[m] for v in means.values()], [v["f1"] for v in means.values()]))
                    for m in METRICS}
    return {"pooled": pooled, "system_level": system_level, "system_means": means}


def _write_study(run_dir: Path, rows: list[dict[str, Any]], config: StudyConfig) -> dict[str, Any]:
    if len(rows) < 3:
        raise InputError("the UDCG study needs at least 3 records with an answer F1.",
                         fix="run a QA system (e.g. naive_rag) on more questions, or pass --read-retrieval-only.")
    result = {"k": config.k, "n_records": len(rows), "config": asdict(config), **_correlations(rows)}
    atomic_write_json(run_dir / "udcg_study.json", result)
    atomic_write_text(run_dir / "udcg_study.md", study_markdown(result))
    return result


def study_markdown(result: dict[str, Any]) -> str:
    """The study's correlation tables as markdown."""
    k = result["k"]
    names = {"udcg": f"UDCG (top {k})", "ndcg": f"nDCG@{k}", "recall": f"Recall@{k}"}
    lines = [f"## UDCG study: correlation with answer F1 ({result['n_records']} system × question records)", ""]
    for level, title in (("pooled", "per (system, question)"), ("system_level", "over system means")):
        lines += [f"**{title}**", "", "| metric | Spearman ρ | p | Kendall τ | p | n |", "|---|---:|---:|---:|---:|---:|"]
        for m in METRICS:
            c = result[level][m]
            lines.append(f"| {names[m]} | {c['spearman']:.3f} | {c['spearman_p']:.3g} | {c['kendall']:.3f} | "
                         f"{c['kendall_p']:.3g} | {c['n']} |")
        lines.append("")
    lines += ["| system | F1 | UDCG | nDCG | Recall |", "|---|---:|---:|---:|---:|"]
    for s, v in result["system_means"].items():
        lines.append(f"| {s} | {v['f1']:.3f} | {v['udcg']:.3f} | {v['ndcg']:.3f} | {v['recall']:.3f} |")
    return "\n".join(lines) + "\n"
