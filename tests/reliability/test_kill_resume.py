"""kill -9 during ``branchwise index`` and ``branchwise add``, at several points: the rerun
resumes, the result equals an uninterrupted run, and in between the index never opens as if
it were fine (rows K1-K8 of docs/reliability.md).

Real subprocesses (``kill_driver.py``: the ``branchwise`` command with the hashing embedder
and a scripted LLM registered as backends, so the kill points are reached deterministically),
killed by SIGKILL; real Chroma, BM25, tree build, checkpoints and spaCy graph extraction.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from branchwise.errors import IndexFormatError

DRIVER = Path(__file__).with_name("kill_driver.py")
REPO = Path(__file__).resolve().parents[2]
TOPICS = {
    "solar": "Solar panels convert sunlight into electricity with photovoltaic cells made in Germany.",
    "football": "The striker from Brazil scored a late goal for Arsenal in the football match in London.",
    "python": "Guido van Rossum created Python; functions and classes organise program code into modules.",
    "bread": "Bread dough rises when yeast ferments the sugars in wheat flour milled in Kansas.",
    "spin": "Electron spin was measured by Otto Stern and Walther Gerlach with magnetic fields in Frankfurt.",
}
BUILD = ["--llm", "killtest-llm", "--embedder", "killtest-hash", "--summaries", "llm", "--max-children", "4",
         "--graph", "on", "--graph-extractor", "spacy", "--no-progress", "--yes"]
#: where each build run stops: mid chunk embedding, mid clustering, mid summaries, mid graph
BUILD_KILLS = ["embed:2", "cluster:2", "summarize:10", "graph:60"]
#: where each add run stops: embedding the new chunks, refreshing summaries, extracting the graph
ADD_KILLS = ["embed:1", "summarize:1", "graph:1"]


def write_corpus(folder: Path, n: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = list(TOPICS)
    for i in range(start, start + n):
        topic = names[i % len(names)]
        (folder / f"{topic}-{i:03d}.md").write_text(
            f"# {topic.title()} note {i}\n\n{TOPICS[topic]} Detail {i} mentions case {i * 7 % 13}.\n", encoding="utf-8")
    return folder


def driver(args: list[str], tmp: Path, kill_at: str | None = None) -> subprocess.CompletedProcess | None:
    """Run the CLI in a subprocess; with ``kill_at``, SIGKILL it when it reaches that point."""
    marker = tmp / "reached"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "BW_KILL_MARKER": str(marker), "BW_KILL_AT": kill_at or "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(DRIVER), *args]
    if kill_at is None:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before reaching {kill_at}: {proc.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{kill_at} not reached within 600 s")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    return None


@pytest.fixture(scope="module")
def test_backends() -> Iterator[None]:
    """The kill driver's backends, registered in this process to open the indexes it writes."""
    from branchwise.models.registry import EMBEDDER_BACKENDS, LLM_BACKENDS
    from branchwise.testing import HashingEmbedder, ScriptedLLM

    EMBEDDER_BACKENDS.register("killtest-hash", lambda arg, config: HashingEmbedder(dim=64), "test", replace=True)
    LLM_BACKENDS.register("killtest-llm", lambda arg, config: ScriptedLLM(), "test", replace=True)
    yield
    EMBEDDER_BACKENDS.unregister("killtest-hash")
    LLM_BACKENDS.unregister("killtest-llm")


