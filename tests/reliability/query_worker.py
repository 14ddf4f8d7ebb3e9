"""``python query_worker.py INDEX QUESTION...``: open an index and answer each question with
the agent (a scripted reader), printing one JSON line per answer. For the load test's
processes (``test_load.py``); registers the hashing embedder as ``loadtest-hash``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rel_support import grounded_reply  # noqa: E402


def main(index: str, questions: list[str]) -> None:
    from branchwise.assembly.root import Assembly, open_index
    from branchwise.assembly.settings import Settings
    from branchwise.models.registry import EMBEDDER_BACKENDS
    from branchwise.testing import HashingEmbedder, ScriptedLLM

    EMBEDDER_BACKENDS.register("loadtest-hash", lambda arg, config: HashingEmbedder(dim=64), "test", replace=True)
    llm = ScriptedLLM(replies=grounded_reply)
    parts = Assembly(open_index(index), Settings(), llm=llm)
    for q in questions:
        answer = parts.agent(llm=llm).ask(q)
        print(json.dumps({"question": q, "text": answer.text, "cited": [c.chunk_id for c in answer.citations]}),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
