"""Slate scorers: turn :class:`SlateRequest` s into per-item relevance in [0, 1].

Three implementations of the :class:`Scorer` protocol, from cheapest to most expensive:

* :class:`EmbeddingScorer` — cosine of the query and each node's vector; zero LLM calls. The
  default for the embedded 1.5B model, whose own judgement is worse than this prior.
* :class:`YesNoScorer` — pointwise ``P("Yes") / (P("Yes") + P("No"))`` from one forward pass
  per item, no generation (the in-context reranking / FIRST idea: read relevance off the
  next-token distribution). Small models answer "8" to every 0-10 prompt, but the Yes/No
  probability separates relevant from irrelevant passages (../shared/MODELS.md). Prompts
  put the item last so a prefix-caching backend only evaluates the item's tokens.
* :class:`LLMSlateScorer` — LATTICE's listwise judgement: one JSON call per slate,
  ``{"reasoning": str, "scores": [int 0-100, ...]}``, grammar-constrained where the backend
  supports it; malformed output is repaired, retried once with the problem stated, and
  finally replaced by the retrieval priors with the fallback recorded in the trace.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from branchwise.errors import OutputParseError
from branchwise.models.base import LLM, Completion, Embedder, GenParams, Message
from branchwise.models.batch import continuation_logprobs_batch
from branchwise.navigation.priors import NodeVectors
from branchwise.relevance.base import Reranker, p_yes
from branchwise.navigation.slates import (
    SlateRequest,
    SlateScores,
    messages_text,
    prompt_hash,
    render_slate_prompt,
    render_yes_no_prompt,
    slate_schema,
)

log = logging.getLogger(__name__)


@runtime_checkable
class Scorer(Protocol):
    """Scores slates. One call may hold slates of many questions (batched navigation)."""

    name: str

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        """One :class:`SlateScores` per request, in order."""
        ...


# ---------------------------------------------------------------------------------------
# embedding scorer
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EmbeddingScorerConfig:
    """Settings of :class:`EmbeddingScorer`.

    Attributes:
        low: cosine mapped to score 0 (and below).
        high: cosine mapped to score 1 (and above).
        query_cache: query embeddings kept (LRU), so a question is embedded once.
    """

    low: float = 0.0
    high: float = 1.0
    query_cache: int = 1024


class EmbeddingScorer:
    """Relevance = cosine(query, node vector), linearly mapped from [low, high] to [0, 1].

    Args:
        vectors: node vectors (summary embeddings for internal nodes, chunk embeddings for
            leaves), from the same embedder as ``embedder``.
        embedder: embeds the questions.
        config: the cosine → score mapping.
    """

    name = "embedding"

    def __init__(self, vectors: NodeVectors, embedder: Embedder, config: EmbeddingScorerConfig = EmbeddingScorerConfig()):
        self.vectors = vectors
        self.embedder = embedder
        self.config = config
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def _query(self, question: str) -> np.ndarray:
        if question not in self._queries:
            self._queries[question] = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
            while len(self._queries) > self.config.query_cache:
                self._queries.popitem(last=False)
        self._queries.move_to_end(question)
        return self._queries[question]

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        out = []
        span = max(1e-9, self.config.high - self.config.low)
        for req in requests:
            t0 = time.perf_counter()
            ids = [it.node_id for it in req.items]
            cos = self.vectors.vectors(ids) @ self._query(req.question)
            scores = np.clip((cos - self.config.low) / span, 0.0, 1.0)
            # what was scored, for the trace: the query text embedded, against these nodes' vectors
            msgs = [Message("user", f"cosine of the query with node vectors {', '.join(ids)}\nquery: {req.question}")]
            out.append(SlateScores(scores=[float(s) for s in scores], prompt=msgs[0].content, prompt_hash=prompt_hash(msgs),
                                   latency_s=time.perf_counter() - t0))
        return out


# ---------------------------------------------------------------------------------------
# single-pass yes/no scorer
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class YesNoScorerConfig:
    """Settings of :class:`YesNoScorer`.

    Attributes:
        max_item_chars: item text is cut to this many characters.
        show_prior: append the retrieval scores after the item (InsertRank, arXiv 2506.14086).
        keep_prompt: keep the last item's prompt text in the result (for traces; on by default).
    """

    max_item_chars: int = 600
    show_prior: bool = False
    keep_prompt: bool = True


class YesNoScorer:
    """Pointwise relevance from the next-token probabilities of "Yes" and "No".

    One forward pass per slate item, no generation. All items of a ``score_batch`` call go
    to the backend in one :func:`~branchwise.models.batch.continuation_logprobs_batch`
    call: llama.cpp orders them so consecutive prompts share the longest token prefix (the
    system prompt and query) and reuses the cached KV; a transformers backend pads them
    into batched forward passes.
    """

    name = "yesno"

    def __init__(self, llm: LLM, config: YesNoScorerConfig = YesNoScorerConfig()):
        self.llm = llm
        self.config = config

    def _messages(self, req: SlateRequest, i: int) -> list[Message]:
        note = ""
        if self.config.show_prior:
            vals = [f"{s} {v[i]:.2f}" for s, v in sorted(req.prior.items()) if v[i] is not None]
            note = f"\n(Search engine scores, a hint only: {', '.join(vals)})" if vals else ""
        return render_yes_no_prompt(req.question, req.items[i], max_item_chars=self.config.max_item_chars, prior_note=note)

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        prompts = [[self._messages(r, i) for i in range(len(r.items))] for r in requests]
        flat = [m for ps in prompts for m in ps]
        # same-question prompts back to back: a backend without native batching then still
        # meets the shared prefix on consecutive calls
        questions = [r.question for r, ps in zip(requests, prompts) for _ in ps]
        order = sorted(range(len(flat)), key=lambda j: questions[j])
        t0 = time.perf_counter()
        ordered = continuation_logprobs_batch(self.llm, [flat[j] for j in order], ["Yes", "No"])
        wall = time.perf_counter() - t0
        logprobs: list[list[float]] = [[]] * len(flat)
        for j, lp in zip(order, ordered):
            logprobs[j] = lp
        out, k = [], 0
        for ps in prompts:
            lps = logprobs[k : k + len(ps)]
            k += len(ps)
            texts = [messages_text(m) for m in ps]
            out.append(SlateScores(
                scores=[p_yes(y, n) for y, n in lps],
                prompt=texts[-1] if self.config.keep_prompt and texts else "",
                prompt_hash=prompt_hash(ps[0]) if ps else "",
                prompt_tokens=sum(self.llm.count_tokens(t) for t in texts),
                llm_calls=len(ps),
                latency_s=wall * len(ps) / max(1, len(flat)),
            ))
        return out


# ---------------------------------------------------------------------------------------
# listwise LLM slate scorer
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LLMSlateScorerConfig:
    """Settings of :class:`LLMSlateScorer`.

    Attributes:
        max_item_chars: item text is cut to this many characters.
        max_tokens: generation limit per call (the reasoning is kept short).
        reasoning: ask for a reasoning string before the scores (costs tokens).
        show_prior: show retrieval scores next to the items (InsertRank).
        retries: extra attempts after malformed output, each stating the problem.
        concurrency: slates scored in parallel (useful for HTTP backends only).
        keep_prompt: keep the prompt text in the result (for traces; on by default).
    """

    max_item_chars: int = 600
    max_tokens: int = 384
    reasoning: bool = True
    show_prior: bool = False
    retries: int = 1
    concurrency: int = 1
    keep_prompt: bool = True


def parse_slate_scores(value: Any, n_items: int) -> tuple[list[float], str]:
    """``(scores in [0, 1], reasoning)`` from a parsed answer; OutputParseError if unusable.

    Accepts ``{"scores": [int...]}``, LATTICE's ``{"relevance_scores": [[id, score]...]}``
    and ``{"scores": {"0": 80, ...}}``; values are clipped to 0..100.
    """
    if not isinstance(value, dict):
        raise OutputParseError(f"expected a JSON object, got {type(value).__name__}.", raw=str(value))
    reasoning = str(value.get("reasoning", "") or "")
    raw = value.get("scores", value.get("relevance_scores"))
    by_pos: dict[int, Any] = {}
    try:
        if isinstance(raw, list) and raw and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in raw):
            by_pos = {int(k): v for k, v in raw}
        elif isinstance(raw, dict):
            by_pos = {int(k): v for k, v in raw.items()}
        elif isinstance(raw, list):
            by_pos = dict(enumerate(raw))
        if sorted(by_pos) != list(range(n_items)):
            raise OutputParseError(f"expected {n_items} scores, got {len(by_pos)}.", raw=str(value))
        scores = [min(100.0, max(0.0, float(by_pos[i]))) / 100.0 for i in range(n_items)]
    except (TypeError, ValueError) as e:
        raise OutputParseError(f"scores are not numbers: {e}.", raw=str(value)) from e
    if not all(math.isfinite(x) for x in scores):
        raise OutputParseError("scores are not finite numbers.", raw=str(value))
    return scores, reasoning


class LLMSlateScorer:
    """One JSON-constrained LLM call per slate (LATTICE's listwise scoring)."""

    name = "llm"

    def __init__(self, llm: LLM, config: LLMSlateScorerConfig = LLMSlateScorerConfig()):
        self.llm = llm
        self.config = config

    def _one(self, req: SlateRequest) -> SlateScores:
        cfg = self.config
        t0 = time.perf_counter()
        msgs = render_slate_prompt(
            req, max_item_chars=cfg.max_item_chars, show_prior=cfg.show_prior, reasoning=cfg.reasoning
        )
        schema = slate_schema(len(req.items), reasoning=cfg.reasoning)
        params = GenParams(max_tokens=cfg.max_tokens)
        used: list[Completion] = []
        problem, raw = "", ""
        for attempt in range(1 + max(0, cfg.retries)):
            n_used = len(used)
            try:
                out = self.llm.chat_json(msgs, schema, params)
                used.append(out.completion)
                raw = out.completion.text
                scores, reasoning = parse_slate_scores(out.value, len(req.items))
                return self._result(req, msgs, used, scores, reasoning, raw, t0, None)
            except OutputParseError as e:
                problem, raw = e.message, e.raw or raw
                if len(used) == n_used:  # the backend itself gave up parsing: count the call
                    used.append(Completion(text=raw, prompt_tokens=self.llm.count_tokens(messages_text(msgs))))
                log.info("slate %d of %s: malformed scorer output (attempt %d): %s", req.slate_id, req.query_id, attempt + 1, problem)
                msgs = list(msgs[:2]) + [
                    Message("assistant", raw[:2000]),
                    Message("user", f"That answer was unusable: {problem} Reply with only the JSON object, "
                                    f"with exactly {len(req.items)} integer scores."),
                ]
        fallback = [v if v is not None else 0.5 for v in req.prior_mean()]
        log.warning("slate %d of %s: scorer output unusable after retries; using retrieval priors", req.slate_id, req.query_id)
        return self._result(req, msgs, used, fallback, "", raw, t0, f"malformed output: {problem}")

    def _result(
        self, req: SlateRequest, msgs: list[Message], used: list[Completion], scores: list[float],
        reasoning: str, raw: str, t0: float, fallback: str | None,
    ) -> SlateScores:
        return SlateScores(
            scores=scores,
            reasoning=reasoning,
            raw=raw,
            prompt=messages_text(msgs) if self.config.keep_prompt else "",
            prompt_hash=prompt_hash(msgs[:2]),
            prompt_tokens=sum(c.prompt_tokens for c in used),
            completion_tokens=sum(c.completion_tokens for c in used),
            llm_calls=len(used),
            latency_s=time.perf_counter() - t0,
            fallback=fallback,
        )

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        if self.config.concurrency <= 1 or len(requests) <= 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(self._one, requests))


