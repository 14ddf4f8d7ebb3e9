"""Load test of the chat app: N concurrent browser-like sessions, loopback only, bounded.

    flock /tmp/bw-heavy.lock .venv/bin/python -m benchmarks.chat_load --sessions 20

The app (``branchwise.ui.app``) is served in this process on 127.0.0.1 (a free port) over
an index of the bundled demo corpus (built here with extractive summaries unless ``--index``
names one), with the embedded 1.5B GGUF model unless ``--llm`` says otherwise. One warm-up
question loads the models; then ``--sessions`` gradio clients, each its own session, ask at
the same moment (a barrier) and every question's end-to-end latency (submit → final answer)
and time to its first streamed update are measured. An error is an exception, a timeout or
a reply without an answer. Reported: errors (target 0), p50 / p95 / max latency, time to
first update, throughput, LLM calls. Nothing leaves the machine (gradio analytics off,
client telemetry off, loopback URL). Not part of CI: on 2 CPU cores the single llama.cpp
context serialises the LLM calls, so latency grows with the queue by design.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.chat_load")

QUESTIONS = [
    "Why are relevance scores calibrated across slates?",
    "What does the navigator expand in every iteration?",
    "How is path relevance computed?",
    "What does extractive compression keep?",
    "How does the agent decide that the evidence pool is sufficient?",
    "How are new documents added to an existing tree?",
    "What does the graph index store?",
    "How do I build an index from the command line?",
    "What is a slate?",
    "Which models does branchwise use by default?",
]


@dataclass
class Outcome:
    """One session's question."""

    session: int
    question: str
    answered: str = ""  # the question the answer says it answers (cross-talk if not ``question``)
    ok: bool = False
    found: bool = False
    latency_s: float = 0.0
    first_update_s: float | None = None
    llm_calls: int = 0
    error: str = ""


@dataclass
class Report:
    sessions: int
    errors: int
    not_found: int
    p50_s: float
    p95_s: float
    max_s: float
    first_update_p50_s: float
    first_update_p95_s: float
    wall_s: float
    throughput_qpm: float
    llm_calls: int
    concurrency: int
    llm: str
    outcomes: list[Outcome] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def answer_json(outputs: Any) -> dict[str, Any]:
    """The answer's JSON among the /ask outputs (the one dict with ``text`` and ``citations``).

    Found by shape, not position: the API omits ``gr.State`` outputs and layout updates,
    so positions shift whenever the app gains a panel.
    """
    for value in outputs if isinstance(outputs, (list, tuple)) else ():
        if isinstance(value, dict) and value.get("__type__") == "update":
            value = value.get("value")
        if isinstance(value, dict) and "text" in value and "citations" in value:
            return value
    return {}


def build_demo_index(out: Path, embedder: Any) -> Path:
    from branchwise.cli.ask_cmd import demo_corpus_dir
    from branchwise.indexing.pipeline import IndexConfig, build_index
    from branchwise.indexing.chunk_stage import IndexBuildConfig
    from branchwise.indexing.tree_build import TreeConfig
    from branchwise.indexing.summarize import SummaryConfig

    if not (out / "manifest.json").is_file():
        config = IndexConfig(chunk=IndexBuildConfig(embedder_spec="default"), graph="off",
                             tree=TreeConfig(max_children=4,
                                             summary=SummaryConfig(mode="extractive", summary_tokens=64)))
        build_index(demo_corpus_dir(), out, embedder=embedder, config=config, progress=False)
    return out


def ask(url: str, i: int, question: str, kwargs: dict[str, Any], barrier: threading.Barrier,
        timeout_s: float) -> Outcome:
    from gradio_client import Client

    out = Outcome(session=i, question=question)
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    try:
        barrier.wait(timeout=timeout_s)
        t0 = time.perf_counter()
        job = client.submit(question, api_name="/ask", **kwargs)
        final = None
        for update in job:  # streamed updates; the first one marks responsiveness
            if out.first_update_s is None:
                out.first_update_s = time.perf_counter() - t0
            final = update
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"no answer after {timeout_s:.0f} s")
        final = job.result(timeout=timeout_s) if final is None else final
        out.latency_s = time.perf_counter() - t0
        raw = answer_json(final)
        out.answered = str(raw.get("question", ""))
        out.ok = bool(raw.get("text"))
        out.found = bool(raw.get("found"))
        out.llm_calls = int((raw.get("usage") or {}).get("llm_calls", 0))
        if not out.ok:
            out.error = "reply without an answer: " + str(final[1][-1])[:200]
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        out.error = f"{type(e).__name__}: {e}"[:300]
    finally:
        client.close()
    return out


