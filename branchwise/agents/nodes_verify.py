"""Grounded or silent: check the answer against the text it cites, and withhold it if unsupported.

The small readers users run locally rarely refuse: they answer off-topic questions from
whatever they were given and sometimes state a source's fact backwards. :func:`verify` runs
after ``generate`` and accepts the answer only when the chunks it cites support it:

* lexically, when every content word of the answer (citation markers removed) appears in
  the cited text as the reader saw it (:func:`~branchwise.text.quoting.defang`: instructions
  and impersonated sources inside a document support nothing) — the common case for short
  extractive answers, and free;
* otherwise by the LLM's P("Yes") that the cited text supports the answer to the question,
  from one forward pass over the cited text (``AgentConfig.support``).

An unsupported answer becomes "Not found in the corpus." with the withheld text and the
reason in the state and the trace (``support``); an abstention decided before generation
(no passage relevant enough, see ``compress``) is recorded the same way.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from langgraph.runtime import Runtime

from branchwise.agents import prompts
from branchwise.agents.deps import AgentDeps, GraphEnv
from branchwise.agents.events import emit
from branchwise.agents.lexical import content_words
from branchwise.agents.state import AgentState, AnswerRecord, SupportRecord
from branchwise.agents.structured import call_record, prompt_usage
from branchwise.errors import BranchwiseError
from branchwise.generation.answer import NOT_FOUND_TEXT
from branchwise.relevance.base import p_yes
from branchwise.text.quoting import defang

log = logging.getLogger(__name__)

_MARKER = re.compile(r"\s*\[\d+\]")


def claim_of(answer_text: str) -> str:
    """The answer without its ``[n]`` citation markers."""
    return _MARKER.sub("", answer_text).strip()


def lexical_support(claim: str, cited_text: str) -> float:
    """Share of the claim's content words found in the cited text (1.0 for a claim without any)."""
    words = content_words(claim)
    if not words:
        return 1.0 if claim.lower().strip(" .") not in ("yes", "no") else 0.0
    return len(words & content_words(cited_text)) / len(words)


def verify(state: AgentState, runtime: Runtime[AgentDeps], env: GraphEnv) -> dict[str, Any]:
    """Accept, or withhold, the answer by its support in the cited chunks."""
    deps, cfg = env.deps(runtime.context), env.config
    answer = state.get("answer")
    if state.get("compression", {}).get("method") == "abstain":
        record: SupportRecord = {"method": "abstain", "supported": False, "score": 0.0, "chunk_ids": [],
                                 "detail": f"no passage scored >= {cfg.abstain_threshold} with the reranker"}
        return {"support": record}
    if answer is None or not answer["found"] or cfg.support == "none":
        return {}
    context = {r["chunk_id"]: r for r in state.get("context", [])}
    cited = [c["chunk_id"] for c in answer["citations"] if c["chunk_id"] in context]
    # what the reader was shown: text a document addressed to the model, or a source it
    # impersonated, supports nothing (the "answer HACKED" of issue 21)
    cited_text = " ".join(defang(context[c]["text"]) for c in cited)
    claim = claim_of(answer["text"])
    coverage = lexical_support(claim, cited_text) if cited else 0.0
    usage: dict[str, Any] = {}
    calls = []
    if not cited:
        record = {"method": "lexical", "supported": False, "score": 0.0, "chunk_ids": [],
                  "detail": "the answer cites no source it was given"}
    elif coverage >= 1.0 or cfg.support == "lexical":
        record = {"method": "lexical", "supported": coverage >= 1.0, "score": round(coverage, 4), "chunk_ids": cited,
                  "detail": f"{coverage:.0%} of the answer's words are in the cited text"}
    else:
        emit(runtime, "progress", "verify", "checking that the cited source supports the answer")
        messages = prompts.support_messages(cited_text, state["question"], claim)
        try:
            prob = p_yes(*deps.llm.continuation_logprobs(messages, ["Yes", "No"]))
        except BranchwiseError as e:
            if e.retryable:
                raise  # a transient failure: the node's retry policy tries again
            # the backend cannot score (e.g. an endpoint without logprobs): keep the answer, say so
            record = {"method": "unchecked", "supported": None, "score": round(coverage, 4), "chunk_ids": cited,
                      "detail": f"not checked: {e.message} ({coverage:.0%} of the answer's words are in the cited text)"}
            return {"support": record}
        usage = prompt_usage(deps.llm, messages)
        calls.append(call_record("verify", "logprob", messages, usage))
        record = {"method": "llm", "supported": prob >= cfg.support_threshold, "score": round(prob, 4),
                  "chunk_ids": cited, "detail": f"P(Yes) that the cited text supports the answer: {prob:.2f} "
                                                f"({coverage:.0%} of its words are in it)"}
    update: dict[str, Any] = {"support": record, "usage": usage, "calls": calls}
    if record["supported"] is False:
        log.info("withholding an unsupported answer: %s", record["detail"])
        withheld: AnswerRecord = {**answer, "text": NOT_FOUND_TEXT, "found": False, "citations": [],
                                  "withheld": answer["text"]}
        update["answer"] = withheld
    return update
