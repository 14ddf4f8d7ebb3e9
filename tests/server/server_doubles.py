"""Test data and doubles of the server tests: small corpora, a stateless scripted LLM (that can
stream), and a builder of small real indexes (extractive summaries: seconds, no LLM)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from branchwise.assembly.root import build_index
from branchwise.assembly.settings import Settings
from branchwise.models.base import GenParams, Message
from branchwise.testing import ScriptedLLM

VOLCANOES = [
    {"id": "etna", "title": "Etna", "text": "Mount Etna is an active volcano on the east coast of Sicily. In 1669 "
     "its lava flowed south and reached the walls of Catania."},
    {"id": "vesuvius", "title": "Vesuvius", "text": "Mount Vesuvius destroyed Pompeii in the year 79. It stands "
     "above the Bay of Naples."},
    {"id": "hekla", "title": "Hekla", "text": "Hekla is a volcano in the south of Iceland. Medieval writers "
     "called it the gateway to hell."},
    {"id": "fuji", "title": "Fuji", "text": "Mount Fuji is the highest mountain of Japan. It last erupted in 1707."},
]
BAKING = [
    {"id": "bread", "title": "Bread", "text": "Bread is baked from dough made of flour and water. Sourdough rises "
     "with wild yeast."},
    {"id": "oven", "title": "Oven", "text": "A wood-fired oven reaches 450 degrees and bakes pizza in ninety seconds."},
    {"id": "croissant", "title": "Croissant", "text": "A croissant is folded with butter many times to make its "
     "flaky layers."},
    {"id": "pretzel", "title": "Pretzel", "text": "A pretzel is dipped in lye before baking, which gives its "
     "brown crust."},
]
STROMBOLI = {"id": "stromboli", "title": "Stromboli", "text": "Stromboli is a small island volcano north of "
             "Sicily whose eruptions light the sea at night; sailors call it the lighthouse of the Mediterranean."}

_SOURCE = re.compile(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', re.S)
_WORD = re.compile(r"[a-z]{4,}")
_STOP = {"what", "which", "where", "when", "does", "that", "with", "from", "this", "there", "their", "about"}


def _words(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}  # crude stems: reach ~ reached


def scripted_reply(messages: Sequence[Message]) -> str:
    """Stateless replies per agent step; the answer quotes and cites the source sharing the most words."""
    system, user = messages[0].content, messages[-1].content
    if "rewrite the last question" in system:  # the follow-up + the topic of the last user turn
        conversation = user.rsplit("<conversation>", 1)[1]
        topic = re.findall(r"^User: (.*)$", conversation, re.M)[-1]
        follow_up = user.rsplit("Last question:", 1)[1].removesuffix("JSON:").strip()
        return json.dumps({"question": f"{follow_up} ({topic})"})
    if "numbered sources" in system:
        question = _words(user.rsplit("Question:", 1)[-1])
        scored = [(len(question & _words(text)), -int(n), n, text) for n, text in _SOURCE.findall(user)]
        best = max(scored, default=None)
        if best is None or best[0] == 0:
            return "NOT_FOUND"
        sentence = max(re.split(r"(?<=\.) ", best[3]), key=lambda s: len(question & _words(s)))
        return f"From the documents: {sentence.rstrip('.')} [{best[2]}]."
    if "decompose questions" in system:
        return json.dumps({"triples": [], "sub_questions": []})
    return "{}"


@dataclass
class StreamingScriptedLLM(ScriptedLLM):
    """The scripted LLM, streaming its replies word by word (the optional ``stream_chat`` capability)."""

    streamed: list[str] = field(default_factory=list)

    def stream_chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Iterator[str]:
        for i, word in enumerate(self._reply(messages).split(" ")):
            piece = word if i == 0 else " " + word
            self.streamed.append(piece)
            yield piece


def write_jsonl(path: Path, docs: Sequence[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def build_small(out: Path, docs: Sequence[dict[str, str]], embedder: Any) -> Path:
    """A real index of ``docs`` with an extractive-summary tree (no LLM)."""
    settings = Settings()
    tree = settings.index.tree
    tree = dataclasses.replace(tree, max_children=3, summary=dataclasses.replace(tree.summary, mode="extractive"))
    out.parent.mkdir(parents=True, exist_ok=True)
    build_index(write_jsonl(out.parent / f"{out.name}.jsonl", docs), out, settings.replace(index={"tree": tree}),
                embedder=embedder, progress=False)
    return out
