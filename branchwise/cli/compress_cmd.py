"""``branchwise train-compressor`` and ``branchwise train-color``: train the compressors.

* ``train-compressor`` mines (question, positive, hard negative) triplets from HotpotQA-style
  data (RECOMP criterion on a few questions with the LLM, supporting facts for the rest),
  fine-tunes the extractive dual encoder, and reports gold-sentence recall before/after on
  held-out questions. Use the output folder as ``--encoder st:/path``.
* ``train-color`` builds CoLoR-style candidates, labels them against gold, exports the
  shortest-success preference pairs as JSONL and fine-tunes a causal LM on them with ORPO
  or DPO (``--base-model tiny`` is the CPU smoke check; pass a local HF model folder and
  ``--device cuda --dtype bfloat16`` for the real thing).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from branchwise.errors import InputError

if TYPE_CHECKING:
    from branchwise.compression.color import CandidateLabeler
    from branchwise.training.mining import QAExample
    from branchwise.models.base import LLM

log = logging.getLogger(__name__)


def _default_data() -> Path:
    """The training questions (disjoint from the 200 evaluation questions)."""
    root = Path(os.environ.get("BRANCHWISE_SHARED_DATA", "../shared/data"))
    return root / "hotpotqa" / "train_1468.jsonl"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the compressor training subcommands."""
    p = subparsers.add_parser("train-compressor", help="train the RECOMP extractive compressor (dual encoder)")
    p.add_argument("--data", type=Path, default=_default_data(), help="HotpotQA-format JSON/JSONL file")
    p.add_argument("--out", type=Path, required=True, help="output folder for the trained encoder")
    p.add_argument("--questions", type=int, default=100, help="training questions (from the start of the file)")
    p.add_argument("--eval-questions", type=int, default=50, help="held-out questions for the recall report (0: skip)")
    p.add_argument("--positives", choices=("supporting_facts", "llm", "hybrid"), default="hybrid")
    p.add_argument("--llm-questions", type=int, default=10, help="questions labelled by the LLM in hybrid mode")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--budget", type=int, default=192, help="token budget for the recall report")
    p.add_argument("--llm", default=None, help="LLM spec for RECOMP labels (default: BRANCHWISE_LLM or 'default')")
    p.set_defaults(func=run_train_compressor)

    c = subparsers.add_parser("train-color", help="mine CoLoR preference pairs and train a compressor LM (ORPO/DPO)")
    c.add_argument("--data", type=Path, default=_default_data(), help="HotpotQA-format JSON/JSONL file")
    c.add_argument("--out", type=Path, required=True, help="output folder for the trained causal LM")
    c.add_argument("--pairs", type=Path, default=None, help="train on this existing pairs JSONL (skip mining)")
    c.add_argument("--pairs-out", type=Path, default=None, help="where to write mined pairs (default: OUT/pairs.jsonl)")
    c.add_argument("--questions", type=int, default=20)
    c.add_argument("--budget", type=int, default=192, help="largest candidate budget (tokens)")
    c.add_argument(
        "--labeler",
        choices=("evidence", "answer"),
        default="evidence",
        help="evidence: gold answer/sentence still present (no LLM); answer: the reader still answers",
    )
    c.add_argument("--no-abstractive", action="store_true", help="extractive candidates only (no LLM calls)")
    c.add_argument("--mine-only", action="store_true", help="export pairs, do not train")
    c.add_argument("--base-model", default="tiny", help="'tiny' (random CPU check model) or a local HF model folder")
    c.add_argument("--objective", choices=("orpo", "dpo"), default="orpo")
    c.add_argument("--beta", type=float, default=0.1)
    c.add_argument("--lr", type=float, default=5e-5)
    c.add_argument("--epochs", type=int, default=1)
    c.add_argument("--max-steps", type=int, default=None)
    c.add_argument("--batch-size", type=int, default=2)
    c.add_argument("--device", default="cpu")
    c.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    c.add_argument("--llm", default=None, help="LLM spec (abstractive candidates, answer labels)")
    c.set_defaults(func=run_train_color)


def _llm(spec: str | None) -> LLM:
    from branchwise.assembly.root import load_llm
    from branchwise.assembly.settings import Settings

    return load_llm(Settings.from_env(llm=spec))


