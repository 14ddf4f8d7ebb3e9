"""UDCG: Utility and Distraction-aware Cumulative Gain (Trappolini et al. 2025, arXiv 2510.21440).

Classic IR metrics (nDCG, Recall) reward relevant passages and ignore irrelevant ones, but an
LLM reader is *hurt* by distracting passages. UDCG scores a retrieved set by what the reader
does with each passage on its own:

* the utility of passage ``d_j`` is ``u_j = 1 - P(first token of "NO-RESPONSE" | q, d_j)``:
  how willing the reader is to answer from that passage alone (prompted to reply
  NO-RESPONSE when the document does not contain the answer);
* ``UDCG = sigmoid((1/k) * sum_j w_j * u_j)`` with ``w_j = +1`` for relevant and ``-1/3``
  for non-relevant passages, ``k`` the number of passages scored.

Matching the official implementation (github.com/GiovanniTRA/UDCG,
``src/compute_abstention_probability.py`` and ``src/compute_udcg_scores.py``):

* the prompt is theirs (system: answer from the documents, reply NO-RESPONSE otherwise;
  user: ``"Document: ...\\nQuestion: ...\\nAnswer:"``), applied through the chat template;
* the probability is the softmax over the *full vocabulary* of the next-token logits at the
  start of the assistant turn, taken at the first token of ``"NO-RESPONSE"``. We read it
  with :meth:`LLM.continuation_logprobs` (one forward pass per passage; the llama.cpp
  backend log-softmaxes the whole vocabulary row). For Qwen2.5 and Llama-3 the BPE splits
  ``NO-RESPONSE`` as ``NO | - | RESP | ONSE``, so the continuation scored is ``"NO"``
  (:attr:`UDCGConfig.abstain_token`; set it to your tokenizer's first piece otherwise);
* **no positional discount**: despite the "cumulative gain" name, the official code
  averages over the passages without a rank discount, and so do we;
* an empty passage list scores 0.0 (not sigmoid(0) = 0.5), as in the official code.

Relevance labels come from the dataset's gold evidence (a passage is relevant when its
document is a gold document), where the paper used human or LLM-judge labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from branchwise.errors import InputError
from branchwise.models.base import LLM, Message
from branchwise.models.batch import continuation_logprobs_batch

UDCG_SYSTEM = (
    "You are given a question and you must respond based on the provided documents. "
    "Respond directly without providing any premise or explanation. "
    "If none of the documents contain the answer, please respond with NO-RESPONSE. "
    "Do not try to respond based on your own knowledge."
)


@dataclass(frozen=True, slots=True)
class UDCGConfig:
    """UDCG weights and the reader prompt's details.

    Attributes:
        relevant_weight: ``w`` of a relevant passage (official: +1).
        irrelevant_weight: ``w`` of a non-relevant passage (official: -1/3).
        abstain_token: the first token of ``"NO-RESPONSE"`` in the reader's vocabulary.
        max_passage_chars: passages are cut to this many characters so one scoring prompt
            fits the reader's context (the official code truncates the prompt's left side).
    """

    relevant_weight: float = 1.0
    irrelevant_weight: float = -1.0 / 3.0
    abstain_token: str = "NO"
    max_passage_chars: int = 4000

    def __post_init__(self) -> None:
        if not self.abstain_token:
            raise InputError("UDCGConfig.abstain_token is empty.", fix='use "NO" (Qwen2.5/Llama-3 tokenizers).')
        if self.max_passage_chars < 1:
            raise InputError("UDCGConfig.max_passage_chars must be >= 1.", fix="e.g. 4000.")


def utility_messages(question: str, passage: str, config: UDCGConfig = UDCGConfig()) -> list[Message]:
    """The official abstention prompt for one passage (documents are data, not instructions)."""
    user = f"Document: {passage[: config.max_passage_chars]}\nQuestion: {question}\nAnswer:"
    return [Message("system", UDCG_SYSTEM), Message("user", user)]


def passage_utilities(
    llm: LLM, question: str, passages: Sequence[str], config: UDCGConfig = UDCGConfig()
) -> list[float]:
    """``u_j = 1 - P(abstain token | question, passage_j)`` for each passage (batched)."""
    batch = [utility_messages(question, p, config) for p in passages]
    logprobs = continuation_logprobs_batch(llm, batch, [config.abstain_token])
    out = []
    for lp in logprobs:
        p_abstain = math.exp(min(0.0, float(lp[0])))
        out.append(1.0 - p_abstain)
    return out


def udcg(utilities: Sequence[float], relevant: Sequence[bool], config: UDCGConfig = UDCGConfig()) -> float:
    """``sigmoid(mean_j(w_j * u_j))``; 0.0 for an empty list (official behaviour)."""
    if len(utilities) != len(relevant):
        raise InputError(
            f"udcg got {len(utilities)} utilities but {len(relevant)} relevance labels.",
            fix="pass one relevance label per scored passage.",
        )
    if not utilities:
        return 0.0
    total = sum(
        u * (config.relevant_weight if rel else config.irrelevant_weight) for u, rel in zip(utilities, relevant)
    )
    return 1.0 / (1.0 + math.exp(-total / len(utilities)))
