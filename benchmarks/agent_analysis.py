"""Where the agent's parts helped or hurt: a per-question analysis of a finished ``branchwise eval`` run.

    .venv/bin/python benchmarks/agent_analysis.py --run runs/hotpot200 --system agent \\
        --reference hybrid_rag --out reports/hotpotqa/agent_analysis.md

Reads ``RUN/results.jsonl`` and the agent's traces (``RUN/traces/<system>/<qid>.json``) and,
question by question against the reference flat pipeline (the same questions, paired):

* **tree** — gold documents the agent read that only the tree route found (no hybrid query of
  that question returned them);
* **second hop** — questions where the reranker judged the pool insufficient and the bridge
  query ran; gold documents first found by it and read;
* **reranker** — gold documents the agent read that the reference's top-k did not hold
  (promoted from the wide candidate list), and gold documents the reference read but the agent
  did not (lost);
* **compression** — questions whose evidence was compressed (extractive) vs read whole;

each with the number of questions, the agent's and the reference's mean F1 on them, and how
many the agent won or lost; then a few worked examples from the traces. Answer F1 and the
documents come from the run's own records; nothing is re-run.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

log = logging.getLogger("benchmarks.agent_analysis")


def doc_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


@dataclass
class Question:
    qid: str
    question: str
    gold: set[str]
    f1: float
    ref_f1: float
    answer: str
    ref_answer: str
    answers: list[str]
    read: set[str]
    ref_read: set[str]
    trace: dict[str, Any]
    tags: dict[str, list[str]] = field(default_factory=dict)


def load(run: Path, system: str, reference: str, rag_k: int) -> list[Question]:
    recs: dict[tuple[str, str], dict[str, Any]] = {}
    for line in (run / "results.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            recs[(r["system"], r["qid"])] = r
    out = []
    for (name, qid), r in recs.items():
        ref = recs.get((reference, qid))
        tpath = run / "traces" / system / f"{qid}.json"
        if name != system or ref is None or not tpath.is_file():
            continue
        trace = json.loads(tpath.read_text(encoding="utf-8"))
        removed = set((trace.get("compression") or {}).get("removed", []))
        pool = [c for rnd in trace.get("rounds", []) for c in rnd.get("new_chunk_ids", [])]
        read = {doc_of(c) for c in pool if c not in removed}
        out.append(Question(qid, r["question"], set(r.get("gold_docs", [])), r["metrics"].get("f1", 0.0),
                            ref["metrics"].get("f1", 0.0), r.get("answer", ""), ref.get("answer", ""),
                            r.get("answers", []), read, set(ref.get("retrieved_docs", [])[:rag_k]), trace))
    return sorted(out, key=lambda q: q.qid)


def tag(q: Question) -> None:
    t = q.trace
    first = [x for x in t.get("retrievals", []) if x.get("round", 0) == 0]
    by_source: dict[str, set[str]] = {}
    for x in t.get("retrievals", []):
        by_source.setdefault(x["source"], set()).update(doc_of(c) for c in x.get("chunk_ids", []))
    hybrid = by_source.get("hybrid", set()) | by_source.get("dense", set()) | by_source.get("bm25", set())
    tree = by_source.get("tree", set())
    q.tags["tree_only_gold_read"] = sorted((q.gold & q.read & tree) - hybrid)
    rounds = t.get("rounds", [])
    hop_new = {doc_of(c) for rnd in rounds[1:] for c in rnd.get("new_chunk_ids", [])}
    first_docs = {doc_of(c) for x in first for c in x.get("chunk_ids", [])}
    q.tags["hop_ran"] = ["yes"] if len(rounds) > 1 else []
    q.tags["hop_gold_read"] = sorted((q.gold & q.read & hop_new) - first_docs)
    q.tags["promoted_gold"] = sorted((q.gold & q.read) - q.ref_read)
    q.tags["lost_gold"] = sorted((q.gold & q.ref_read) - q.read)
    method = (t.get("compression") or {}).get("method", "none")
    q.tags["compressed"] = [method] if method not in ("none", "abstain") else []
    support = t.get("support") or {}
    q.tags["withheld"] = ["yes"] if (t.get("answer") or {}).get("withheld") else []
    q.tags["support_method"] = [support.get("method", "")] if support else []


def row(name: str, qs: list[Question]) -> str:
    if not qs:
        return f"| {name} | 0 | – | – | – | – | – |"
    won = sum(q.f1 > q.ref_f1 for q in qs)
    lost = sum(q.f1 < q.ref_f1 for q in qs)
    return (f"| {name} | {len(qs)} | {mean(q.f1 for q in qs):.3f} | {mean(q.ref_f1 for q in qs):.3f} | "
            f"{mean(q.f1 - q.ref_f1 for q in qs):+.3f} | {won} | {lost} |")


def example(q: Question, why: str) -> str:
    return (f"- **{q.question.strip()}** (gold: {', '.join(q.answers)}; gold documents: {', '.join(sorted(q.gold))})"
            f" — {why}. Agent: \"{q.answer}\" (F1 {q.f1:.2f}, read {', '.join(sorted(q.read))}); "
            f"reference: \"{q.ref_answer}\" (F1 {q.ref_f1:.2f}, read {', '.join(sorted(q.ref_read))}).")


def report(qs: list[Question], system: str, reference: str, rag_k: int) -> str:
    for q in qs:
        tag(q)
    has = lambda key: [q for q in qs if q.tags[key]]  # noqa: E731
    lines = [
        f"## Where `{system}` gained and lost against `{reference}` ({len(qs)} paired questions)",
        "",
        f"From the traces (`benchmarks/agent_analysis.py`). \"Read\" = the documents in the agent's final context; "
        f"the reference reads its top {rag_k}. Won / lost = questions where the agent's F1 is above / below "
        "the reference's.",
        "",
        f"| questions where ... | n | {system} F1 | {reference} F1 | Δ | won | lost |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("all", qs),
        row("the tree route alone found a gold document that was read", has("tree_only_gold_read")),
        row("the second hop ran", has("hop_ran")),
        row("... and brought a gold document that was read", has("hop_gold_read")),
        row(f"the agent read a gold document outside {reference}'s top {rag_k} (reranker promoted)",
            has("promoted_gold")),
        row(f"{reference} read a gold document the agent did not (lost)", has("lost_gold")),
        row("the evidence was compressed", has("compressed")),
        row("the evidence was read whole", [q for q in qs if not q.tags["compressed"]]),
        row("the support check withheld the answer", has("withheld")),
        "",
        "Worked examples:",
        "",
    ]
    picks: list[tuple[Question, str]] = []
    for key, why in (("promoted_gold", "the reranker promoted a gold document hybrid search ranked low"),
                     ("hop_gold_read", "the second hop fetched the bridge document"),
                     ("lost_gold", "the agent dropped a gold document hybrid search had")):
        cands = sorted(has(key), key=lambda q: -abs(q.f1 - q.ref_f1))
        if cands:
            picks.append((cands[0], why))
    lines += [example(q, why) for q, why in picks] or ["(none)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--system", default="agent")
    p.add_argument("--reference", default="hybrid_rag")
    p.add_argument("--rag-k", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="write the markdown here (default: print it)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    qs = load(args.run, args.system, args.reference, args.rag_k)
    if not qs:
        raise SystemExit(f"no paired questions with traces in {args.run} for {args.system} vs {args.reference}")
    text = report(qs, args.system, args.reference, args.rag_k)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        log.info("wrote %s", args.out)
    else:
        print(text)


if __name__ == "__main__":
    main()
