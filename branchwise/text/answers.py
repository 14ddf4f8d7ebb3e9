"""Answer comparison as the SQuAD v1.1 / HotpotQA scripts do it.

:func:`exact_match` and :func:`token_f1` use the official normalisation (lower-case, strip
punctuation, drop the articles *a/an/the*, squeeze whitespace; Rajpurkar et al. 2016) and take
the maximum over the gold answers. Used by the evaluation metrics and by the compressors'
gold-based labels.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 answer normalisation: lower, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(gold: str | Sequence[str]) -> list[str]:
    golds = [gold] if isinstance(gold, str) else list(gold)
    return golds or [""]


def exact_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in _golds(gold)))


def _f1_single(prediction: str, gold: str) -> float:
    pred_toks = normalize_answer(prediction).split()
    gold_toks = normalize_answer(gold).split()
    if not pred_toks or not gold_toks:
        # SQuAD v2 convention: two empty answers agree; one empty answer scores 0.
        return float(pred_toks == gold_toks)
    common = Counter(pred_toks) & Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def lenient_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if a normalised gold answer occurs in the normalised prediction ("lenient accuracy":
    a long but right answer counts), else 0.0. An empty prediction never matches."""
    p = f" {normalize_answer(prediction)} "
    if not p.strip():
        return 0.0
    return float(any(normalize_answer(g) and f" {normalize_answer(g)} " in p for g in _golds(gold)))


def token_f1(prediction: str, gold: str | Sequence[str]) -> float:
    """SQuAD token-overlap F1 (bag of normalised tokens), max over the gold answers."""
    return max(_f1_single(prediction, g) for g in _golds(gold))


def choose_option(answer: str, choices: Sequence[str]) -> int | None:
    """Map a free-text answer to the index of a multiple-choice option (or None).

    Small readers answer "(B)", "B) The boat", "The answer is B" or just the option text.
    In order: an explicit option letter, then an exact normalised option match, then the
    option with the highest token F1 against the answer (ties and zero overlap → None).
    """
    if not choices:
        return None
    letters = string.ascii_uppercase[: len(choices)]
    letter = _option_letter(answer)
    if letter is not None and letter in letters:
        return letters.index(letter)
    norm = normalize_answer(answer)
    for i, c in enumerate(choices):
        if norm and norm == normalize_answer(c):
            return i
    scores = [_f1_single(answer, c) for c in choices]
    best = max(scores)
    if best == 0.0 or scores.count(best) > 1:
        return None
    return scores.index(best)


_BARE_LETTER = re.compile(r"^\s*\(?([A-Za-z])\)?[.:)]?\s*$")
_LEAD_LETTER = re.compile(r"^\s*\(?([A-Z])[.:)]\s")
_SAID_LETTER = re.compile(r"(?i:\banswer\s+is)\s*:?\s*\(?([A-Z])\b")


def _option_letter(answer: str) -> str | None:
    """An explicit option letter: "B", "(b)", "B) text", "C. text", "the answer is (D)"."""
    for pat in (_BARE_LETTER, _LEAD_LETTER, _SAID_LETTER):
        m = pat.search(answer)
        if m:
            return m.group(1).upper()
    return None


def choice_accuracy(answer: str, choices: Sequence[str], gold_choice: int) -> float:
    """1.0 if :func:`choose_option` maps ``answer`` to ``gold_choice``."""
    return float(choose_option(answer, choices) == gold_choice)
