"""Load: concurrent questions against one index from threads and from processes, and the chat
app under 20 sessions — every answer is its own question's, with its own citations (no
cross-talk), and nothing fails (rows L1-L3 of docs/reliability.md).

Real components: the index (real Chroma on disk, BM25, tree), the agent, the Gradio app on
127.0.0.1 and gradio clients, separate OS processes. The reader is scripted (it quotes the
best-matching source), so a wrong answer can only come from mixed-up state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from rel_support import DOCS, QUESTIONS, grounded_reply, write_docs

from branchwise.testing import HashingEmbedder, ScriptedLLM

WORKER = Path(__file__).with_name("query_worker.py")
REPO = Path(__file__).resolve().parents[2]


def check(question: str, text: str, cited: list[str]) -> None:
    doc, fact = QUESTIONS[question]
    assert fact in text, (question, text)
    assert cited and all(c.startswith(doc + "#") for c in cited), (question, cited)


def test_threads_share_one_index_without_cross_talk(built_index: tuple[Path, Path], real_embedder: Any) -> None:
    from branchwise.assembly.root import Assembly, open_index
    from branchwise.assembly.settings import Settings

    llm = ScriptedLLM(replies=grounded_reply)
    parts = Assembly(open_index(built_index[1], embedder=real_embedder), Settings(), llm=llm)
    questions = list(QUESTIONS) * 3  # 12 questions, 12 threads, one shared index and assembly
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(questions))

    def one(i: int) -> None:
        try:
            agent = parts.agent(llm=llm)
            barrier.wait(timeout=120)
            results[i] = agent.ask(questions[i])
        except BaseException as e:  # noqa: BLE001 - collected and re-raised below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    assert len(results) == len(questions)
    for i, answer in results.items():
        check(questions[i], answer.text, [c.chunk_id for c in answer.citations])
        assert answer.trace.question == questions[i]


@pytest.fixture(scope="module")
def hashing_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.indexing.pipeline import IndexConfig, build_index
    from branchwise.indexing.summarize import SummaryConfig
    from branchwise.indexing.tree_build import TreeConfig

    base = tmp_path_factory.mktemp("load")
    config = IndexConfig(chunk=IndexBuildConfig(embedder_spec="loadtest-hash"), graph="off",
                         tree=TreeConfig(max_children=3, summary=SummaryConfig(mode="extractive")))
    build_index(write_docs(base / "corpus", DOCS), base / "index", embedder=HashingEmbedder(dim=64), config=config,
                progress=False)
    return base / "index"


def test_processes_query_one_index_at_once(hashing_index: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    questions = list(QUESTIONS)
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(hashing_index), *questions[i:], *questions[:i]],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]  # four processes, each asks all four questions in another order
    answers = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        answers += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(answers) == 16
    for a in answers:
        check(a["question"], a["text"], a["cited"])


def test_chat_app_under_20_sessions(built_index: tuple[Path, Path], real_embedder: Any, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from benchmarks.chat_load import parser, run

    questions = [f"{q} (session {i})" for i in range(5) for q in QUESTIONS]  # 20 distinct questions
    args = parser().parse_args(["--sessions", "20", "--index", str(built_index[1]), "--workdir", str(tmp_path),
                                "--llm", "scripted", "--timeout", "600", "--concurrency", "4"])
    report = run(args, llm=ScriptedLLM(replies=grounded_reply, name="scripted"), questions=questions,
                 embedder=real_embedder)
    assert report.errors == 0, [o.error for o in report.outcomes if o.error]
    assert len(report.outcomes) == 20
    for o in report.outcomes:
        assert o.answered == o.question  # each session got the answer to its own question
        assert o.ok and o.found
