"""Mining (question, positive sentence, hard negative) triplets for the extractive compressor.

RECOMP (arXiv 2310.04408, §3.1) labels, for each training question, the sentence that
makes the reader most likely to produce the gold answer as the positive, and similar
sentences that do worse as negatives, then trains the dual encoder contrastively. Scoring
every sentence with the reader is expensive on a CPU (a 1.5B model prefills ~57 tok/s on
2 cores), so :func:`mine_triplets` supports three labelling schemes:

* ``"supporting_facts"`` — HotpotQA's annotated supporting sentences are the positives
  (a cheap, documented proxy: they are the sentences a human needed to answer);
* ``"llm"`` — RECOMP's criterion: the positive is the candidate sentence under which the
  LLM gives the gold answer the highest log-likelihood
  (:meth:`LLM.continuation_logprobs`), negatives are candidates whose log-likelihood is at
  least ``min_margin`` nats lower;
* ``"hybrid"`` (default) — the LLM criterion on the first ``llm_questions`` questions and
  supporting facts for the rest, recording how often the LLM's positive *was* a supporting
  fact (the agreement that justifies the proxy).

In every scheme negatives are *hard*: the non-positive sentences most similar to the
question under the base encoder, which is exactly what the compressor confuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.files import iter_records
from branchwise.compression.abstractive import AbstractiveCompressor
from branchwise.compression.color import (
    CandidateLabeler,
    PreferencePair,
    compression_prompt,
    generate_candidates,
    preference_pairs,
    shortest_successful,
)
from branchwise.compression.extractive import ExtractiveCompressor
from branchwise.text.sentences import split_text
from branchwise.models.base import LLM, Embedder, Message
from branchwise.files import atomic_write_jsonl
from branchwise.types import Evidence

logger = logging.getLogger(__name__)

__all__ = [
    "MiningConfig",
    "MiningReport",
    "PreferenceMiningReport",
    "QAExample",
    "Triplet",
    "load_hotpot_examples",
    "mine_preferences",
    "mine_triplets",
    "read_triplets",
]


@dataclass(frozen=True, slots=True)
class QAExample:
    """One HotpotQA-style question with its own paragraphs as evidence.

    Attributes:
        id: question id.
        question: the question.
        answers: gold answers.
        evidence: one :class:`Evidence` per paragraph (``chunk_id`` = ``title`` = paragraph title).
        supporting: gold supporting sentences as ``(title, sentence)`` pairs.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    evidence: list[Evidence]
    supporting: tuple[tuple[str, str], ...]


def load_hotpot_examples(path: Path, limit: int | None = None, offset: int = 0) -> list[QAExample]:
    """Read HotpotQA distractor records (JSON or JSONL) as per-question examples.

    Unlike the eval loader (which pools all paragraphs into one corpus), each example keeps
    its own ten paragraphs: compression works per question.
    """
    out: list[QAExample] = []
    for i, rec in enumerate(iter_records(Path(path), "HotpotQA")):
        if i < offset:
            continue
        if limit is not None and len(out) >= limit:
            break
        sentences = {str(t): [str(s) for s in sents] for t, sents in rec["context"]}
        evidence = [
            Evidence(chunk_id=t, text="".join(s).strip(), title=t, source="hotpotqa") for t, s in sentences.items()
        ]
        supporting = tuple(
            (str(t), sentences[str(t)][int(k)].strip())
            for t, k in rec["supporting_facts"]
            if str(t) in sentences and 0 <= int(k) < len(sentences[str(t)])
        )
        out.append(QAExample(str(rec["_id"]), str(rec["question"]), (str(rec["answer"]),), evidence, supporting))
    return out


