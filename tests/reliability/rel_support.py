"""Helpers of the reliability tests (a corpus, fast build options, CLI run results)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS = {
    "eiffel.md": "# Eiffel Tower\n\nThe Eiffel Tower in Paris was completed in 1889. It is a wrought-iron lattice "
    "tower, 330 metres tall.",
    "nile.md": "# Nile\n\nThe Nile river is about 6,650 km long. It flows north through northeastern Africa into the "
    "Mediterranean Sea.",
    "penicillin.md": "# Penicillin\n\nPenicillin was discovered by Alexander Fleming in 1928 at St Mary's Hospital "
    "in London.",
    "volcano.txt": "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy. It is the highest "
    "active volcano in Europe outside the Caucasus.",
}

#: options of a fast build: extractive summaries, no graph, no progress bars
FAST = ["--summaries", "extractive", "--graph", "off", "--max-children", "3", "--no-progress"]


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The one error line (asserted to be one line, starting as the CLI's errors do)."""
        lines = [ln for ln in self.err.splitlines() if ln.startswith("branchwise: error:")]
        assert len(lines) == 1, self.err
        return lines[0]


def fast_settings() -> Any:
    """The :class:`Settings` of ``branchwise index ... FAST``."""
    import dataclasses

    from branchwise.assembly.settings import Settings

    s = Settings()
    tree = dataclasses.replace(s.index.tree, max_children=3,
                               summary=dataclasses.replace(s.index.tree.summary, mode="extractive"))
    return s.replace(index={"tree": tree, "graph": "off"})


def pristine_copy(index: Path, dest: Path) -> Path:
    """A copy of a built index to damage."""
    shutil.copytree(index, dest)
    return dest


_SOURCE = re.compile(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', re.S)
_WORD = re.compile(r"[a-z0-9]{3,}")

#: one question per document of :data:`DOCS`, with a fact only that document holds
QUESTIONS = {
    "When was the Eiffel Tower completed?": ("eiffel.md", "1889"),
    "How long is the Nile river?": ("nile.md", "6,650"),
    "Who discovered penicillin?": ("penicillin.md", "Fleming"),
    "Where is the volcano Mount Etna?": ("volcano.txt", "Sicily"),
}


def grounded_reply(messages: Any) -> str:
    """A scripted reader: the answer prompt gets the sentence sharing the most words with the
    question from the source sharing the most, cited; other prompts get an empty JSON object."""
    system, user = messages[0].content, messages[-1].content
    if "numbered sources" not in system:
        return "{}"
    question = set(_WORD.findall(user.rsplit("Question:", 1)[-1].lower()))
    sources = _SOURCE.findall(user)
    if not sources:
        return "NOT_FOUND"
    number, text = max(sources, key=lambda s: (len(question & set(_WORD.findall(s[1].lower()))), -int(s[0])))
    body = " ".join(line for line in text.splitlines() if not line.startswith("#"))
    sentences = re.split(r"(?<=[.!?])\s+", body.strip())
    sentence = max(sentences, key=lambda s: len(question & set(_WORD.findall(s.lower()))))
    return f"{sentence} [{number}]"
