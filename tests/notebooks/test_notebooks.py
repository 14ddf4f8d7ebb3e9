"""The notebooks in ``notebooks/`` executed end to end with nbclient, as a reader would run them.

Each runs in a fresh IPython kernel on this venv's Python, from the ``notebooks/`` folder,
with its inputs given through the environment variables the notebook documents. The kernel
gets the same network guard as this test session (an IPython startup file), so a notebook
that tried to reach the network would fail here too. Notebooks are committed without
outputs; that is checked as well.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
TESTS = REPO / "tests"
DEMO_CORPUS = REPO / "branchwise" / "demo_corpus"
KERNEL = "branchwise-test-venv"
STARTUP = """
import atexit, json, os, sys
sys.path.insert(0, {tests!r})
from netguard import NetGuard
_guard = NetGuard()
_guard.install()
atexit.register(lambda: open(os.environ["BRANCHWISE_NB_NETLOG"], "w").write(json.dumps(_guard.attempts)))
"""


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec for this venv's Python (repo on PYTHONPATH) and an IPython dir with the guard."""
    root = tmp_path_factory.mktemp("jupyter")
    ipython = root / "ipython"
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-netguard.py").write_text(STARTUP.format(tests=str(TESTS)))
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "branchwise (test venv)", "language": "python",
        "env": {"PYTHONPATH": str(REPO), "IPYTHONDIR": str(ipython), "MPLBACKEND": "Agg"},
    }))
    return root


