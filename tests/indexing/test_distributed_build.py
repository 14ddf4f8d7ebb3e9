"""Distributed builds on a real Dask LocalCluster (2 worker processes, 127.0.0.1, dashboard off)
into a real Chroma server on loopback: the same index as a single-process build, queried."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import branchwise as bw
from branchwise.assembly.root import Assembly, build_index
from branchwise.graph.types import KnowledgeGraph
from branchwise.retrieval.index import CHUNKS, Index
from branchwise.retrieval.search import hybrid_search
from branchwise.testing import HashingEmbedder

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

QUERIES = ["Which band did Jeff Porcaro play drums for?", "Who directed the film about Ed Wood?",
           "What nationality was the author?"]


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 HotpotQA paragraphs as JSONL (one chunk each)."""
    path = tmp_path_factory.mktemp("dist") / "hotpot60.jsonl"
    n = 0
    with path.open("w", encoding="utf-8") as out, (shared_data / "hotpotqa" / "dev_distractor_200.jsonl").open() as f:
        for line in f:
            for title, sents in json.loads(line)["context"]:
                if n < 60:
                    out.write(json.dumps({"id": f"p{n:03d}", "title": title, "text": "".join(sents)}) + "\n")
                    n += 1
    return path


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client

    from branchwise.indexing.distributed import local_cluster

    with local_cluster(2) as cluster, Client(cluster) as c:
        assert len(c.scheduler_info()["workers"]) == 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in c.scheduler_info()["workers"])
        assert cluster.scheduler.address.startswith("tcp://127.0.0.1:")
        # dashboard off; the scheduler's health/metrics HTTP endpoint listens on loopback only
        http = cluster.scheduler.http_server
        assert all(sock.getsockname()[0] == "127.0.0.1" for sock in http._sockets.values())
        yield c


def _settings(store: str = "chroma", **index: Any) -> bw.Settings:
    s = bw.Settings(store=store)
    tree = dataclasses.replace(s.index.tree, max_children=4,
                               summary=dataclasses.replace(s.index.tree.summary, mode="extractive"))
    return s.replace(index={"tree": tree, **index})


def _graph_records(idx: Index) -> tuple[list[Any], list[Any]]:
    g = KnowledgeGraph.load(idx.graph_dir)
    return sorted(e.to_dict()["mentions"][0]["name"] for e in g.entities()), sorted(r.id for r in g.relations())


def test_distributed_build_on_a_chroma_server_equals_the_single_process_build(
        corpus: Path, chroma_server: str, tmp_path: Path) -> None:
    settings = _settings(chroma_server)
    emb = HashingEmbedder(dim=64)
    single = build_index(corpus, tmp_path / "single", settings, embedder=emb, progress=False)
    # through the composition root, as `branchwise index --workers 2` does: a LocalCluster of its own
    dist = build_index(corpus, tmp_path / "dist", settings.replace(index={"workers": 2}), embedder=emb,
                       progress=False)
    assert dist.manifest.store.startswith("chroma+http://127.0.0.1:")
    # the same tree: node ids, levels, children, summaries (documented tolerance: none here)
    assert (tmp_path / "single" / "tree.json").read_text() == (tmp_path / "dist" / "tree.json").read_text()
    assert dist.tree is not None and dist.tree.stats()["depth"] >= 3
    # the same chunk and node vectors, the same graph (spaCy extraction on the workers)
    ids = single.chunks.ids()
    assert np.array_equal(single.chunk_embeddings(ids), dist.chunk_embeddings(ids))
    assert sorted(single.store.ids(CHUNKS)) == sorted(dist.store.ids(CHUNKS))
    assert dist.manifest.extra["graph"]["extractor"] == "spacy"
    assert _graph_records(single) == _graph_records(dist)
    # ... and it answers queries like the single-process index: hybrid, tree navigation, graph
    for q in QUERIES:
        assert [h.chunk_id for h in hybrid_search(dist)(q, 5)] == [h.chunk_id for h in hybrid_search(single)(q, 5)]
        nav_a = Assembly(single, settings).tree_search().search(q, 5).hits
        nav_b = Assembly(dist, settings).tree_search().search(q, 5).hits
        assert [h.chunk_id for h in nav_b] == [h.chunk_id for h in nav_a] and nav_b
        graph_b = Assembly(dist, settings).graph_search.retrieve(q, k=5)
        assert [e.chunk_id for e in graph_b] == [e.chunk_id for e in Assembly(single, settings).graph_search.retrieve(q, k=5)]


