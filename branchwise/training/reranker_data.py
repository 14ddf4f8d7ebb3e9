"""Training data for the cross-encoder reranker, mined from QA data with supporting facts.

From HotpotQA-format examples (a question, its ~10 paragraphs, the gold supporting sentences):

* :func:`split_examples` — a deterministic train / validation split by the sha1 of the id
  (choices are made on validation, never on evaluation questions);
* :func:`question_rows` — one question's sentences (as the extractive compressor splits them,
  shown as ``"title: sentence"``) and paragraphs (``"title: paragraph"``), gold-labelled;
* :func:`mine` — the dual encoder's cosine of each sentence and paragraph to the question (the
  *hard* distractors are the ones it likes), and pool negatives mined from *other* questions'
  paragraphs with BM25 and with dense search;
* :func:`groups_for` — per question and step: a sentence group (gold sentences; non-gold
  sentences of the gold paragraphs; the hardest and some random distractor sentences; pool
  negatives), a paragraph group (the gold paragraphs against hard and random distractors), and
  optionally a second-hop group whose query is the question plus one first-hop gold sentence
  (what the agent's bridge hop and the compressor's hop query send at inference).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from branchwise.models.base import Embedder
from branchwise.relevance.base import passage_text
from branchwise.text.sentences import split_sentences
from branchwise.training.mining import QAExample

GroupKind = Literal["sentence", "paragraph", "hop"]


@dataclass(frozen=True, slots=True)
class Group:
    """One query with labelled passages (1: relevant), the unit of the ranking losses."""

    kind: GroupKind
    query: str
    passages: tuple[str, ...]
    labels: tuple[float, ...]


@dataclass(slots=True)
class QuestionRows:
    """One question's labelled candidates, mined.

    Attributes:
        example: the source example.
        items: per sentence, the index of its paragraph.
        positions: per sentence, its index within the paragraph.
        sentences: ``"title: sentence"`` per sentence.
        sentence_gold: 1 for a sentence holding a gold supporting fact.
        paragraphs: ``"title: paragraph"`` per paragraph.
        paragraph_gold: 1 for the paragraphs holding supporting facts.
        sentence_cos / paragraph_cos: the dual encoder's cosine to the question.
        pool_negatives: other questions' paragraphs that BM25 or dense search ranks high for
            this question.
    """

    example: QAExample
    items: list[int]
    positions: list[int]
    sentences: list[str]
    sentence_gold: np.ndarray
    paragraphs: list[str]
    paragraph_gold: np.ndarray
    sentence_cos: np.ndarray = field(default_factory=lambda: np.zeros(0))
    paragraph_cos: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pool_negatives: list[str] = field(default_factory=list)


def is_validation(example_id: str, fraction: float) -> bool:
    """Whether ``example_id`` falls in the validation split: the sha1 of the id, taken modulo
    ``round(1 / fraction)``, is 0 (stable across runs and machines; 0.2 holds out one in five)."""
    return int(hashlib.sha1(example_id.encode()).hexdigest()[:8], 16) % max(2, round(1 / fraction)) == 0


def split_examples(examples: Sequence[QAExample], fraction: float = 0.2) -> tuple[list[QAExample], list[QAExample]]:
    """``(train, validation)`` by :func:`is_validation`."""
    val = [e for e in examples if is_validation(e.id, fraction)]
    return [e for e in examples if not is_validation(e.id, fraction)], val


def _norm(s: str) -> str:
    return " ".join(s.split())


def question_rows(example: QAExample) -> QuestionRows:
    """The example's sentences and paragraphs with gold labels (a sentence is gold when it
    contains, or is contained in, a supporting fact of its own paragraph)."""
    gold_by_title: dict[str, list[str]] = {}
    for title, sent in example.supporting:
        gold_by_title.setdefault(title, []).append(_norm(sent))
    items, positions, sentences, labels = [], [], [], []
    for i, ev in enumerate(example.evidence):
        golds = [g for g in gold_by_title.get(ev.title, []) if g]
        for j, s in enumerate(split_sentences(ev.text)):
            items.append(i)
            positions.append(j)
            sentences.append(passage_text(ev.title, s.text))
            t = _norm(s.text)
            labels.append(int(any(g in t or t in g for g in golds)))
    paragraphs = [passage_text(ev.title, ev.text) for ev in example.evidence]
    par_gold = np.array([int(ev.title in gold_by_title) for ev in example.evidence])
    return QuestionRows(example, items, positions, sentences, np.array(labels), paragraphs, par_gold)


def mine(rows: Sequence[QuestionRows], embedder: Embedder, *, pool_negatives: int = 8, progress: bool = True) -> None:
    """Fill each row's cosines (``embedder``) and its pool negatives: the paragraphs of *other*
    questions ranked highest for this question by BM25 and by dense search (half each)."""
    import bm25s
    from tqdm.auto import tqdm

    pool = sorted({p for r in rows for p in r.paragraphs})
    own = [set(r.paragraphs) for r in rows]
    questions = [r.example.question for r in rows]
    q_vecs = np.asarray(embedder.embed(questions), dtype=np.float32)
    pool_vecs = np.asarray(embedder.embed(pool), dtype=np.float32)
    index = {p: k for k, p in enumerate(pool)}
    retriever = bm25s.BM25()
    if pool_negatives:
        retriever.index(bm25s.tokenize(pool, stopwords="en", show_progress=False), show_progress=False)
    depth = min(len(pool), pool_negatives + 12)
    bm25_ids = (retriever.retrieve(bm25s.tokenize(questions, stopwords="en", show_progress=False), k=depth,
                                   show_progress=False)[0] if pool_negatives else None)
    # every sentence in one call: large, length-sorted batches (per-question calls are several times slower)
    all_sentences = [s for r in rows for s in r.sentences]
    all_vecs = np.asarray(embedder.embed(all_sentences), dtype=np.float32) if all_sentences else np.zeros((0, 1))
    start = 0
    for k, r in enumerate(tqdm(rows, desc="mining negatives", unit="q", disable=not progress)):
        sent_vecs = all_vecs[start : start + len(r.sentences)]
        start += len(r.sentences)
        r.sentence_cos = sent_vecs @ q_vecs[k] if len(r.sentences) else np.zeros(0)
        r.paragraph_cos = pool_vecs[[index[p] for p in r.paragraphs]] @ q_vecs[k]
        if not pool_negatives:
            continue
        dense = [pool[i] for i in np.argsort(-(pool_vecs @ q_vecs[k]))[:depth]]
        lexical = [pool[i] for i in bm25_ids[k]]  # type: ignore[index]
        half = pool_negatives // 2
        picked = [p for p in lexical if p not in own[k]][:half]
        picked += [p for p in dense if p not in own[k] and p not in picked][: pool_negatives - len(picked)]
        r.pool_negatives = picked


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """How many of each kind of negative a group gets.

    Attributes:
        same_paragraph: non-gold sentences of the gold paragraphs (the hardest kind).
        hard: distractor sentences the dual encoder ranks highest.
        random: further random distractor sentences.
        pool: pool negatives (other questions' paragraphs) added to sentence groups.
        paragraph_hard / paragraph_random: distractor paragraphs in the paragraph group
            (0 hard and 0 random: no paragraph group).
        hop_fraction: share of steps that also train the second-hop query.
    """

    same_paragraph: int = 4
    hard: int = 5
    random: int = 3
    pool: int = 0
    paragraph_hard: int = 2
    paragraph_random: int = 1
    hop_fraction: float = 0.0


def groups_for(r: QuestionRows, cfg: GroupConfig, rng: random.Random) -> list[Group]:
    """The training groups of one question for one step (negatives sampled with ``rng``)."""
    out: list[Group] = []
    gold = r.sentence_gold
    pos = [i for i in range(len(gold)) if gold[i]]
    if pos:
        gold_items = {r.items[i] for i in pos}
        same = [i for i in range(len(gold)) if not gold[i] and r.items[i] in gold_items]
        other = sorted((i for i in range(len(gold)) if not gold[i] and r.items[i] not in gold_items),
                       key=lambda i: -float(r.sentence_cos[i]))
        rng.shuffle(same)
        rest = other[cfg.hard :]
        negs = same[: cfg.same_paragraph] + other[: cfg.hard] + rng.sample(rest, min(cfg.random, len(rest)))
        pool = rng.sample(r.pool_negatives, min(cfg.pool, len(r.pool_negatives)))
        out.append(Group("sentence", r.example.question, tuple(r.sentences[i] for i in pos + negs) + tuple(pool),
                         tuple([1.0] * len(pos) + [0.0] * (len(negs) + len(pool)))))
    if cfg.paragraph_hard or cfg.paragraph_random:
        pg = r.paragraph_gold
        ppos = [i for i in range(len(pg)) if pg[i]]
        pneg = sorted((i for i in range(len(pg)) if not pg[i]), key=lambda i: -float(r.paragraph_cos[i]))
        prest = pneg[cfg.paragraph_hard :]
        pick = pneg[: cfg.paragraph_hard] + rng.sample(prest, min(cfg.paragraph_random, len(prest)))
        if ppos and pick:
            out.append(Group("paragraph", r.example.question, tuple(r.paragraphs[i] for i in ppos + pick),
                             tuple([1.0] * len(ppos) + [0.0] * len(pick))))
    if cfg.hop_fraction and rng.random() < cfg.hop_fraction and (hop := hop_group(r, cfg, rng)) is not None:
        out.append(hop)
    return out


def hop_group(r: QuestionRows, cfg: GroupConfig, rng: random.Random) -> Group | None:
    """The second hop: query = question + a gold sentence of the first-hop paragraph (the gold
    paragraph the dual encoder prefers), positives = the other gold paragraph's gold sentences."""
    gold_items = sorted({r.items[i] for i in range(len(r.sentence_gold)) if r.sentence_gold[i]})
    if len(gold_items) != 2:
        return None
    first = max(gold_items, key=lambda p: float(r.paragraph_cos[p]))
    second = gold_items[0] if gold_items[1] == first else gold_items[1]
    bridge = rng.choice([i for i in range(len(r.items)) if r.sentence_gold[i] and r.items[i] == first])
    pos = [i for i in range(len(r.items)) if r.sentence_gold[i] and r.items[i] == second]
    cand = sorted((i for i in range(len(r.items)) if not r.sentence_gold[i] and r.items[i] != first),
                  key=lambda i: -float(r.sentence_cos[i]))
    rest = cand[cfg.hard :]
    negs = cand[: cfg.hard] + rng.sample(rest, min(cfg.random, len(rest)))
    return Group("hop", f"{r.example.question} {r.sentences[bridge]}", tuple(r.sentences[i] for i in pos + negs),
                 tuple([1.0] * len(pos) + [0.0] * len(negs)))
