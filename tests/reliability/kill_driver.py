"""``python kill_driver.py ARGS...``: the ``branchwise`` command with test backends, and a
point where it stops dead, for the kill -9 tests (``test_kill_resume.py``).

Test-only: nothing here is reachable from branchwise itself. It registers two backends
(``killtest-hash``: the hashing embedder; ``killtest-llm``: a scripted LLM that writes short
summaries) and, when ``BW_KILL_AT=point:N`` is set, makes the N-th call of that point write
the file ``BW_KILL_MARKER`` and then sleep: the test waits for the file and kills the process
with SIGKILL, so the kill lands at the same place on every run. Points:

* ``embed``: the embedder's N-th batch (chunk batches first, then summary vectors);
* ``cluster``: the N-th clustering of tree nodes (one per bottom-up level);
* ``summarize``: the N-th LLM summary;
* ``graph``: before the N-th chunk's graph extraction is journaled.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

COUNTS: dict[str, int] = {}


def stop_here(point: str) -> None:
    """Count a call of ``point``; at the planned one, say so and wait to be killed."""
    plan = os.environ.get("BW_KILL_AT", "")
    if not plan:
        return
    target, _, n = plan.partition(":")
    if target != point:
        return
    COUNTS[point] = COUNTS.get(point, 0) + 1
    if COUNTS[point] == int(n):
        Path(os.environ["BW_KILL_MARKER"]).write_text(f"{point}:{n}\n")
        time.sleep(600)  # SIGKILL arrives here
        raise SystemExit("not killed")


def counted(point: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stop_here(point)
        return fn(*args, **kwargs)

    return wrapper


def summary_reply(messages: Any) -> str:
    """A deterministic summary: the first distinctive words of the prompt's items."""
    return "Topics " + " ".join(re.findall(r"[a-z]{5,}", messages[-1].content)[:8])


def install() -> None:
    from branchwise.graph import build as graph_build
    from branchwise.indexing import tree_build
    from branchwise.models.registry import EMBEDDER_BACKENDS, LLM_BACKENDS
    from branchwise.testing import HashingEmbedder, ScriptedLLM

    class KillableEmbedder(HashingEmbedder):
        def embed(self, texts: Any) -> Any:
            stop_here("embed")
            return super().embed(texts)

    class KillableLLM(ScriptedLLM):
        def chat(self, messages: Any, params: Any = None) -> Any:
            stop_here("summarize")
            return super().chat(messages) if params is None else super().chat(messages, params)

    EMBEDDER_BACKENDS.register("killtest-hash", lambda arg, config: KillableEmbedder(dim=64), "test", replace=True)
    LLM_BACKENDS.register("killtest-llm", lambda arg, config: KillableLLM(replies=summary_reply, name="killtest"),
                          "test", replace=True)
    tree_build.balanced_groups = counted("cluster", tree_build.balanced_groups)
    graph_build.ExtractionCache.put = counted("graph", graph_build.ExtractionCache.put)


if __name__ == "__main__":
    install()
    from branchwise.cli.main import main

    sys.exit(main(sys.argv[1:]))