def test_a_distributed_build_resumes_per_partition(corpus: Path, client: Any, tmp_path: Path) -> None:
    from branchwise.graph.build import CACHE_FILE
    from branchwise.indexing.distributed import build_index_distributed
    from branchwise.indexing.pipeline import IndexConfig

    settings = _settings()
    config: IndexConfig = dataclasses.replace(settings.index, workers=2)
    emb = HashingEmbedder(dim=64)
    idx = build_index_distributed(corpus, tmp_path / "idx", embedder=emb, config=config, progress=False, client=client)
    tree = (tmp_path / "idx" / "tree.json").read_text()
    n = len(idx.chunks)
    assert f"{n} extracted, 0 cached" in idx.manifest.extra["graph"]["report"]
    # a build killed during graph extraction: 30 chunks' extractions were journaled
    journal = idx.graph_dir / CACHE_FILE
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:30]))
    idx.set_stage("graph", "in_progress")
    again = build_index_distributed(corpus, tmp_path / "idx", embedder=emb, config=config, progress=False,
                                    client=client)
    assert f"{n - 30} extracted, 30 cached" in again.manifest.extra["graph"]["report"]
    assert (tmp_path / "idx" / "tree.json").read_text() == tree  # the finished tree stage was kept


def test_the_cli_cluster_option_builds_on_a_running_scheduler(corpus: Path, client: Any, tmp_path: Path) -> None:
    """`branchwise index PATH --out DIR --cluster tcp://HOST:PORT`: the option reaches the build, whose
    tasks run on that scheduler's workers; the cluster is left running and the tree is the in-process one."""
    from distributed import get_task_stream

    from branchwise.cli.index_cmd import index_settings_from_args
    from branchwise.cli.main import build_parser

    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    parse = build_parser().parse_args
    common = ["index", str(corpus), "--out", str(tmp_path / "dist"), "--summaries", "extractive",
              "--max-children", "4", "--graph", "off"]
    assert index_settings_from_args(parse([*common, "--workers", "2"])).index.workers == 2
    settings = index_settings_from_args(parse([*common, "--workers", "2", "--cluster", address]))
    assert settings.index.cluster == address and settings.index.distributed  # --cluster overrides --workers
    emb = HashingEmbedder(dim=64)
    single = build_index(corpus, tmp_path / "single", settings.replace(index={"workers": 0, "cluster": None}),
                         embedder=emb, progress=False)
    with get_task_stream(client) as tasks:
        dist = build_index(corpus, tmp_path / "dist", settings, embedder=emb, progress=False)
    ran = {t["key"].split("-", 1)[0] for t in tasks.data}
    assert {"_embed_task", "_cluster_task", "_summarize_task"} <= ran, ran
    assert (tmp_path / "single" / "tree.json").read_text() == (tmp_path / "dist" / "tree.json").read_text()
    assert dist.chunks.ids() == single.chunks.ids() and len(dist.chunks) >= 60
    assert len(client.scheduler_info()["workers"]) == 2  # a cluster given by address is not shut down