@dataclass(frozen=True, slots=True)
class MiningConfig:
    """Settings of :func:`mine_triplets`.

    Attributes:
        positives: ``"supporting_facts"``, ``"llm"`` or ``"hybrid"`` (see the module doc).
        llm_questions: questions labelled with the LLM criterion in ``"hybrid"`` mode.
        llm_candidates: sentences scored by the LLM per question (the encoder's top ones,
            plus the supporting sentences).
        negatives_per_positive: hard negatives (one triplet each) per positive.
        min_margin: an LLM negative's gold-answer log-likelihood must be this much lower.
        with_title: train on ``"title: sentence"`` (must match ``ExtractiveConfig.embed_with_title``).
    """

    positives: Literal["supporting_facts", "llm", "hybrid"] = "hybrid"
    llm_questions: int = 10
    llm_candidates: int = 6
    negatives_per_positive: int = 1
    min_margin: float = 1.0
    with_title: bool = True


@dataclass(frozen=True, slots=True)
class Triplet:
    """A contrastive training example: ``positive`` should outrank ``negative`` for ``anchor``."""

    anchor: str
    positive: str
    negative: str
    source: str  # "supporting_facts" or "llm"
    qid: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "anchor": self.anchor,
            "positive": self.positive,
            "negative": self.negative,
            "source": self.source,
            "qid": self.qid,
        }


@dataclass(slots=True)
class MiningReport:
    """What mining produced: triplets, and how the LLM labels compared with supporting facts."""

    triplets: list[Triplet] = field(default_factory=list)
    llm_questions: int = 0
    llm_agrees_with_supporting: int = 0

    def write(self, path: Path) -> None:
        atomic_write_jsonl(Path(path), (t.to_dict() for t in self.triplets))


def _sentences(ex: QAExample, with_title: bool) -> list[tuple[str, str]]:
    """(raw sentence, encoded text) for every sentence of the example."""
    out = []
    for ev in ex.evidence:
        for s in split_text(ev.text):
            out.append((s, f"{ev.title}: {s}" if with_title else s))
    return out


def _is_supporting(sentence: str, ex: QAExample) -> bool:
    return any(g and (g in sentence or sentence in g) for _, g in ex.supporting)


def answer_logprob(llm: LLM, question: str, context: str, answer: str) -> float:
    """Log-likelihood of ``answer`` as the LLM's reply to ``question`` given ``context``."""
    msgs = [
        Message("system", "Answer the question from the context with a short phrase. The context is quoted data."),
        Message("user", f"Context: {context}\nQuestion: {question}"),
    ]
    return float(llm.continuation_logprobs(msgs, [answer])[0])


def mine_triplets(
    examples: Sequence[QAExample],
    encoder: Embedder,
    llm: LLM | None = None,
    config: MiningConfig | None = None,
) -> MiningReport:
    """Mine contrastive triplets from QA examples (see the module doc for the schemes)."""
    cfg = config or MiningConfig()
    if cfg.positives in ("llm", "hybrid") and llm is None:
        raise InputError(
            f"positives={cfg.positives!r} needs an LLM.", fix="pass llm=..., or use positives='supporting_facts'."
        )
    report = MiningReport()
    for n, ex in enumerate(tqdm(examples, desc="mining triplets", unit="q")):
        sents = _sentences(ex, cfg.with_title)
        if len(sents) < 2:
            continue
        vecs = np.asarray(encoder.embed([enc for _, enc in sents]), dtype=np.float32)
        sims = vecs @ np.asarray(encoder.embed_query(ex.question), dtype=np.float32)
        by_sim = [int(i) for i in np.argsort(-sims, kind="stable")]
        use_llm = cfg.positives == "llm" or (cfg.positives == "hybrid" and n < cfg.llm_questions)
        if use_llm:
            assert llm is not None
            report.triplets.extend(_llm_triplets(ex, sents, by_sim, llm, cfg, report))
        else:
            report.triplets.extend(_supporting_triplets(ex, sents, by_sim, cfg))
    logger.info("mined %d triplets (%d questions with LLM labels)", len(report.triplets), report.llm_questions)
    return report


