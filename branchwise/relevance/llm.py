"""The LLM as a reranker, read from next-token probabilities (no generation).

* :class:`YesNoReranker` (``llm-yesno``) — pointwise: ``P("Yes") / (P("Yes") + P("No"))``
  after "Does this passage help answer the query?", one forward pass per passage. Prompts put
  the passage last, so a prefix-caching backend (llama.cpp) evaluates only its tokens.
* :class:`ListwiseReranker` (``llm-listwise``) — FIRST-style (Reddy et al. 2024, arXiv
  2406.15657): the passages of a window are labelled A, B, C, ... in one prompt and ranked by
  the probabilities of the first generated token over those labels, from a single forward
  pass per window. Scores are the label probabilities divided by the window's largest, so the
  best passage of each window scores 1.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Sequence

from branchwise.models.base import LLM, Message
from branchwise.models.batch import continuation_logprobs_batch
from branchwise.relevance.base import p_yes
from branchwise.text.quoting import RELEVANCE_SYSTEM, quote_passage

LABELS = string.ascii_uppercase


@dataclass(frozen=True, slots=True)
class LLMRerankerConfig:
    """Settings of the LLM rerankers.

    Attributes:
        max_passage_chars: passage text is cut to this many characters.
        window: passages per listwise prompt (at most 26: labels A-Z).
    """

    max_passage_chars: int = 600
    window: int = 10

    def __post_init__(self) -> None:
        if not 2 <= self.window <= len(LABELS):
            from branchwise.errors import InputError

            raise InputError(f"window={self.window} is out of range.", fix=f"use 2..{len(LABELS)} passages per window.")


def yes_no_messages(query: str, passage: str, max_chars: int) -> list[Message]:
    """The pointwise prompt: system, the query, then the passage last (prefix sharing)."""
    user = (f"Query: {quote_passage(query, 2000)}\n\nDoes the following passage help answer the query? "
            f"Answer Yes or No.\n\n<passage>{quote_passage(passage, max_chars)}</passage>")
    return [Message("system", RELEVANCE_SYSTEM), Message("user", user)]


def listwise_messages(query: str, passages: Sequence[str], max_chars: int) -> list[Message]:
    """The listwise prompt: labelled passages, then "which one is most relevant?"."""
    blocks = "\n".join(f'<passage id="{LABELS[i]}">{quote_passage(p, max_chars)}</passage>'
                       for i, p in enumerate(passages))
    user = (f"Query: {quote_passage(query, 2000)}\n\n{blocks}\n\n"
            f"Which passage helps most to answer the query? Answer with its letter "
            f"({LABELS[0]}-{LABELS[len(passages) - 1]}) only.")
    return [Message("system", RELEVANCE_SYSTEM), Message("user", user)]


class YesNoReranker:
    """P("Yes") per passage from one forward pass each (all passages in one batched call)."""

    name = "llm-yesno"

    def __init__(self, llm: LLM, config: LLMRerankerConfig = LLMRerankerConfig()) -> None:
        self.llm = llm
        self.config = config

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        prompts = [yes_no_messages(query, p, self.config.max_passage_chars) for p in passages]
        return [p_yes(y, n) for y, n in continuation_logprobs_batch(self.llm, prompts, ["Yes", "No"])]


class ListwiseReranker:
    """First-token label probabilities over a window of passages (one forward pass per window)."""

    name = "llm-listwise"

    def __init__(self, llm: LLM, config: LLMRerankerConfig = LLMRerankerConfig()) -> None:
        self.llm = llm
        self.config = config

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if len(passages) <= 1:
            return [1.0] * len(passages)
        w = self.config.window
        windows = [list(passages[i : i + w]) for i in range(0, len(passages), w)]
        prompts = [listwise_messages(query, win, self.config.max_passage_chars) for win in windows]
        full = [p for p, win in zip(prompts, windows) if len(win) == w]
        rows = continuation_logprobs_batch(self.llm, full, list(LABELS[:w])) if full else []
        if len(windows[-1]) < w:  # the shorter last window, with its own labels
            rows.append(list(self.llm.continuation_logprobs(prompts[-1], list(LABELS[: len(windows[-1])]))))
        out: list[float] = []
        for row in rows:
            best = max(row)
            out.extend(math.exp(lp - best) for lp in row)  # softmax over the labels, divided by its max
        return out
