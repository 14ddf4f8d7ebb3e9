"""Context compression: the contract between the evidence pool and answer generation.

A :class:`Compressor` turns the ranked evidence of one question into a shorter context
that fits a per-query token budget, *without losing where each piece came from*: every
output item keeps the ``chunk_id`` and ``title`` of the evidence it was cut from, so the
generator's citation markers still point at real chunks after compression.

Implementations (each beside its own frozen config):

* :class:`NoCompression` — whole items in rank order while they fit (the baseline);
* :class:`~branchwise.compression.extractive.ExtractiveCompressor` — RECOMP extractive
  (Xu et al. 2023, arXiv 2310.04408): top sentences by dual-encoder similarity;
* :class:`~branchwise.compression.abstractive.AbstractiveCompressor` — RECOMP abstractive: an
  LLM-written query-focused summary, with *selective augmentation* (irrelevant evidence →
  empty context);
* :class:`~branchwise.compression.color.ColorCompressor` — CoLoR-style (Seo et al. 2024,
  arXiv 2412.18232): several candidates, the shortest one judged sufficient wins.

Tokens are counted with tiktoken ``cl100k_base`` (built offline from the files bundled in
llama-index-core; see :mod:`branchwise.text.tokens`), the same counter the index uses
for ``Chunk.n_tokens``, so budgets mean the same thing everywhere. The budget covers the
evidence *text*; the few tokens of titles and markers the generator adds are its own
prompt overhead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from branchwise.errors import InputError
from branchwise.text.tokens import get_tokenizer
from branchwise.types import Evidence, Usage

if TYPE_CHECKING:
    from branchwise.compression.extractive import ExtractiveConfig

__all__ = [
    "Candidate",
    "CompressedContext",
    "CompressionConfig",
    "CompressionMode",
    "Compressor",
    "NoCompression",
    "count_tokens",
    "evidence_tokens",
    "make_compressor",
    "truncate_tokens",
]

#: a name registered in :data:`branchwise.compression.registry.COMPRESSORS`
CompressionMode = str


def count_tokens(text: str) -> int:
    """tiktoken ``cl100k_base`` token count of ``text`` (the index's offline encoding)."""
    return get_tokenizer().count(text)


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` with at most ``max_tokens`` tokens (cut at a token edge).

    A decoded token prefix can, rarely, re-encode to more tokens than it was cut to (BPE
    merges differ at the new end); the cut is shortened until the *re-counted* text fits,
    so callers can rely on ``count_tokens(result) <= max_tokens``.
    """
    if max_tokens <= 0:
        return ""
    tok = get_tokenizer()
    n = max_tokens
    while n > 0:
        piece = tok.truncate(text, n).rstrip()
        if tok.count(piece) <= max_tokens:
            return piece
        n -= 1
    return ""


def evidence_tokens(items: Sequence[Evidence]) -> int:
    """Total tokens of the items' texts (what a budget is charged for)."""
    return sum(count_tokens(e.text) for e in items)


@dataclass(slots=True)
class Candidate:
    """One candidate compression considered by a CoLoR-style compressor.

    Attributes:
        name: how it was made ("extractive@64", "abstractive", ...).
        items: the compressed evidence.
        tokens: tokens of the items' text.
        score: the selector's sufficiency score (e.g. P("Yes") the question is answerable
            from it), or None when not scored.
        label: gold-based label (True: the question is still answered from it), None at
            inference.
        chosen: whether the selector picked it.
    """

    name: str
    items: list[Evidence]
    tokens: int
    score: float | None = None
    label: bool | None = None
    chosen: bool = False

    @property
    def text(self) -> str:
        return render_plain(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tokens": self.tokens,
            "score": self.score,
            "label": self.label,
            "chosen": self.chosen,
            "items": [e.to_dict() for e in self.items],
        }


@dataclass(slots=True)
class CompressedContext:
    """The output of a compressor, recorded in the agent trace.

    Attributes:
        items: compressed evidence; each keeps the ``chunk_id``/``title`` of its source
            (citations survive) and carries the compressed text. Empty when ``dropped``.
        tokens_before: tokens of the evidence text given to the compressor.
        tokens_after: tokens of ``items``' text (never above the budget).
        ratio: ``tokens_after / tokens_before`` (0 when nothing was given).
        mode: which compressor produced it ("none", "extractive", "abstractive", "color").
        budget_tokens: the budget it was asked to respect.
        dropped: True when selective augmentation judged the evidence irrelevant and
            returned an empty context on purpose (generation proceeds without context).
        candidates: CoLoR-style candidates with their scores (empty for other modes).
        usage: LLM / embedder calls spent compressing.
        note: a short human-readable reason (why dropped, which candidate won).
    """

    items: list[Evidence]
    tokens_before: int
    tokens_after: int
    mode: str
    budget_tokens: int
    dropped: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.tokens_after / self.tokens_before if self.tokens_before else 0.0

    @property
    def text(self) -> str:
        return render_plain(self.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for traces (candidates included, texts included)."""
        return {
            "mode": self.mode,
            "budget_tokens": self.budget_tokens,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "ratio": round(self.ratio, 4),
            "dropped": self.dropped,
            "note": self.note,
            "items": [e.to_dict() for e in self.items],
            "candidates": [c.to_dict() for c in self.candidates],
            "usage": dataclasses.asdict(self.usage),
        }


def render_plain(items: Sequence[Evidence]) -> str:
    """A plain rendering, ``title: text`` per item; used for candidate labels and exports."""
    return "\n".join(f"{e.title}: {e.text}" if e.title else e.text for e in items)


def with_text(ev: Evidence, text: str) -> Evidence:
    """A copy of ``ev`` with new text and everything else (ids, title, score, facts) kept."""
    return dataclasses.replace(ev, text=text, facts=list(ev.facts))


@runtime_checkable
class Compressor(Protocol):
    """Anything that compresses a question's evidence within a token budget."""

    mode: str

    def compress(self, question: str, evidence: Sequence[Evidence], budget_tokens: int) -> CompressedContext:
        """Compress ``evidence`` (ranked, best first) for ``question`` to ≤ ``budget_tokens``."""
        ...


def check_budget(budget_tokens: int) -> None:
    if budget_tokens < 0:
        raise InputError(
            f"the compression budget must be >= 0 tokens, got {budget_tokens}.",
            fix="pass a non-negative budget_tokens (e.g. 256).",
        )


class NoCompression:
    """Pass-through baseline: whole items in the given (rank) order while they fit.

    Items that would overflow the budget are skipped (a smaller later one may still fit),
    so even "no compression" respects the generator's per-query token budget.
    """

    mode = "none"

    def compress(self, question: str, evidence: Sequence[Evidence], budget_tokens: int) -> CompressedContext:
        check_budget(budget_tokens)
        kept: list[Evidence] = []
        used = before = 0
        for ev in evidence:
            n = count_tokens(ev.text)
            before += n
            if used + n <= budget_tokens:
                kept.append(with_text(ev, ev.text))
                used += n
        return CompressedContext(kept, before, used, self.mode, budget_tokens)


@dataclass(frozen=True, slots=True)
class CompressionConfig:
    """Which compressor the agent runs (its budget is ``AgentConfig.context_budget_tokens``).

    Attributes:
        mode: a name in :data:`~branchwise.compression.registry.COMPRESSORS`: "none",
            "extractive" (RECOMP, the default: cheap and never hallucinates),
            "abstractive" (LLM summary with selective augmentation) or "color".
        encoder: dual encoder for the extractive scorer: None uses the index embedder, or a
            spec such as ``"st:/path/to/trained-compressor"`` (see ``training.extractive``);
            the composition root resolves it.
        extractive: sentence scoring and selection of the extractive compressor (also the
            extractive candidates of "color"); None: ``ExtractiveConfig()``.
    """

    mode: CompressionMode = "extractive"
    encoder: str | None = None
    extractive: ExtractiveConfig | None = None

    def __post_init__(self) -> None:
        from branchwise.compression.registry import COMPRESSORS

        COMPRESSORS.get(self.mode)  # an unknown mode fails here, listing the registered ones


def make_compressor(config: CompressionConfig, *, llm: Any = None, embedder: Any = None,
                    reranker: Any = None) -> Compressor:
    """Build the compressor named by ``config.mode`` (see
    :data:`~branchwise.compression.registry.COMPRESSORS`) from injected backends.

    Args:
        config: the compression settings.
        llm: an :class:`~branchwise.models.base.LLM` (needed by "abstractive" and "color").
        embedder: the :class:`~branchwise.models.base.Embedder` used as the extractive dual
            encoder (the composition root resolves ``config.encoder`` into it).
        reranker: a :class:`~branchwise.relevance.base.Reranker` the extractive selection mixes
            in (see ``ExtractiveConfig.reranker_weight``); None: the dual encoder alone.
    """
    from branchwise.compression.registry import COMPRESSORS

    entry = COMPRESSORS.get(config.mode)
    if "llm" in entry.needs and llm is None:
        raise InputError(f"compression mode {config.mode!r} needs an LLM.", fix="pass llm=..., or use mode='extractive'.")
    if "encoder" in entry.needs and embedder is None:
        raise InputError(f"compression mode {config.mode!r} needs a dual encoder.",
                         fix="pass embedder=... or set CompressionConfig(encoder='st:/path').")
    return entry.load()(config, llm=llm, encoder=embedder, reranker=reranker)  # type: ignore[no-any-return]


def no_compressor(config: CompressionConfig, *, llm: Any = None, encoder: Any = None, reranker: Any = None) -> Compressor:
    return NoCompression()