# ---------------------------------------------------------------------------------------
# reranker scorer
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RerankerScorerConfig:
    """Settings of :class:`RerankerScorer`.

    Attributes:
        weight: share of the reranker in each score; the rest is the embedding cosine
            (1.0: the reranker alone).
        internal_nodes: how internal nodes (summaries of subtrees) are scored:
            ``"reranker"`` like leaves, or ``"cosine"`` (a reranker trained on passages may
            judge summaries worse than the embedding does).
    """

    weight: float = 1.0
    internal_nodes: Literal["reranker", "cosine"] = "reranker"


class RerankerScorer:
    """Slate scores from a :class:`~branchwise.relevance.base.Reranker` (a cross-encoder, an
    LLM's P(Yes), a reranking endpoint), optionally mixed with the embedding cosine.

    One ``reranker.score`` call per slate (the reranker batches the slate's items).
    """

    name = "reranker"

    def __init__(self, reranker: Reranker, cosine: EmbeddingScorer | None = None,
                 config: RerankerScorerConfig = RerankerScorerConfig()) -> None:
        if (config.weight < 1.0 or config.internal_nodes == "cosine") and cosine is None:
            from branchwise.errors import InputError

            raise InputError("this reranker scorer mixes in the embedding cosine but got no embedding scorer.",
                             fix="pass cosine=EmbeddingScorer(...), or use weight=1.0, internal_nodes='reranker'.")
        self.reranker = reranker
        self.cosine = cosine
        self.config = config

    def score_batch(self, requests: Sequence[SlateRequest]) -> list[SlateScores]:
        cfg = self.config
        cos = self.cosine.score_batch(requests) if self.cosine is not None else [None] * len(requests)
        out = []
        for req, c in zip(requests, cos):
            t0 = time.perf_counter()
            which = [i for i, it in enumerate(req.items) if it.is_leaf or cfg.internal_nodes == "reranker"]
            rr = self.reranker.score(req.question, [req.items[i].text for i in which]) if which else []
            scores = list(c.scores) if c is not None else [0.0] * len(req.items)
            for i, r in zip(which, rr):
                scores[i] = cfg.weight * r + (1.0 - cfg.weight) * (c.scores[i] if c is not None else 0.0)
            msgs = [Message("user", f"{self.reranker.name} over {', '.join(it.node_id for it in req.items)}\n"
                                    f"query: {req.question}")]
            out.append(SlateScores(scores=scores, prompt=msgs[0].content, prompt_hash=prompt_hash(msgs),
                                   latency_s=time.perf_counter() - t0))
        return out