def test_partitioned_clustering_on_workers_equals_the_recursion(client: Any) -> None:
    from branchwise.indexing.cluster import ClusterConfig, balanced_groups, n_groups
    from branchwise.indexing.distributed import DaskEngine

    x = np.random.default_rng(3).normal(size=(900, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    g = n_groups(900, 12, 0.8)
    expected = balanced_groups(x, g, 12, min_size=3, seed=7, config=ClusterConfig())
    for partitions in (2, 5, 40):
        got = DaskEngine(client, partitions=partitions).grouper()(x, g, 12, min_size=3, seed=7, config=ClusterConfig())
        assert [a.tolist() for a in got] == [b.tolist() for b in expected]


def test_eval_maps_questions_over_dask_workers(shared_data: Path, tmp_path: Path) -> None:
    from branchwise.evals.datasets import load_hotpotqa
    from branchwise.evals.runner import EvalConfig, run_eval

    data = load_hotpotqa(shared_data / "hotpotqa" / "dev_distractor_200.jsonl", limit=6)
    emb = HashingEmbedder(dim=64)
    local = run_eval(data, ["bm25", "dense"], EvalConfig(out_dir=tmp_path / "local", progress=False,
                                                          n_resamples=200), embedder=emb)
    dask = run_eval(data, ["bm25", "dense"], EvalConfig(out_dir=tmp_path / "dask", index_dir=tmp_path / "local" / "index",
                                                         dask_workers=2, progress=False, n_resamples=200), embedder=emb)
    key = lambda r: (r["system"], r["qid"])  # noqa: E731
    assert len(dask.records) == 12
    for a, b in zip(sorted(local.records, key=key), sorted(dask.records, key=key)):
        assert a["retrieved"] == b["retrieved"] and a["system"] == b["system"]
    # resumable as before: a rerun finds every record done and adds none
    again = run_eval(data, ["bm25", "dense"], EvalConfig(out_dir=tmp_path / "dask", index_dir=tmp_path / "local" / "index",
                                                          dask_workers=2, progress=False, n_resamples=200), embedder=emb)
    assert len(again.records) == 12


def _summary_reply(messages: Any) -> str:
    """A deterministic 'LLM summary': a function of the prompt only (as greedy decoding is)."""
    import hashlib

    text = messages[-1].content
    return "Summary " + hashlib.sha1(text.encode()).hexdigest()[:12] + ": " + " ".join(text.split()[-12:])


def test_llm_summaries_run_on_the_workers_with_the_same_tree_and_usage(corpus: Path, tmp_path: Path) -> None:
    from branchwise.testing import ScriptedLLM

    s = bw.Settings()
    tree = dataclasses.replace(s.index.tree, max_children=6, summary=dataclasses.replace(s.index.tree.summary, mode="llm"))
    settings = s.replace(index={"tree": tree, "graph": "off"})
    emb = HashingEmbedder(dim=64)
    single = build_index(corpus, tmp_path / "single", settings, embedder=emb, llm=ScriptedLLM(replies=_summary_reply),
                         progress=False)
    dist = build_index(corpus, tmp_path / "dist", settings.replace(index={"workers": 2}), embedder=emb,
                       llm=ScriptedLLM(replies=_summary_reply), progress=False)
    assert (tmp_path / "single" / "tree.json").read_text() == (tmp_path / "dist" / "tree.json").read_text()
    assert "Summary " in (tmp_path / "dist" / "tree.json").read_text()
    calls = single.manifest.extra["tree"]["llm_calls"]
    assert calls > 0 and dist.manifest.extra["tree"]["llm_calls"] == calls  # worker usage is counted
    assert not dist.manifest.stage_done("graph")


def _extraction_reply(messages: Any) -> str:
    """A deterministic 'LLM extraction': the passage's capitalised words as entities, the first two related."""
    import re

    from branchwise.testing import json_reply

    m = re.search(r'<passage title="[^"]*">\n(.*?)\n</passage>', messages[-1].content, re.S)
    names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]{3,}\b", m.group(1) if m else "")))[:3]
    ents = [{"name": n, "type": "other", "description": f"{n} in the passage"} for n in names]
    rels = [{"subject": names[0], "predicate": "related to", "object": names[1]}] if len(names) > 1 else []
    return json_reply({"entities": ents, "relations": rels})


def test_llm_graph_extraction_runs_on_the_workers_with_the_same_graph(corpus: Path, client: Any,
                                                                      tmp_path: Path) -> None:
    """The LLM extractor (the high-quality option) on Dask: one chunk per task, on the workers; the
    resolved graph equals the in-process one and the workers' LLM calls are counted."""
    from distributed import get_task_stream

    from branchwise.testing import ScriptedLLM

    settings = _settings(graph="on", graph_extractor="llm")
    emb = HashingEmbedder(dim=64)
    single = build_index(corpus, tmp_path / "single", settings, embedder=emb,
                         llm=ScriptedLLM(replies=_extraction_reply), progress=False)
    with get_task_stream(client) as tasks:
        dist = build_index(corpus, tmp_path / "dist", settings.replace(index={"cluster": client.scheduler.address}),
                           embedder=emb, llm=ScriptedLLM(replies=_extraction_reply), progress=False)
    extract_tasks = [t for t in tasks.data if t["key"].startswith("_extract_named_task")]
    assert len(extract_tasks) == len(dist.chunks)  # one chunk per task with an LLM extractor
    assert len({t["worker"] for t in extract_tasks}) == 2  # spread over both workers
    assert dist.manifest.extra["graph"]["extractor"] == "llm"
    assert _graph_records(single) == _graph_records(dist) and _graph_records(dist)[1]
    assert f"{len(dist.chunks)} extracted, 0 cached" in dist.manifest.extra["graph"]["report"]
    # the same LLM calls and tokens, counted on the workers
    def no_time(report: str) -> str:
        return report.rsplit(",", 1)[0]  # drop the trailing "N s/chunk"

    assert no_time(dist.manifest.extra["graph"]["report"]) == no_time(single.manifest.extra["graph"]["report"])
    assert f"{len(dist.chunks)} LLM calls" in dist.manifest.extra["graph"]["report"]
    assert (tmp_path / "single" / "tree.json").read_text() == (tmp_path / "dist" / "tree.json").read_text()
