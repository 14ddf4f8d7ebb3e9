"""``branchwise train-reranker``: fine-tune the cross-encoder reranker (see :mod:`branchwise.training.reranker`).

    branchwise train-reranker --data ../shared/data/hotpotqa/train_1468.jsonl --out my-reranker
    branchwise ask my-index "..." --reranker cross-encoder:my-reranker

The bundled default reranker (``--reranker default``) was made by this command; its card
(``branchwise/relevance/weights/default/CARD.md``) gives the exact settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from branchwise.errors import InputError

log = logging.getLogger(__name__)

#: files of the shared data that hold evaluation questions: training on them is refused
EVALUATION_FILES = ("dev_distractor_200.jsonl",)


def default_training_data() -> Path:
    return Path(os.environ.get("BRANCHWISE_SHARED_DATA", "../shared/data")) / "hotpotqa" / "train_1468.jsonl"


_NEGATIVE_FIELDS = ("same_paragraph", "hard", "random", "paragraph_hard", "paragraph_random")


def _negatives(groups: Any) -> str:
    return ",".join(str(getattr(groups, f)) for f in _NEGATIVE_FIELDS)


def _parse_negatives(text: str, groups: Any) -> Any:
    parts = text.split(",")
    if len(parts) != len(_NEGATIVE_FIELDS) or not all(p.strip().isdigit() for p in parts):
        raise InputError(f"--negatives {text!r} is not five counts.",
                         fix="write S,H,R,PH,PR, e.g. --negatives 2,3,1,1,1.")
    return dataclasses.replace(groups, **{f: int(p) for f, p in zip(_NEGATIVE_FIELDS, parts)})


def _command_line() -> str:
    """``branchwise train-reranker ...`` as it was run (for the card)."""
    import shlex
    import sys

    return "branchwise " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def register(sub: argparse._SubParsersAction) -> None:
    from branchwise.training.reranker import RerankerTrainConfig

    d = RerankerTrainConfig()
    p = sub.add_parser("train-reranker", help="fine-tune a cross-encoder reranker on QA data with supporting facts",
                       description="Fine-tune a cross-encoder from the bundled MiniLM weights on HotpotQA-format "
                                   "data (supporting sentences and paragraphs as positives; same-paragraph, "
                                   "dual-encoder-hard, random and BM25/dense pool negatives), validate every "
                                   "epoch on a held-out split, keep the best, write it with a data card.")
    p.add_argument("--data", type=Path, default=None,
                   help=f"HotpotQA-format JSON/JSONL training file (default: {default_training_data()})")
    p.add_argument("--out", type=Path, required=True, help="output folder (a cross-encoder folder + CARD.md)")
    p.add_argument("--questions", type=int, default=None, help="use only the first N questions of the file")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--loss", choices=("bce", "listwise", "both"), default=d.loss)
    p.add_argument("--max-minutes", type=float, default=None, help="stop training after this long (then validate)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps (the learning-rate schedule spans them), then validate")
    p.add_argument("--prior-weight", type=float, default=d.prior_weight,
                   help="residual mode: score = logit + W x the embedder's cosine, in training and serving (0: off)")
    p.add_argument("--head-lr-mult", type=float, default=d.head_lr_multiplier,
                   help="learning-rate multiplier of the new classification head")
    p.add_argument("--negatives", metavar="S,H,R,PH,PR", default=None,
                   help="negatives per group: same-paragraph, hard and random sentences, hard and random "
                        f"paragraphs (default: {_negatives(d.groups)})")
    p.add_argument("--validation-fraction", type=float, default=d.validation_fraction)
    p.add_argument("--hop-fraction", type=float, default=d.groups.hop_fraction,
                   help="share of steps that also train the second-hop query")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--teacher", metavar="SPEC", default=None,
                   help="distil from this reranker's scores too (e.g. llm-yesno with --llm, or rerank:URL#model)")
    p.add_argument("--synthetic-corpus", type=Path, default=None,
                   help="train on questions an LLM writes for the chunks of this folder/file (with --llm) instead of --data")
    p.add_argument("--llm", metavar="SPEC", default=None, help="LLM for --teacher llm-* and --synthetic-corpus")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run_train_reranker)


def _examples(args: argparse.Namespace) -> tuple[list, Path | None]:
    from branchwise.training.mining import load_hotpot_examples

    if args.synthetic_corpus is not None:
        from branchwise.assembly.root import load_llm
        from branchwise.assembly.settings import Settings
        from branchwise.retrieval.chunking import chunk_documents
        from branchwise.retrieval.ingest import load_documents
        from branchwise.training.reranker_synthetic import synthetic_examples

        settings = Settings.from_env(llm=args.llm)
        chunks = chunk_documents(load_documents(args.synthetic_corpus), settings.index.chunk.chunking)
        return synthetic_examples(chunks[: args.questions] if args.questions else chunks, load_llm(settings)), None
    data = args.data or default_training_data()
    if data.name in EVALUATION_FILES:
        raise InputError(f"{data} holds the evaluation questions; training on it would make every evaluation moot.",
                         fix=f"train on {default_training_data()} (its questions are disjoint from the evaluation ones).")
    return load_hotpot_examples(data, limit=args.questions), data


def run_train_reranker(args: argparse.Namespace) -> int:
    from branchwise.assembly.root import load_embedder
    from branchwise.assembly.settings import Settings
    from branchwise.training.reranker import RerankerTrainConfig, train_reranker
    from branchwise.training.reranker_data import split_examples

    examples, data = _examples(args)
    d = RerankerTrainConfig()
    groups = dataclasses.replace(d.groups, hop_fraction=args.hop_fraction)
    if args.negatives:
        groups = _parse_negatives(args.negatives, groups)
    config = RerankerTrainConfig(epochs=args.epochs, learning_rate=args.lr, loss=args.loss, max_minutes=args.max_minutes,
                                 max_steps=args.max_steps, prior_weight=args.prior_weight,
                                 head_lr_multiplier=args.head_lr_mult,
                                 validation_fraction=args.validation_fraction, seed=args.seed, groups=groups)
    train, val = split_examples(examples, config.validation_fraction)
    settings = Settings.from_env(llm=args.llm)
    teacher = None
    if args.teacher:
        from branchwise.assembly.root import load_llm
        from branchwise.relevance.factories import make_reranker
        from branchwise.relevance.registry import RERANKERS

        needs_llm = "llm" in RERANKERS.get(args.teacher.partition(":")[0]).needs
        teacher = make_reranker(args.teacher, llm=load_llm(settings) if needs_llm else None)
    report = train_reranker(train, val, args.out, config, embedder=load_embedder(settings), teacher=teacher,
                            data_file=data, progress=not args.no_progress, command=_command_line())
    m = report.metrics
    print(f"trained on {report.train_questions} questions ({report.steps} steps, {report.train_minutes} min); "
          f"best epoch {report.best_epoch} on {report.validation_questions} validation questions:")
    print(f"  all gold kept @{config.budget_tokens}: {m['all_gold_kept']:.3f}   fact recall: {m['fact_recall']:.3f}   "
          f"both gold in top 3: {m['both_gold_in_top3']:.3f}   paragraph MRR: {m['paragraph_mrr']:.3f}")
    print(f"wrote {report.out_dir} (card: {report.out_dir / 'CARD.md'}); use it with --reranker cross-encoder:{report.out_dir}")
    return 0