# ---------------------------------------------------------------------------------------
# the registered scorers (branchwise.navigation.registry.SCORERS)
# ---------------------------------------------------------------------------------------
def embedding_scorer(index: Any, *, llm: LLM | None = None, reranker: Any = None) -> EmbeddingScorer:
    """Cosine of the query and the index's node vectors (summaries and chunk embeddings)."""
    from branchwise.navigation.priors import IndexNodeVectors

    return EmbeddingScorer(IndexNodeVectors(index, index.tree), index.embedder)


def yesno_scorer(index: Any, *, llm: LLM | None = None, reranker: Any = None) -> YesNoScorer:
    return YesNoScorer(_need_llm(llm, "yesno"))


def llm_slate_scorer(index: Any, *, llm: LLM | None = None, reranker: Any = None) -> LLMSlateScorer:
    return LLMSlateScorer(_need_llm(llm, "llm"))


def reranker_scorer(index: Any, *, llm: LLM | None = None, reranker: Any = None) -> RerankerScorer:
    """The reranker on every node, as the settings' reranker spec says."""
    if reranker is None:
        from branchwise.errors import InputError

        raise InputError("scorer 'reranker' needs a reranker.",
                         fix="set Settings(reranker=...) (e.g. 'default' or 'cross-encoder:/path'), or use scorer='embedding'.")
    return RerankerScorer(reranker, embedding_scorer(index))


def _need_llm(llm: LLM | None, name: str) -> LLM:
    if llm is None:
        from branchwise.errors import InputError

        raise InputError(f"scorer {name!r} needs an LLM.", fix="pass llm=..., or use scorer='embedding'.")
    return llm
