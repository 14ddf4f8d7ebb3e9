"""Many query processes on one real Chroma server (loopback) at once: every process opens the
same index and gets exactly the results a single client gets, with no errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index
from branchwise.retrieval.search import dense_search, hybrid_search
from branchwise.testing import HashingEmbedder

PROCESSES = 6
QUERIES = ["drummer of the band Toto", "film directed by Tim Burton", "American rock band formed in 1977",
           "where was the author born", "science fiction novel", "a river in Europe", "the national football team",
           "a city in California"]

CLIENT = """
import json, sys
from branchwise.retrieval.index import Index
from branchwise.retrieval.search import dense_search, hybrid_search
from branchwise.testing import HashingEmbedder
idx = Index.open(sys.argv[1], embedder=HashingEmbedder(dim=64))
queries = json.loads(sys.argv[2])
out = []
for _ in range(int(sys.argv[3])):
    for q in queries:
        out.append([h.chunk_id for h in dense_search(idx)(q, 5)] + ["|"] + [h.chunk_id for h in hybrid_search(idx)(q, 5)])
print(json.dumps(out))
"""


def test_many_processes_query_one_chroma_server_at_once(shared_data: Path, chroma_server: str, tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    with corpus.open("w") as out, (shared_data / "hotpotqa" / "dev_distractor_200.jsonl").open() as f:
        for i, line in enumerate(f):
            if i == 20:
                break
            for j, (title, sents) in enumerate(json.loads(line)["context"]):
                out.write(json.dumps({"id": f"q{i}-{j}", "title": title, "text": "".join(sents)}) + "\n")
    idx = build_chunk_index(corpus, tmp_path / "idx", HashingEmbedder(dim=64), IndexBuildConfig(store=chroma_server),
                            progress=False)
    assert len(idx.chunks) >= 150
    expected = [[h.chunk_id for h in dense_search(idx)(q, 5)] + ["|"] + [h.chunk_id for h in hybrid_search(idx)(q, 5)]
                for q in QUERIES]
    rounds = 5
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "ORT_DISABLE_TELEMETRY": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, str(tmp_path / "idx"), json.dumps(QUERIES), str(rounds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(PROCESSES)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        assert json.loads(out) == expected * rounds  # 40 dense + 40 hybrid queries per process, all exact
