"""Doubles and constants shared by the chat-app tests (a uniquely named module: test folders
each have a conftest.py, and ``from conftest import ...`` would pick whichever loaded first)."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from branchwise.models.base import GenParams, Message
from branchwise.testing import ScriptedLLM

DEMO_QUESTION = "Why are relevance scores calibrated across slates?"
DEMO_CORPUS = Path(__file__).resolve().parents[2] / "branchwise" / "demo_corpus"
_SOURCE = re.compile(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', re.S)
_WORD = re.compile(r"[a-z]{4,}")


def grounded_reply(messages: Sequence[Message]) -> str:
    """Scripted replies per agent step; the answer quotes and cites the best-matching source."""
    system, user = messages[0].content, messages[-1].content
    if "numbered sources" in system:
        question = user.rsplit("Question:", 1)[-1]
        q = set(_WORD.findall(question.lower()))
        sources = _SOURCE.findall(user)
        if not sources:
            return "NOT_FOUND"
        number, text = max(sources, key=lambda s: (len(q & set(_WORD.findall(s[1].lower()))), -int(s[0])))
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))  # no headings
        sentence = next((s.strip() for s in re.split(r"(?<=[.!?])\s+", text)
                         if len(s.split()) > 5 and s.strip()[:1].isupper()), text[:160])
        sentence = " ".join(sentence.split())  # one line, as a model would write it
        return f"From the documentation: {sentence} [{number}]"
    if "decompose questions" in system:  # one triple whose unknown is the answer
        question = user.rsplit("Question:", 1)[-1].removesuffix("JSON:").strip()
        return json.dumps({"triples": [{"subject": "?answer", "relation": "answers", "object": question}],
                           "sub_questions": []})
    return "{}"


@dataclass
class StreamingScriptedLLM(ScriptedLLM):
    """A :class:`ScriptedLLM` that streams its replies word by word (``stream_chat``)."""

    delay_s: float = 0.02
    streamed: list[str] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stream_chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Iterator[str]:
        with self._lock:
            text = self._reply(messages)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for i, word in enumerate(text.split(" ")):
                time.sleep(self.delay_s)
                piece = word if i == 0 else " " + word
                self.streamed.append(piece)
                yield piece
        finally:
            with self._lock:
                self.active -= 1