def run(args: argparse.Namespace, *, llm: Any = None, questions: list[str] | None = None,
        embedder: Any = None) -> Report:
    """Serve the app and ask ``args.sessions`` questions at once. ``llm`` / ``embedder`` (objects)
    replace the ones ``args`` names (the test suite passes a scripted LLM); ``questions``
    replaces :data:`QUESTIONS` (one per session, cycled)."""
    from branchwise.offline import apply_offline_defaults

    apply_offline_defaults()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bw-chat-load-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(work / "gradio-cache"))

    from branchwise.models.factory import make_embedder, make_llm
    from branchwise.ui.app import launch_app, make_app
    from branchwise.ui.sessions import ModelPool
    from branchwise.ui.settings import ChatSettings, ServerConfig

    embedder = embedder or make_embedder("default")
    index = Path(args.index) if args.index else build_demo_index(work / "demo-index", embedder)
    llm = llm or make_llm(args.llm)
    questions = questions or QUESTIONS
    config = ServerConfig(workdir=work, chat_concurrency=args.concurrency, queue_size=max(64, 2 * args.sessions))
    pool = ModelPool(llms={args.llm: llm}, embedders={"default": embedder}, allow_custom=False)
    app = make_app(index, workdir=work, pool=pool, config=config, defaults=ChatSettings(llm=args.llm))
    url = launch_app(app, config)
    assert url.startswith("http://127.0.0.1:"), url
    kwargs = {"rounds": args.rounds, "budget_tokens": args.budget, "iterations": args.iterations}
    try:
        log.info("warm-up question on %s", url)
        warm = ask(url, -1, questions[0], kwargs, threading.Barrier(1), args.timeout)
        log.info("warm-up: %.1f s (%s)", warm.latency_s, warm.error or "ok")
        barrier = threading.Barrier(args.sessions)
        outcomes: list[Outcome] = [Outcome(session=i, question="") for i in range(args.sessions)]

        def worker(i: int) -> None:
            outcomes[i] = ask(url, i, questions[i % len(questions)], kwargs, barrier, args.timeout)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.sessions)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.timeout + 60)
        wall = time.perf_counter() - t0
    finally:
        app.close()
    lat = [o.latency_s for o in outcomes if o.ok]
    first = [o.first_update_s for o in outcomes if o.first_update_s is not None]
    return Report(
        sessions=args.sessions, errors=sum(not o.ok for o in outcomes),
        not_found=sum(o.ok and not o.found for o in outcomes),
        p50_s=percentile(lat, 50), p95_s=percentile(lat, 95), max_s=max(lat, default=float("nan")),
        first_update_p50_s=percentile(first, 50), first_update_p95_s=percentile(first, 95), wall_s=wall,
        throughput_qpm=60 * len(lat) / wall if wall else 0.0, llm_calls=sum(o.llm_calls for o in outcomes),
        concurrency=args.concurrency, llm=args.llm, outcomes=outcomes,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="concurrent sessions (default: 20)")
    p.add_argument("--concurrency", type=int, default=4, help="questions the app answers at once (default: 4)")
    p.add_argument("--llm", default="default", help="LLM spec (default: the embedded 1.5B GGUF)")
    p.add_argument("--index", default=None, help="index directory (default: build the demo corpus index)")
    p.add_argument("--workdir", default=None, help="work directory (default: a temporary one)")
    p.add_argument("--rounds", type=int, default=1, help="agent rounds per question (default: 1)")
    p.add_argument("--budget", type=int, default=512, help="context token budget (default: 512)")
    p.add_argument("--iterations", type=int, default=6, help="navigator iterations (default: 6)")
    p.add_argument("--timeout", type=float, default=900, help="seconds before a question counts as failed")
    p.add_argument("--out", default=None, help="write the report as JSON here")
    return p


def main() -> None:
    args = parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "branchwise.agents", "branchwise.generation"):  # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    report = run(args)
    print(f"\nchat load: {report.sessions} concurrent sessions, app concurrency {report.concurrency}, LLM {report.llm}")
    print(f"errors: {report.errors} (target 0); answered 'not found': {report.not_found}")
    print(f"latency  p50 {report.p50_s:.1f} s   p95 {report.p95_s:.1f} s   max {report.max_s:.1f} s")
    print(f"first streamed update  p50 {report.first_update_p50_s:.2f} s   p95 {report.first_update_p95_s:.2f} s")
    print(f"wall {report.wall_s:.1f} s, throughput {report.throughput_qpm:.1f} questions/min, "
          f"LLM calls {report.llm_calls} (mean {statistics.fmean([o.llm_calls for o in report.outcomes]):.1f})")
    crossed = [o for o in report.outcomes if o.ok and o.answered != o.question]
    print(f"answers to another session's question (cross-talk): {len(crossed)} (target 0)")
    for o in report.outcomes:
        if o.error:
            print(f"  session {o.session}: {o.error}")
    if args.out:
        Path(args.out).write_text(json.dumps(asdict(report), indent=1))


if __name__ == "__main__":
    main()