def snapshot(index: Path) -> dict[str, Any]:
    """Everything an index answers from: files, manifest (minus times and costs), and every
    vector of every Chroma collection."""
    from branchwise.retrieval.index import CHUNKS, ENTITIES, NODES, Index

    fresh_view(index)
    idx = Index.open(index)  # check=True: a complete, consistent index
    m = idx.manifest.to_dict()
    extra = {k: v for k, v in m["extra"].items() if k not in ("last_update", "ingest")}
    extra["tree"] = {k: v for k, v in extra.get("tree", {}).items()
                     if k in ("strategy", "max_children", "summary_mode", "seed", "node_vectors")}
    extra.pop("graph", None)  # its report counts cached vs extracted: a resumed run differs there
    snap: dict[str, Any] = {
        "manifest": {k: m[k] for k in ("embedder", "chunking", "corpus_fingerprint", "llm", "counts", "stages")},
        "extra": extra,
        "chunks": (index / "chunks.jsonl").read_text(),
        "tree": json.loads((index / "tree.json").read_text()),
        "bm25": json.loads((index / "bm25" / "meta.json").read_text()),
        "entities": (index / "graph" / "entities.jsonl").read_text(),
        "relations": (index / "graph" / "relations.jsonl").read_text(),
    }
    for col in (CHUNKS, NODES, ENTITIES):
        ids = sorted(idx.store.ids(col))
        snap[col] = (ids, np.round(idx.store.get_embeddings(col, ids), 6).tolist() if ids else [])
    return snap


def fresh_view(index: Path) -> None:
    """Drop this process's Chroma client of ``index``: chromadb keeps one per path per process,
    and it does not see what the subprocesses wrote since it was opened."""
    from branchwise.retrieval.store import forget_client

    forget_client(str(index / "chroma"))


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], f"{key} differs from the uninterrupted run"


def assert_refused(index: Path) -> str:
    """The interrupted index does not open for answering; the error says how to finish it."""
    from branchwise.retrieval.index import Index

    fresh_view(index)
    with pytest.raises(IndexFormatError) as e:
        Index.open(index)
    assert "rerun" in (e.value.fix or "")
    return str(e.value)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, test_backends: None) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("reference")
    corpus = write_corpus(base / "corpus", 150)
    new = write_corpus(base / "new", 6, start=150)
    driver(["index", corpus, "--out", base / "index", *BUILD], base)
    shutil.copytree(base / "index", base / "added")
    driver(["add", base / "added", new, "--no-progress"], base)
    return {"corpus": corpus, "new": new, "index": base / "index", "added": base / "added"}


def test_index_killed_at_each_stage_resumes_to_the_uninterrupted_index(reference, tmp_path: Path) -> None:
    out = tmp_path / "index"
    for point in BUILD_KILLS:  # K1-K4: each rerun resumes the last one and is killed further on
        driver(["index", reference["corpus"], "--out", out, *BUILD], tmp_path, kill_at=point)
        assert (out / "manifest.json").exists()
        message = assert_refused(out)
        assert "--out" in message and str(reference["corpus"]) in message  # the exact command to finish
    done = driver(["index", reference["corpus"], "--out", out, *BUILD], tmp_path)
    assert "index ready" in done.stdout
    assert not (out / "tree.build").exists()
    assert_same(snapshot(out), snapshot(reference["index"]))


def test_add_killed_at_each_stage_is_finished_by_the_rerun(reference, tmp_path: Path) -> None:
    out = tmp_path / "added"
    shutil.copytree(reference["index"], out)
    for point in ADD_KILLS:  # K5-K7
        driver(["add", out, reference["new"], "--no-progress"], tmp_path, kill_at=point)
        message = assert_refused(out)
        assert "did not finish" in message and f"branchwise add {out} {reference['new']}" in message
    driver(["add", out, reference["new"], "--no-progress"], tmp_path)
    assert_same(snapshot(out), snapshot(reference["added"]))


def test_a_crashed_build_never_opens_as_a_finished_one(reference, tmp_path: Path) -> None:
    """K8: kill during the first embedding batch of a new build, then try every way in."""
    from branchwise.assembly.root import open_index
    from branchwise.cli.main import main

    out = tmp_path / "index"
    driver(["index", reference["corpus"], "--out", out, *BUILD], tmp_path, kill_at="embed:1")
    assert_refused(out)
    with pytest.raises(IndexFormatError, match="stopped during the 'embeddings' stage"):
        open_index(out)
    assert main(["info", str(out)]) == 1  # info reports it (and exits 1)