def run_train_compressor(args: argparse.Namespace) -> int:
    from branchwise.training.mining import MiningConfig, load_hotpot_examples, mine_triplets
    from branchwise.training.extractive import ExtractiveTrainConfig, gold_sentence_recall, train_extractive
    from branchwise.models.factory import make_embedder
    from branchwise.files import atomic_write_json

    train = load_hotpot_examples(args.data, limit=args.questions)
    held = (
        load_hotpot_examples(args.data, limit=args.eval_questions, offset=args.questions) if args.eval_questions else []
    )
    base = make_embedder("default")
    llm = _llm(args.llm) if args.positives != "supporting_facts" else None
    mined = mine_triplets(train, base, llm, MiningConfig(positives=args.positives, llm_questions=args.llm_questions))
    args.out.mkdir(parents=True, exist_ok=True)
    mined.write(args.out / "triplets.jsonl")
    cfg = ExtractiveTrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr)
    result = train_extractive(mined.triplets, args.out, cfg)
    report: dict[str, object] = {
        "triplets": len(mined.triplets),
        "llm_questions": mined.llm_questions,
        "llm_positive_is_supporting_fact": mined.llm_agrees_with_supporting,
        "steps": result.steps,
        "first_loss": result.losses[0] if result.losses else None,
        "last_loss": result.losses[-1] if result.losses else None,
        "seconds": round(result.seconds, 1),
    }
    if held:
        report["recall_base"] = asdict(gold_sentence_recall(base, held, args.budget))
        report["recall_trained"] = asdict(gold_sentence_recall(f"st:{args.out}", held, args.budget))
    atomic_write_json(args.out / "train_report.json", report)
    print(json.dumps(report, indent=2))
    print(f"use it as the extractive encoder: CompressionConfig(encoder=\"st:{args.out}\")")
    return 0


def _labeler_for(kind: str, llm: LLM | None) -> Callable[[QAExample], CandidateLabeler]:
    """``example -> labeler``: the reader-based one is shared, the evidence one is per question."""
    from branchwise.compression.color import AnswerLabeler, EvidenceLabeler, LLMReader

    if kind == "answer":
        if llm is None:
            raise InputError("the answer labeler needs an LLM.", fix="pass --llm, or use --labeler evidence.")
        shared = AnswerLabeler(LLMReader(llm))
        return lambda ex: shared
    return lambda ex: EvidenceLabeler([s for _, s in ex.supporting])


def run_train_color(args: argparse.Namespace) -> int:
    from branchwise.compression.color import export_preferences
    from branchwise.training.preference import PreferenceTrainConfig, read_preferences, train_preference

    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {}
    if args.pairs is not None:
        pairs = read_preferences(args.pairs)
    else:
        from branchwise.compression.abstractive import AbstractiveCompressor
        from branchwise.compression.extractive import ExtractiveCompressor
        from branchwise.training.mining import load_hotpot_examples, mine_preferences
        from branchwise.models.factory import make_embedder

        examples = load_hotpot_examples(args.data, limit=args.questions)
        llm = _llm(args.llm) if args.labeler == "answer" or not args.no_abstractive else None
        abstractive = AbstractiveCompressor(llm) if llm is not None and not args.no_abstractive else None
        mined = mine_preferences(
            examples,
            ExtractiveCompressor(make_embedder("default")),
            abstractive,
            _labeler_for(args.labeler, llm),
            args.budget,
        )
        pairs = mined.pairs
        out = args.pairs_out or args.out / "pairs.jsonl"
        export_preferences(out, pairs)
        summary.update(questions=mined.questions, no_success=mined.no_success, wins=mined.wins, pairs_file=str(out))
    summary["pairs"] = len(pairs)
    if not args.mine_only:
        cfg = PreferenceTrainConfig(
            base_model=args.base_model,
            objective=args.objective,
            beta=args.beta,
            learning_rate=args.lr,
            epochs=args.epochs,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            device=args.device,
            dtype=args.dtype,
        )
        result = train_preference(pairs, args.out, cfg)
        summary.update(
            steps=result.steps,
            first_loss=result.losses[0] if result.losses else None,
            last_loss=result.losses[-1] if result.losses else None,
            model=str(args.out),
        )
    print(json.dumps(summary, indent=2))
    return 0