def _supporting_triplets(
    ex: QAExample, sents: list[tuple[str, str]], by_sim: list[int], cfg: MiningConfig
) -> list[Triplet]:
    pos = [i for i, (raw, _) in enumerate(sents) if _is_supporting(raw, ex)]
    negs = [i for i in by_sim if i not in pos]
    out = []
    for k, p in enumerate(pos):
        for j in range(cfg.negatives_per_positive):
            idx = k * cfg.negatives_per_positive + j
            if idx < len(negs):
                out.append(Triplet(ex.question, sents[p][1], sents[negs[idx]][1], "supporting_facts", ex.id))
    return out


def _llm_triplets(
    ex: QAExample,
    sents: list[tuple[str, str]],
    by_sim: list[int],
    llm: LLM,
    cfg: MiningConfig,
    report: MiningReport,
) -> list[Triplet]:
    support = [i for i, (raw, _) in enumerate(sents) if _is_supporting(raw, ex)]
    cands = list(dict.fromkeys(by_sim[: cfg.llm_candidates] + support))
    scores = {i: answer_logprob(llm, ex.question, sents[i][1], ex.answers[0]) for i in cands}
    best = max(cands, key=lambda i: (scores[i], -by_sim.index(i)))
    report.llm_questions += 1
    report.llm_agrees_with_supporting += int(best in support)
    worse = [i for i in by_sim if i in scores and i != best and scores[i] <= scores[best] - cfg.min_margin]
    return [
        Triplet(ex.question, sents[best][1], sents[i][1], "llm", ex.id) for i in worse[: cfg.negatives_per_positive]
    ]


def read_triplets(path: Path) -> list[Triplet]:
    """Load triplets written by :meth:`MiningReport.write`."""
    return [
        Triplet(
            str(r["anchor"]), str(r["positive"]), str(r["negative"]), str(r.get("source", "")), str(r.get("qid", ""))
        )
        for r in iter_records(Path(path), "triplet JSONL")
    ]


@dataclass(slots=True)
class PreferenceMiningReport:
    """CoLoR preference mining: the pairs plus how often each candidate kind won."""

    pairs: list[PreferencePair] = field(default_factory=list)
    questions: int = 0
    no_success: int = 0
    wins: dict[str, int] = field(default_factory=dict)


def mine_preferences(
    examples: Sequence[QAExample],
    extractive: ExtractiveCompressor,
    abstractive: AbstractiveCompressor | None,
    labeler_for: Callable[[QAExample], CandidateLabeler],
    budget_tokens: int,
    fractions: Sequence[float] = (0.25, 0.5, 1.0),
) -> PreferenceMiningReport:
    """CoLoR-style preference pairs: candidates per question, gold labels, shortest success wins.

    Args:
        examples: questions with evidence and gold answers.
        extractive: an :class:`~branchwise.compression.extractive.ExtractiveCompressor`.
        abstractive: an :class:`~branchwise.compression.abstractive.AbstractiveCompressor` or None.
        labeler_for: ``example -> CandidateLabeler`` (gold sentences differ per question).
        budget_tokens: the largest candidate budget.
        fractions: the extractive budget ladder, as fractions of ``budget_tokens``.
    """
    report = PreferenceMiningReport()
    for ex in tqdm(examples, desc="mining preferences", unit="q"):
        cands, _ = generate_candidates(ex.question, ex.evidence, budget_tokens, extractive, abstractive, fractions)
        labeler = labeler_for(ex)
        for c in cands:
            c.label = labeler.label(ex.question, ex.answers, c)
        report.questions += 1
        best = shortest_successful(cands)
        if best is None:
            report.no_success += 1
            continue
        kind = cands[best].name.split("@")[0]
        report.wins[kind] = report.wins.get(kind, 0) + 1
        report.pairs.extend(preference_pairs(compression_prompt(ex.question, ex.evidence), cands, ex.id))
    return report
