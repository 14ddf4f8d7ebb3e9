"""Continuation scores from an OpenAI-style ``logprobs`` block (one generated position).

Chat-completion servers expose log-probabilities only for the tokens they generate, plus the
``top_logprobs`` alternatives at each position; they cannot score an arbitrary multi-token
continuation of the prompt. With ``max_tokens=1`` we get the next-token distribution at the
start of the assistant turn, which is exactly what single-token judgements such as
P("Yes") vs P("No") need (the relevance-scoring setup of e.g. RankGPT-style pointwise
rerankers and LATTICE's calibrated scores).

Matching rules, per continuation ``c`` (whitespace-stripped, case-sensitive):

1. listed tokens equal to ``c`` (``"Yes"`` and ``" Yes"`` are both the answer "Yes"): their
   probabilities are summed;
2. otherwise listed tokens that are a non-empty prefix of ``c``: summed — the probability of
   *starting* ``c``, an upper bound for multi-token continuations;
3. otherwise ``c`` is not among the top alternatives: its probability is at most both the
   smallest listed probability and the unlisted mass ``1 - sum(listed)``; that bound is
   returned (floored at 1e-12) so ratios such as P(Yes) / (P(Yes) + P(No)) stay finite.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from branchwise.errors import BackendError, InputError

_FLOOR = 1e-12


def _logsumexp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def first_position_logprobs(choice: dict[str, Any], server: str) -> dict[str, float]:
    """Token → logprob for the generated token and its listed alternatives."""
    block = choice.get("logprobs") or {}
    content = block.get("content") if isinstance(block, dict) else None
    if not content:
        raise BackendError(
            f"the server at {server} does not return logprobs, which continuation scoring needs.",
            fix="use a server that supports logprobs/top_logprobs (vLLM, llama.cpp server, OpenAI), "
            "or a local backend ('default', 'llamacpp:', 'hf:'), or a scorer that does not need logprobs.",
        )
    first = content[0]
    entries: dict[str, float] = {}
    for item in [first, *(first.get("top_logprobs") or [])]:
        tok, lp = item.get("token"), item.get("logprob")
        if isinstance(tok, str) and isinstance(lp, (int, float)) and math.isfinite(lp):
            entries[tok] = max(float(lp), entries.get(tok, -math.inf))
    if not entries:
        raise BackendError(f"the server at {server} returned an empty logprobs block.", fix="check the server version.")
    return entries


def score_from_top_logprobs(choice: dict[str, Any], continuations: Sequence[str], server: str) -> list[float]:
    """Log-probabilities of ``continuations`` per the module's matching rules."""
    entries = first_position_logprobs(choice, server)
    listed = [math.exp(lp) for lp in entries.values()]
    unlisted_bound = max(_FLOOR, min(min(listed), max(0.0, 1.0 - sum(listed))))
    out: list[float] = []
    for cont in continuations:
        target = cont.strip()
        if not target:
            raise InputError(f"continuation {cont!r} is blank.", fix='pass words such as "Yes" and "No".')
        exact = [lp for tok, lp in entries.items() if tok.strip() == target]
        starts = [lp for tok, lp in entries.items() if tok.strip() and target.startswith(tok.strip())]
        if exact:
            out.append(_logsumexp(exact))
        elif starts:
            out.append(_logsumexp(starts))
        else:
            out.append(math.log(unlisted_bound))
    return out
