"""Test doubles for the agent tests: a small corpus, a lexical index, a prompt-routed LLM.

``FakeIndex`` implements the agent's ``ChunkIndex`` protocol over a handful of chunks with
the ``HashingEmbedder`` (dense) and word overlap (BM25 stand-in), fused by reciprocal
rank — the same shape of results as ``retrieval.index.Index``. ``RoutedLLM`` answers each
agent step (plan, distill, feedback, gap, answer) from its own script, recognised by the
step's system prompt, and counts calls per step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from branchwise.models.base import Message
from branchwise.testing import HashingEmbedder, ScriptedLLM
from branchwise.types import Chunk, ScoredChunk

CORPUS: list[tuple[str, str, str]] = [
    (
        "dracula",
        "Dracula",
        "Dracula is an 1897 Gothic horror novel by the Irish author Bram Stoker. "
        "It introduced the vampire Count Dracula.",
    ),
    (
        "stoker",
        "Bram Stoker",
        "Abraham Stoker was born on 8 November 1847 in Clontarf, on the northside "
        "of Dublin, Ireland. He worked as a theatre manager in London.",
    ),
    (
        "liffey",
        "River Liffey",
        "The River Liffey flows through the centre of Dublin, Ireland. Its major tributaries include the River Dodder.",
    ),
    (
        "frankenstein",
        "Frankenstein",
        "Frankenstein is an 1818 novel written by Mary Shelley about a scientist who creates a creature.",
    ),
    ("wing", "Wing design", "Swept wings delay the onset of compressibility drag at high subsonic speeds."),
    (
        "ireland",
        "Ireland",
        "Ireland is an island in the North Atlantic, separated from Great Britain by the Irish Sea.",
    ),
]

_WORD = re.compile(r"[a-z0-9]+")


def make_chunks() -> list[Chunk]:
    return [Chunk(id=f"{doc}#0", doc_id=doc, text=text, title=title) for doc, title, text in CORPUS]


class ChunkMap:
    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._chunks = {c.id: c for c in chunks}

    def get(self, chunk_id: str) -> Chunk:
        return self._chunks[chunk_id]


class FakeIndex:
    """Dense (hashing embedder) + lexical overlap, fused by reciprocal rank (k=60)."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = ChunkMap(chunks)
        self._ids = [c.id for c in chunks]
        self._texts = [f"{c.title} {c.text}" for c in chunks]
        self.embedder = HashingEmbedder()
        self._vecs = self.embedder.embed(self._texts)
        self.searches: list[tuple[str, str]] = []

    def search_dense(self, query: str, k: int) -> list[ScoredChunk]:
        self.searches.append(("dense", query))
        sims = self._vecs @ self.embedder.embed_query(query)
        order = np.argsort(-sims, kind="stable")[:k]
        return [ScoredChunk(self._ids[i], float(sims[i]), "dense") for i in order]

    def search_bm25(self, query: str, k: int) -> list[ScoredChunk]:
        self.searches.append(("bm25", query))
        q = set(_WORD.findall(query.lower()))
        scores = [len(q & set(_WORD.findall(t.lower()))) for t in self._texts]
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [ScoredChunk(self._ids[i], float(scores[i]), "bm25") for i in order[:k] if scores[i] > 0]

    def search_hybrid(self, query: str, k: int) -> list[ScoredChunk]:
        fused: dict[str, float] = {}
        for hits in (self.search_dense(query, 2 * k), self.search_bm25(query, 2 * k)):
            for rank, h in enumerate(hits):
                fused[h.chunk_id] = fused.get(h.chunk_id, 0.0) + 1.0 / (60 + rank + 1)
        self.searches.append(("hybrid", query))
        best = sorted(fused, key=lambda c: (-fused[c], c))[:k]
        return [ScoredChunk(c, fused[c], "hybrid") for c in best]


STEP_MARKERS = {
    "contextualize": "rewrite the last question of a conversation",
    "plan": "decompose questions",
    "distill": "extract key facts",
    "feedback_json": "say in a few words which information is missing",
    "feedback": "Answer Yes or No",
    "gap": "write one short search query",
    "answer": "You answer questions from the numbered sources",
    "verify": "You check whether an answer is stated by a source passage",
}


def step_of(messages: Sequence[Message]) -> str:
    system = messages[0].content
    for step, marker in STEP_MARKERS.items():
        if marker in system:
            return step
    raise AssertionError(f"unrecognised prompt: {system[:80]}")


Reply = str | Callable[[Sequence[Message]], str]


@dataclass
class RoutedLLM(ScriptedLLM):
    """A ScriptedLLM whose replies come from one script per agent step.

    ``scripts[step]`` is a list of replies consumed in order (the last repeats) or a
    function of the messages; ``p_yes`` is the sequence of P("Yes") the feedback gets.
    """

    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    p_yes: list[float] = field(default_factory=lambda: [0.9])
    counts: dict[str, int] = field(default_factory=dict)
    fail_on: dict[str, Exception] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.replies = self._route
        self.logprob_fn = self._logprob

    def _route(self, messages: Sequence[Message]) -> str:
        step = step_of(messages)
        n = self.counts.get(step, 0)
        self.counts[step] = n + 1
        if step in self.fail_on:
            raise self.fail_on.pop(step)
        script = self.scripts.get(step)
        if not script:
            raise AssertionError(f"no script for step {step!r}")
        reply = script[min(n, len(script) - 1)]
        return reply(messages) if callable(reply) else reply

    def _logprob(self, messages: Sequence[Message], continuation: str) -> float:
        step = step_of(messages)
        n = self.counts.get(step, 0)
        if continuation == "Yes":
            self.counts[step] = n + 1
            n += 1
        p = self.p_yes[min(n - 1, len(self.p_yes) - 1)]
        return float(np.log(p if continuation == "Yes" else 1.0 - p))


def plan_reply(triples: list[tuple[str, str, str]], subs: list[str]) -> str:
    return json.dumps(
        {"triples": [{"subject": s, "relation": r, "object": o} for s, r, o in triples], "sub_questions": subs}
    )


def cite_source_with(word: str, answer: str) -> Callable[[Sequence[Message]], str]:
    """An answer script citing the numbered source whose text contains ``word``."""

    def reply(messages: Sequence[Message]) -> str:
        blocks = re.findall(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', messages[-1].content, re.S)
        for number, text in blocks:
            if word.lower() in text.lower():
                return f"{answer} [{number}]"
        return "NOT_FOUND"

    return reply


DRACULA_Q = "Which river flows through the city where the author of Dracula was born?"
DRACULA_PLAN = plan_reply(
    [("?a", "author of", "Dracula"), ("?a", "born in", "?c"), ("?r", "flows through", "?c")],
    ["Who wrote Dracula?", "Where was Bram Stoker born?"],
)


def routed(**scripts: Any) -> RoutedLLM:
    p_yes = scripts.pop("p_yes", [0.9])
    fail_on = scripts.pop("fail_on", {})
    return RoutedLLM(
        scripts={k: (v if isinstance(v, list) else [v]) for k, v in scripts.items()}, p_yes=p_yes, fail_on=fail_on
    )
