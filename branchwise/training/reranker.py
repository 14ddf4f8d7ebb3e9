"""``branchwise train-reranker``: fine-tune a cross-encoder reranker on QA data with supporting facts.

Starting from the bundled all-MiniLM-L6-v2 weights (a new one-unit head), one model learns
both granularities the agent needs — sentences (the compressor's selection, the bridge hop)
and paragraphs (the evidence pool) — from HotpotQA-format data (``_id, question,
supporting_facts, context``), with the negatives of :mod:`branchwise.training.reranker_data`.

* a deterministic train / validation split of the training file (never the evaluation
  questions); every choice (epochs, early stopping) is made on validation;
* losses: pointwise binary cross-entropy, listwise softmax cross-entropy of each positive
  against its group's negatives, or both; AdamW with linear warmup and decay; bf16 autocast
  on CPUs with AVX512-BF16 (about 2x faster than fp32 there);
* after every epoch the validation questions are compressed at the agent's budget with the
  extractive compressor *using this model* (all gold sentences kept, gold-fact recall) and
  their paragraphs ranked (both gold paragraphs in the top 3, MRR); the best epoch is kept;
* the best model is written as fp16 safetensors with its tokenizer (~45 MB), plus a data card
  (``CARD.md`` and ``card.json``: data and its sha256, split, configuration, steps, metrics,
  time, the weights' sha256) next to it.

Optional paths: distillation from a teacher's scores (e.g. a large LLM's P(Yes) through an
endpoint: ``teacher=``), and training examples written by an LLM from a user's own corpus
(:mod:`branchwise.training.reranker_synthetic`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from branchwise.errors import InputError
from branchwise.files import atomic_write_json, atomic_write_text
from branchwise.models.base import Embedder
from branchwise.models.pretrained import from_pretrained
from branchwise.relevance.base import Reranker
from branchwise.relevance.cross_encoder import Prior, prior_cosines, score_pairs
from branchwise.training.mining import QAExample
from branchwise.training.reranker_data import Group, GroupConfig, QuestionRows, groups_for, mine, question_rows

log = logging.getLogger(__name__)

Loss = Literal["bce", "listwise", "both"]


@dataclass(frozen=True, slots=True)
class RerankerTrainConfig:
    """What ``train-reranker`` does.

    Attributes:
        base_model: the starting weights (None: the bundled all-MiniLM-L6-v2 body).
        epochs: passes over the training questions (the best validated epoch is kept).
        learning_rate / warmup / weight_decay: AdamW with linear warmup and decay.
        loss: ``"bce"`` (pointwise), ``"listwise"`` (each positive against its group's
            negatives) or ``"both"`` (their sum).
        questions_per_step: questions whose groups form one optimisation step.
        max_length_sentence / max_length_paragraph: tokens of query + passage.
        groups: the negatives per group (:class:`~branchwise.training.reranker_data.GroupConfig`).
        validation_fraction: share of the training file held out (by sha1 of the id).
        budget_tokens: the compression budget of the validation metric.
        teacher_weight: with a teacher, labels become ``(1 - w) * gold + w * teacher score``.
        prior_weight: residual mode (> 0): a pair scores ``logit + prior_weight * cosine``
            (the dual encoder's), in training and in serving (``prior.json`` is written beside
            the weights), so the model learns a correction to the dual encoder instead of
            relevance from scratch — the recipe that worked with few CPU steps (docs/relevance.md).
        head_lr_multiplier: the new one-unit head learns this many times faster than the body.
        max_steps: stop after this many optimisation steps (then validate); the learning-rate
            schedule spans them (None: ``epochs`` full passes).
        max_minutes: stop training after this long (then validate and keep the best).
        seed: the seed of the sampling and of the head's initialisation.
        bf16: autocast to bfloat16 on CPU (None: when the CPU supports AVX512-BF16).
        threads: torch CPU threads (None: torch's default).
    """

    base_model: str | None = None
    epochs: int = 2
    learning_rate: float = 3e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    loss: Loss = "bce"
    questions_per_step: int = 2
    max_length_sentence: int = 96
    max_length_paragraph: int = 192
    groups: GroupConfig = field(default_factory=GroupConfig)
    validation_fraction: float = 0.2
    budget_tokens: int = 160
    teacher_weight: float = 0.5
    prior_weight: float = 0.0
    head_lr_multiplier: float = 1.0
    max_steps: int | None = None
    max_minutes: float | None = None
    seed: int = 13
    bf16: bool | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.questions_per_step < 1 or not 0.0 < self.validation_fraction < 1.0:
            raise InputError("epochs and questions_per_step must be >= 1 and validation_fraction in (0, 1).",
                             fix="e.g. epochs=2, questions_per_step=2, validation_fraction=0.2.")
        if self.prior_weight < 0 or self.head_lr_multiplier <= 0:
            raise InputError("prior_weight must be >= 0 and head_lr_multiplier > 0.",
                             fix="e.g. prior_weight=20 (residual) or 0 (plain), head_lr_multiplier=10.")
        if self.loss not in ("bce", "listwise", "both"):
            raise InputError(f"unknown loss {self.loss!r}.", fix="use bce, listwise or both.")


@dataclass(slots=True)
class RerankerTrainReport:
    """What a training run did and measured (also written to ``card.json``)."""

    out_dir: Path
    train_questions: int
    validation_questions: int
    steps: int
    pairs: int
    train_minutes: float
    best_epoch: int
    history: list[dict[str, float]]
    metrics: dict[str, float]


class ModelReranker:
    """An in-memory (model, tokenizer) as a :class:`~branchwise.relevance.base.Reranker` (validation)."""

    name = "training"

    def __init__(self, model: Any, tokenizer: Any, max_length: int, bf16: bool, batch_size: int = 64,
                 prior: tuple[Embedder, float] | None = None) -> None:
        self.model, self.tokenizer, self.max_length, self.bf16, self.batch_size = model, tokenizer, max_length, bf16, batch_size
        self.prior = prior

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        residual = prior_cosines(self.prior[0], query, passages) * self.prior[1] if self.prior else None
        return score_pairs(self.model, self.tokenizer, query, passages, max_length=self.max_length,
                           batch_size=self.batch_size, residual=residual, bf16=self.bf16)


def _group_loss(logits: Any, labels: Sequence[float], kind: Loss) -> Any:
    import torch
    import torch.nn.functional as F

    y = torch.tensor(labels, dtype=torch.float32)
    losses = []
    if kind in ("bce", "both"):
        losses.append(F.binary_cross_entropy_with_logits(logits, y))
    if kind in ("listwise", "both"):
        pos, neg = logits[y >= 0.5], logits[y < 0.5]
        if len(pos) and len(neg):
            table = torch.cat([pos.unsqueeze(1), neg.unsqueeze(0).expand(len(pos), -1)], dim=1)
            losses.append(F.cross_entropy(table, torch.zeros(len(pos), dtype=torch.long)))
    return sum(losses) if losses else logits.sum() * 0.0


def _forward(model: Any, tokenizer: Any, groups: Sequence[Group], max_length: int, loss: Loss, bf16: bool,
             prior: tuple[Embedder, float] | None = None) -> Any:
    import torch

    queries, passages = [], []
    for g in groups:
        queries += [g.query] * len(g.passages)
        passages += list(g.passages)
    enc = tokenizer(queries, passages, truncation="longest_first", max_length=max_length, padding=True,
                    pad_to_multiple_of=16, return_tensors="pt")  # few distinct shapes: oneDNN reuses its kernels
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(**enc).logits.view(-1)
    logits = logits.float()
    if prior is not None:  # residual mode: the dual encoder's cosine is part of every score
        cos = np.concatenate([prior_cosines(prior[0], g.query, g.passages) for g in groups])
        logits = logits + prior[1] * torch.from_numpy(cos)
    out, start = [], 0
    for g in groups:
        out.append(_group_loss(logits[start : start + len(g.passages)], g.labels, loss))
        start += len(g.passages)
    return torch.stack(out).mean()


def validate(reranker: Reranker, rows: Sequence[QuestionRows], embedder: Embedder, budget_tokens: int,
             progress: bool = False) -> dict[str, float]:
    """Sentence selection at ``budget_tokens`` by the extractive compressor *with* ``reranker``
    (the agent's path), and paragraph ranking, on ``rows``."""
    from branchwise.compression.extractive import ExtractiveConfig
    from branchwise.training.extractive import gold_sentence_recall

    examples = [r.example for r in rows]
    recall = gold_sentence_recall(embedder, examples, budget_tokens, ExtractiveConfig(), reranker=reranker,
                                  progress=progress)
    both3, mrr = [], []
    for r in rows:
        scores = np.asarray(reranker.score(r.example.question, r.paragraphs))
        order = np.argsort(-scores, kind="stable")
        gold = r.paragraph_gold
        both3.append(float(gold[order[:3]].sum() == gold.sum()))
        hits = np.flatnonzero(gold[order])
        mrr.append(1.0 / (hits[0] + 1) if len(hits) else 0.0)
    return {"all_gold_kept": recall.all_rate, "fact_recall": recall.fact_recall,
            "both_gold_in_top3": float(np.mean(both3)), "paragraph_mrr": float(np.mean(mrr))}


def _bf16(config: RerankerTrainConfig) -> bool:
    if config.bf16 is not None:
        return config.bf16
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _base_model(config: RerankerTrainConfig) -> str:
    if config.base_model:
        return config.base_model
    from branchwise.models.embedders import bundled_minilm_path

    return str(bundled_minilm_path())


def train_reranker(
    train: Sequence[QAExample],
    validation: Sequence[QAExample],
    out_dir: Path,
    config: RerankerTrainConfig = RerankerTrainConfig(),
    *,
    embedder: Embedder,
    teacher: Reranker | None = None,
    data_file: Path | None = None,
    progress: bool = True,
    command: str | None = None,
) -> RerankerTrainReport:
    """Fine-tune, validate every epoch, keep the best, write it with its card to ``out_dir``.

    Args:
        train / validation: examples (HotpotQA format, see :func:`~branchwise.training.mining.load_hotpot_examples`).
        out_dir: where the model folder and its card go.
        config: see :class:`RerankerTrainConfig`.
        embedder: the dual encoder mining hard negatives and mixed into the validation selection.
        teacher: optional reranker whose scores soften the labels (distillation).
        data_file: recorded (with its sha256) in the card.
        command: the command line that ran this (recorded in the card, to reproduce it).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not train or not validation:
        raise InputError("training needs examples in both the train and the validation split.",
                         fix="pass more questions (a few dozen at least) or change validation_fraction.")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    bf16 = _bf16(config)
    t_start = time.perf_counter()
    train_rows = [question_rows(e) for e in train]
    val_rows = [question_rows(e) for e in validation]
    mine(train_rows, embedder, pool_negatives=config.groups.pool * 2, progress=progress)  # 0: no pool mining
    train_rows = [r for r in train_rows if r.sentence_gold.sum()]
    base = _base_model(config)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = from_pretrained(AutoModelForSequenceClassification, base, num_labels=1, local_files_only=True)
    steps_per_epoch = math.ceil(len(train_rows) / config.questions_per_step)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    warm = int(config.warmup * total)
    prior = (embedder, config.prior_weight) if config.prior_weight > 0 else None
    head = [p for n, p in model.named_parameters() if n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier")]
    opt = torch.optim.AdamW([{"params": body}, {"params": head, "lr": config.learning_rate * config.head_lr_multiplier}],
                            lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    history: list[dict[str, float]] = []
    best_key, best_state, best_epoch = -1.0, None, -1
    steps = pairs = 0
    train_seconds = 0.0
    stop = False
    try:
        for epoch in range(config.epochs):
            model.train()
            order = list(range(len(train_rows)))
            rng.shuffle(order)
            t0 = time.perf_counter()
            bar = tqdm(range(0, len(order), config.questions_per_step), desc=f"epoch {epoch + 1}/{config.epochs}",
                       unit="step", disable=not progress)
            for s in bar:
                batch = [train_rows[i] for i in order[s : s + config.questions_per_step]]
                groups = [g for r in batch for g in groups_for(r, config.groups, rng)]
                if teacher is not None:
                    groups = [_soften(g, teacher, config.teacher_weight) for g in groups]
                short = [g for g in groups if g.kind != "paragraph"]
                long_ = [g for g in groups if g.kind == "paragraph"]
                loss = (_forward(model, tokenizer, short, config.max_length_sentence, config.loss, bf16, prior)
                        if short else 0.0)
                if long_:
                    loss = loss + _forward(model, tokenizer, long_, config.max_length_paragraph, config.loss, bf16, prior)
                loss.backward()  # type: ignore[union-attr]
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                steps += 1
                pairs += sum(len(g.passages) for g in groups)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")  # type: ignore[union-attr]
                if config.max_steps and steps >= config.max_steps:
                    stop = True
                    break
                if config.max_minutes is not None and (train_seconds + time.perf_counter() - t0) / 60 > config.max_minutes:
                    log.info("time limit of %.0f min reached at step %d", config.max_minutes, steps)
                    stop = True
                    break
            train_seconds += time.perf_counter() - t0
            model.eval()
            scorer = ModelReranker(model, tokenizer, config.max_length_paragraph, bf16, prior=prior)
            metrics = validate(scorer, val_rows, embedder, config.budget_tokens)
            history.append({"epoch": epoch + 1, "train_minutes": round(train_seconds / 60, 2), **metrics})
            log.info("epoch %d validation: %s", epoch + 1, metrics)
            key = metrics["all_gold_kept"] + metrics["both_gold_in_top3"]
            if key > best_key:
                best_key, best_epoch = key, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
            if stop:
                break
    finally:
        if config.threads:
            torch.set_num_threads(old_threads)
    assert best_state is not None
    model.load_state_dict(best_state)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    if prior is not None:
        Prior(embedder.name, config.prior_weight).write(out_dir)
    best = next(h for h in history if h["epoch"] == best_epoch)
    report = RerankerTrainReport(out_dir, len(train_rows), len(val_rows), steps, pairs, round(train_seconds / 60, 2),
                                 best_epoch, history, {k: v for k, v in best.items() if k not in ("epoch",)})
    write_card(report, config, data_file=data_file, base_model=base, bf16=bf16, teacher=teacher,
               total_minutes=(time.perf_counter() - t_start) / 60, config_embedder=embedder.name, command=command)
    return report


def _soften(group: Group, teacher: Reranker, weight: float) -> Group:
    scores = teacher.score(group.query, list(group.passages))
    labels = tuple((1.0 - weight) * y + weight * float(t) for y, t in zip(group.labels, scores))
    return dataclasses.replace(group, labels=labels)


def write_card(report: RerankerTrainReport, config: RerankerTrainConfig, *, data_file: Path | None, base_model: str,
               bf16: bool, teacher: Reranker | None, total_minutes: float, config_embedder: str = "",
               command: str | None = None) -> None:
    """``card.json`` and ``CARD.md`` beside the weights: data, command settings, steps, metrics, sha256."""
    out = report.out_dir
    weights = {p.name: _sha256(p) for p in sorted(out.glob("*.safetensors"))}
    card = {
        "model": "cross-encoder reranker (one logit; sigmoid score)", "base_model": _model_name(base_model),
        "command": command,
        "data": {"file": str(data_file) if data_file else None,
                 "sha256": _sha256(data_file) if data_file and Path(data_file).is_file() else None,
                 "train_questions": report.train_questions, "validation_questions": report.validation_questions,
                 "split": f"sha1(id) -> validation share {config.validation_fraction}"},
        "config": _jsonable(dataclasses.asdict(config)), "bf16_autocast": bf16,
        "teacher": getattr(teacher, "name", None),
        "prior": ({"embedder": config_embedder, "weight": config.prior_weight} if config.prior_weight > 0 else None),
        "steps": report.steps, "pairs": report.pairs, "train_minutes": report.train_minutes,
        "total_minutes": round(total_minutes, 2), "best_epoch": report.best_epoch, "history": report.history,
        "validation": report.metrics, "weights_sha256": weights,
    }
    atomic_write_json(out / "card.json", card)
    rows = "\n".join(f"| {h['epoch']} | {h['train_minutes']} | {h['all_gold_kept']:.3f} | {h['fact_recall']:.3f} | "
                     f"{h['both_gold_in_top3']:.3f} | {h['paragraph_mrr']:.3f} |" for h in report.history)
    atomic_write_text(out / "CARD.md", f"""# Reranker card

A cross-encoder (query and passage read together, one logit; score = sigmoid) fine-tuned from
`{card['base_model']}` by `branchwise train-reranker`. Passages are shown as `"title: text"`
(sentences and paragraphs alike).

- **Data:** `{card['data']['file']}` (sha256 `{card['data']['sha256']}`), HotpotQA format with
  sentence-level supporting facts; {report.train_questions} training and {report.validation_questions}
  validation questions (split by sha1 of the id; no evaluation question is in the file).
- **Training:** {report.steps} steps, {report.pairs} query-passage pairs, {report.train_minutes} min
  ({'bf16 autocast, ' if bf16 else ''}{config.loss} loss, lr {config.learning_rate}, {config.epochs} epoch(s) at most);
  best epoch {report.best_epoch} by validation (all gold kept + both gold in top 3).
- **Command:** `{command or '(called from Python)'}`.
- **Teacher:** {card['teacher'] or 'none'}.
- **Score:** {f"sigmoid(logit + {config.prior_weight} x cosine of `{config_embedder}`) — a residual model "
              "(the cosine term is added in serving too; `prior.json`)" if config.prior_weight > 0 else "sigmoid(logit)"}.

| epoch | train min | all gold kept @{config.budget_tokens} | fact recall @{config.budget_tokens} | both gold in top 3 | paragraph MRR |
|---:|---:|---:|---:|---:|---:|
{rows}

Weights (fp16 safetensors): {', '.join(f'`{k}` sha256 `{v}`' for k, v in weights.items())}.
Full configuration: `card.json`.
""")


def _model_name(path: str) -> str:
    """A readable name of the starting weights (the bundled MiniLM folder is named ``model``)."""
    from branchwise.models.embedders import DEFAULT_EMBEDDER_NAME, bundled_minilm_path

    try:
        if Path(path).resolve() == Path(bundled_minilm_path()).resolve():
            return f"{DEFAULT_EMBEDDER_NAME} (bundled)"
    except Exception:  # noqa: BLE001 - the bundled model may be absent; the name is informative only
        pass
    return Path(path).name


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