def run_notebook(name: str, kernel_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                 env: dict[str, str], timeout: int = 240) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>.ipynb`` with ``env``; fail on any blocked network attempt."""
    netlog = tmp_path / f"{name}.netlog.json"
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("BRANCHWISE_NB_NETLOG", str(netlog))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    attempts = json.loads(netlog.read_text()) if netlog.exists() else None
    assert attempts == [], f"the notebook tried to reach the network: {attempts}"
    return nb


def stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def png_sizes(nb: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """Width and height of every PNG the notebook displayed."""
    sizes = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            data = o.get("data", {}).get("image/png")
            if data:
                raw = base64.b64decode(data)
                assert raw[:8] == b"\x89PNG\r\n\x1a\n"
                sizes.append(struct.unpack(">II", raw[16:24]))
    return sizes


@pytest.mark.parametrize("name", ["quickstart", "traversal_traces", "eval_report"])
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.parametrize("name", ["quickstart", "traversal_traces", "eval_report"])
def test_notebooks_use_only_the_public_api(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.findall(r"^\s*(?:from branchwise\b|import branchwise\.)", code, re.M), "use `import branchwise as bw`"


def test_the_readme_command_to_run_notebooks_is_installed() -> None:
    import subprocess

    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run([str(jupyter), "execute", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "execute" in done.stdout.lower()
    assert "jupyter execute quickstart.ipynb" in (NOTEBOOKS / "README.md").read_text()


@pytest.mark.real_llm
def test_quickstart_indexes_asks_and_cites(kernel_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    work = tmp_path / "work"
    nb = run_notebook("quickstart", kernel_dir, monkeypatch, tmp_path,
                      {"BRANCHWISE_NB_WORKDIR": str(work), "BRANCHWISE_NB_CORPUS": str(DEMO_CORPUS)}, timeout=300)
    out = stdout(nb)
    chunks_file = work / "quickstart-index" / "chunks.jsonl"
    chunk_ids = [json.loads(line)["id"] for line in chunks_file.read_text().splitlines()]
    assert f"chunks: {len(chunk_ids)};" in out
    answer = re.search(r"^A: (.+)$", out, re.M)
    assert answer and answer.group(1).strip() and answer.group(1) != "Not found in the corpus.", out
    cited = re.findall(r"^\[(\d+)\] (\S+) \(", out, re.M)
    assert cited and all(cid in chunk_ids for _, cid in cited), out
    assert all(f"[{n}]" in answer.group(1) for n, _ in cited)
    # plan=False, one round: the answer call, and the support check when the answer is not word for word in the source
    assert "path to " in out and re.search(r"LLM calls: [12];", out), out

    from branchwise.agents.trace import AgentTrace

    trace = AgentTrace.load(work / "quickstart-trace.json")
    assert trace.navigation and trace.answer is not None
    assert [c["chunk_id"] for c in trace.answer["citations"]] == [cid for _, cid in cited]


@pytest.fixture(scope="module")
def traced_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> tuple[Path, Path, Any]:
    """The demo corpus indexed with the real embedder, and a two-round agent trace over it.

    The agent runs the LLM-judged RFM-RAG loop (``AgentConfig.rfm``) with a scripted LLM: its plan has a triple the corpus does not cover and
    its sufficiency judgement says "no" (P("Yes") = 0.2), so the gap query searches that
    triple in a second round and the trace has two rounds and two navigations.
    """
    import numpy as np

    from branchwise.agents.config import AgentConfig
    from branchwise.facade import build_agent
    from branchwise.indexing.pipeline import IndexConfig, build_index
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.testing import ScriptedLLM
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.navigation.navigator import NavigatorConfig
    from branchwise.indexing.summarize import SummaryConfig

    root = tmp_path_factory.mktemp("nb-trace")
    config = IndexConfig(chunk=IndexBuildConfig(embedder_spec="default"), graph="off",
                         tree=TreeConfig(max_children=4, summary=SummaryConfig(mode="extractive", summary_tokens=64)))
    index = build_index(DEMO_CORPUS, root / "index", embedder=real_embedder, config=config, progress=False)

    # a triple no document covers, so the gap query searches it in round 2
    plan = json.dumps({"triples": [{"subject": "?person", "relation": "designed", "object": "Fresnel lighthouse lens"}],
                       "sub_questions": []})

    def reply(messages: Any) -> str:
        system = messages[0].content
        if "numbered sources" in system:
            return "The navigator expands the best frontier nodes [1]."
        return plan if "decompose questions" in system else "{}"

    llm = ScriptedLLM(replies=reply, logprob_fn=lambda m, c: float(np.log(0.2 if c == "Yes" else 0.8)))
    with build_agent(index, llm=llm, config=AgentConfig.rfm(max_rounds=2, max_subqueries=1),
                     navigator=NavigatorConfig(beam=2, iterations=6), use_graph=False) as agent:
        answer = agent.ask("How does the navigator choose which nodes to expand?")
    trace_path = root / "trace.json"
    answer.trace.save(trace_path)
    return root / "index", trace_path, answer.trace


def test_traversal_traces_draws_the_explored_tree_scores_and_pool(traced_index: tuple[Path, Path, Any],
                                                                   kernel_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    index_dir, trace_path, trace = traced_index
    assert len(trace.rounds) == 2 and len(trace.navigation) >= 2  # what the fixture promises
    nb = run_notebook("traversal_traces", kernel_dir, monkeypatch, tmp_path,
                      {"BRANCHWISE_NB_TRACE": str(trace_path), "BRANCHWISE_NB_INDEX": str(index_dir)})
    out = stdout(nb)
    slates = sum(len(n.steps) for n in trace.navigation)
    assert f"navigations: {len(trace.navigation)}; scored slates: {slates};" in out
    assert f"iterations: {[n.iterations for n in trace.navigation]}" in out
    expanded = {s.expanded for n in trace.navigation for s in n.steps}
    assert f"expanded: {len(expanded)};" in out
    for r in trace.rounds:
        assert f"round {r['round'] + 1}: +{len(r['new_chunk_ids'])} new, pool {r['pool_size']}" in out
    # the first score-table row is the root's first child, with the scores the trace recorded
    first = trace.navigation[0].steps[0]
    assert f"[1, '{first.expanded} → {first.items[0]}" in out
    assert f"{round(first.raw_scores[0], 2)}, {round(first.calibrated[0], 2)}, {round(first.path_scores[0], 2)}" in out
    sizes = png_sizes(nb)
    assert len(sizes) == 3 and all(w > 400 and h > 250 for w, h in sizes)  # tree, scores, pool growth


def _records() -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """A small IR run: three systems x six questions with hand-set nDCG@10 and latency."""
    ndcg = {
        "bm25": [0.2, 0.5, 0.1, 0.9, 0.4, 0.3],
        "dense": [0.4, 0.5, 0.3, 0.8, 0.6, 0.2],
        "tree": [0.6, 0.7, 0.1, 0.9, 0.7, 0.5],
    }
    latency = {"bm25": 0.002, "dense": 0.01, "tree": 0.05}
    records = [{"system": s, "qid": str(i), "question": f"q{i}", "type": "ir",
                "metrics": {"ndcg@10": v, "latency_s": latency[s], "llm_calls": 0.0}}
               for s, values in ndcg.items() for i, v in enumerate(values)]
    return records, ndcg


def test_eval_report_loads_a_run_and_plots_the_comparison(kernel_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    from branchwise.evals.report import write_report

    run = tmp_path / "run"
    run.mkdir()
    records, ndcg = _records()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    meta = {"dataset": "toy-ir", "kind": "ir", "questions": 6, "documents": 10, "chunks": 12,
            "systems": ["bm25", "dense", "tree"]}
    (run / "run.json").write_text(json.dumps(meta))
    write_report(run, records, meta, reference="bm25", n_resamples=500)
    nb = run_notebook("eval_report", kernel_dir, monkeypatch, tmp_path, {"BRANCHWISE_NB_EVAL_DIR": str(run)})
    out = stdout(nb)
    assert "systems: ['bm25', 'dense', 'tree']; records: 18; primary metric: ndcg@10; reference: bm25" in out
    for system, values in ndcg.items():  # means computed by hand: bm25 0.4, dense 0.4667, tree 0.5833
        assert f"{system}: ndcg@10 = {math.fsum(values) / len(values):.4f} [" in out
    # per question against bm25: dense better on 0,2,4; worse on 3,5; tied on 1
    assert "dense vs bm25: better on 3, worse on 2, tied on 1 questions" in out
    assert "tree vs bm25: better on 4, worse on 0, tied on 2 questions" in out
    assert "paired tree - bm25 on ndcg@10: diff +0.1833" in out
    assert len(png_sizes(nb)) == 2
    markdown = [o for c in nb.cells for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert markdown and "| tree |" in markdown[0]["data"]["text/markdown"]


COMMITTED_REPORTS = sorted(p.parent for p in (REPO / "reports").glob("*/summary.json") if (p.parent / "results.jsonl").exists())


@pytest.mark.parametrize("report", COMMITTED_REPORTS, ids=[p.name for p in COMMITTED_REPORTS])
def test_eval_report_runs_on_every_committed_report(report: Path, kernel_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    nb = run_notebook("eval_report", kernel_dir, monkeypatch, tmp_path, {"BRANCHWISE_NB_EVAL_DIR": str(report)})
    out = stdout(nb)
    primary = summary["primary"]
    answered = [s for s, v in summary["systems"].items() if primary in v["metrics"]]
    assert f"primary metric: {primary}" in out and answered
    for s in answered:  # each compared system's mean is printed as the summary has it
        assert f"{s}: {primary} = {summary['systems'][s]['metrics'][primary]['mean']:.4f} [" in out
    assert len(png_sizes(nb)) == 2
