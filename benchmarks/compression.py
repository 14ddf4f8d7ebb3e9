"""Benchmark: answer quality vs context tokens for the compressors on HotpotQA (real models).

For a fixed sample of HotpotQA distractor questions (each with its own 10 paragraphs, ~1240
tiktoken tokens), the same short-answer reader (the embedded Qwen2.5-Coder-1.5B GGUF)
answers from:

* ``closed-book`` — no context at all (what selective augmentation falls back to);
* ``none`` — all 10 paragraphs, uncompressed;
* ``extractive`` — RECOMP extractive at ``--budget`` tokens (all-MiniLM-L6-v2, or ``--encoder``);
* ``abstractive`` — RECOMP abstractive (LLM summary with selective augmentation);
* ``color`` — CoLoR-style: extractive ladder + abstractive candidates, the shortest one the
  LLM judges sufficient (no gold at inference);
* ``gold-sentences`` — only the gold supporting sentences (with their titles): the ceiling of
  any sentence selector at this reader, independent of the scorer;
* ``color-oracle`` (``--oracle``) — the same candidates, labelled with gold (reader F1 ≥ 0.5),
  shortest success chosen: the ceiling a learned selector could reach.

Reported per method: EM and F1 (SQuAD normalisation), mean context tokens, mean ratio
against ``none``, how often the context was dropped, and compression seconds. The target
from RECOMP (arXiv 2310.04408) is ≤ 15% of the tokens for ≤ 2 F1 points lost.

LLM calls go through a sqlite call cache (``--cache-dir``), so an interrupted run resumes
for free and identical prompts (e.g. the abstractive summary reused inside CoLoR) are paid
once. Heavy: run it alone, e.g.
``flock /tmp/bw-heavy.lock .venv/bin/python benchmarks/compression.py --questions 24``.
HotpotQA: CC BY-SA 4.0, Yang et al. 2018.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from branchwise.evals.metrics import exact_match, token_f1
from branchwise.compression.abstractive import AbstractiveCompressor
from branchwise.compression.color import (
    AnswerLabeler,
    ColorCompressor,
    LLMReader,
    generate_candidates,
    shortest_successful,
)
from branchwise.compression.base import CompressedContext, Compressor, NoCompression, evidence_tokens, with_text
from branchwise.compression.extractive import ExtractiveCompressor, ExtractiveConfig
from branchwise.training.mining import QAExample, load_hotpot_examples
from branchwise.models.factory import make_embedder, make_llm
from branchwise.offline import apply_offline_defaults
from branchwise.files import atomic_write_json

log = logging.getLogger("benchmarks.compression")

METHODS = ("closed-book", "none", "extractive", "abstractive", "color")


def _row(method: str, ex: QAExample, ctx: CompressedContext | None, answer: str, seconds: float) -> dict[str, Any]:
    return {
        "method": method,
        "id": ex.id,
        "gold": ex.answers[0],
        "answer": answer,
        "em": exact_match(answer, list(ex.answers)),
        "f1": token_f1(answer, list(ex.answers)),
        "tokens": ctx.tokens_after if ctx else 0,
        "tokens_before": ctx.tokens_before if ctx else 0,
        "dropped": bool(ctx and ctx.dropped),
        "compress_s": round(seconds, 2),
        "note": ctx.note if ctx else "",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    examples = load_hotpot_examples(args.data, limit=args.questions, offset=args.offset)
    llm = make_llm(args.llm, cache_dir=args.cache_dir)
    embedder = make_embedder(args.encoder or "default")
    reader = LLMReader(llm)
    extractive = ExtractiveCompressor(embedder, ExtractiveConfig(bridge=args.bridge, lead_bonus=args.lead_bonus))
    abstractive = AbstractiveCompressor(llm)
    compressors: dict[str, Compressor] = {
        "none": NoCompression(),
        "extractive": extractive,
        "abstractive": abstractive,
        "color": ColorCompressor(extractive, abstractive, llm),
    }
    rows: list[dict[str, Any]] = []
    for ex in tqdm(examples, desc="compression benchmark", unit="q"):
        for method in args.methods:
            if method == "closed-book":
                rows.append(_row(method, ex, None, reader.answer(ex.question, []), 0.0))
                continue
            if method == "gold-sentences":
                ctx = _gold_sentences(ex)
                rows.append(_row(method, ex, ctx, reader.answer(ex.question, ctx.items), 0.0))
                continue
            if method == "color-oracle":
                rows.append(_oracle(ex, extractive, abstractive, reader, args.budget))
                continue
            budget = 100_000 if method == "none" else args.budget
            t0 = time.perf_counter()
            ctx = compressors[method].compress(ex.question, ex.evidence, budget)
            dt = time.perf_counter() - t0
            rows.append(_row(method, ex, ctx, reader.answer(ex.question, ctx.items), dt))
        log.info("%s done (%d rows)", ex.id, len(rows))
    return {
        "config": {k: str(v) for k, v in vars(args).items() if k != "func"},
        "summary": summarise(rows),
        "rows": rows,
    }


def _gold_sentences(ex: QAExample) -> CompressedContext:
    """The gold supporting sentences of each paragraph, in paragraph order, as one item per title."""
    by_title: dict[str, list[str]] = {}
    for title, sentence in ex.supporting:
        by_title.setdefault(title, []).append(sentence)
    items = [with_text(ev, " ".join(by_title[ev.title])) for ev in ex.evidence if ev.title in by_title]
    return CompressedContext(items, evidence_tokens(ex.evidence), evidence_tokens(items), "gold-sentences", 0)


def _oracle(
    ex: QAExample, extractive: ExtractiveCompressor, abstractive: AbstractiveCompressor, reader: LLMReader, budget: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    cands, _ = generate_candidates(ex.question, ex.evidence, budget, extractive, abstractive)
    labeler = AnswerLabeler(reader)
    for c in cands:
        c.label = labeler.label(ex.question, ex.answers, c)
    best = shortest_successful(cands)
    win = cands[best] if best is not None else max(cands, key=lambda c: c.tokens)
    ctx = CompressedContext(
        win.items,
        evidence_tokens(ex.evidence),
        win.tokens,
        "color-oracle",
        budget,
        dropped=not win.items,
        note=win.name,
    )
    return _row("color-oracle", ex, ctx, reader.answer(ex.question, win.items), time.perf_counter() - t0)


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    full = {r["id"]: r["tokens"] for r in rows if r["method"] == "none"}
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        ratios = [r["tokens"] / full[r["id"]] for r in rs if full.get(r["id"])]
        out[method] = {
            "n": len(rs),
            "em": round(100 * statistics.mean(r["em"] for r in rs), 1),
            "f1": round(100 * statistics.mean(r["f1"] for r in rs), 1),
            "tokens": round(statistics.mean(r["tokens"] for r in rs), 1),
            "ratio": round(statistics.mean(ratios), 3) if ratios else 0.0,
            "dropped": sum(r["dropped"] for r in rs),
            "compress_s": round(statistics.mean(r["compress_s"] for r in rs), 2),
        }
    return out


def table(summary: dict[str, dict[str, float]]) -> str:
    lines = [
        "| method | n | EM | F1 | context tokens | ratio vs none | dropped | compress s/q |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, s in summary.items():
        cells = [m, s["n"], s["em"], s["f1"], s["tokens"], f"{s['ratio']:.1%}", s["dropped"], s["compress_s"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    apply_offline_defaults()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/hotpotqa/dev_distractor_200.jsonl"))
    p.add_argument("--questions", type=int, default=24)
    p.add_argument("--offset", type=int, default=150, help="skip the questions the extractive trainer used")
    p.add_argument("--budget", type=int, default=160, help="compressed context budget (tiktoken tokens)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=(*METHODS, "gold-sentences", "color-oracle"))
    p.add_argument("--oracle", action="store_true", help="also run color-oracle (gold-labelled candidates)")
    p.add_argument("--llm", default="default")
    p.add_argument("--bridge", action=argparse.BooleanOptionalAction, default=ExtractiveConfig().bridge,
                   help="extractive: second-hop scoring (ExtractiveConfig.bridge; on by default)")
    p.add_argument("--lead-bonus", type=float, default=ExtractiveConfig().lead_bonus,
                   help="extractive: first-sentence prior (ExtractiveConfig.lead_bonus; 0 turns it off)")
    p.add_argument("--encoder", default=None, help="extractive encoder spec, e.g. st:/path (default: bundled MiniLM)")
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/branchwise-bench-cache"))
    p.add_argument("--out", type=Path, default=Path("/tmp/branchwise-compression.json"))
    args = p.parse_args()
    if args.oracle and "color-oracle" not in args.methods:
        args.methods.append("color-oracle")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run(args)
    atomic_write_json(args.out, result)
    print(table(result["summary"]))
    print(f"rows: {args.out}")


if __name__ == "__main__":
    main()
