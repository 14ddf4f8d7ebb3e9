"""``branchwise eval --dask-workers N`` / ``--cluster ADDR``: questions mapped over Dask workers.

Each worker process opens the run's index and builds the systems once (from spec strings:
the embedder, the LLM and its call cache ``OUT/cache/llm.sqlite``), then runs batches of
questions and returns the scored records; the client appends each record to
``results.jsonl`` as its batch finishes, so a run stays resumable exactly as a local one.
The cluster is the same kind the distributed index build uses
(:func:`branchwise.indexing.distributed.dask_client`: a LocalCluster on 127.0.0.1 with the
dashboard off, or a running scheduler).

With the index's vectors in the index folder, every worker opens that Chroma store
read-only; for many workers or machines, build the index on a Chroma server
(``--store chroma+http://HOST:PORT``), which serves concurrent readers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

log = logging.getLogger(__name__)

_CONTEXTS: dict[str, Any] = {}  # per worker process: (index, systems) by run key


@dataclass(frozen=True, slots=True)
class WorkerRun:
    """What a worker needs to rebuild the run's systems (picklable)."""

    key: str
    index_dir: str
    embedder_spec: str | None
    llm_spec: str | None
    cache_path: str
    k: int
    rag_k: int
    answer_style: str
    settings: Any
    kind: str
    embedder: Any = None  # shipped when there is no spec (e.g. a test embedder)


def _context(run: WorkerRun) -> tuple[Any, dict[str, Any]]:
    ctx = _CONTEXTS.get(run.key)
    if ctx is None:
        from branchwise.models.factory import make_embedder, make_llm
        from branchwise.retrieval.index import Index
        from branchwise.evals.systems import SystemContext

        emb = run.embedder if run.embedder is not None else make_embedder(run.embedder_spec or "default",
                                                                           memory_cache=False)
        index = Index.open(run.index_dir, embedder=emb)
        llm_factory = (lambda: make_llm(run.llm_spec)) if run.llm_spec else None  # type: ignore[arg-type]
        sctx = SystemContext(index, llm_factory, Path(run.cache_path), k=run.k, rag_k=run.rag_k,
                             answer_style=run.answer_style, settings=run.settings)
        ctx = (index, {"__context__": sctx})
        _CONTEXTS[run.key] = ctx
    return ctx


def run_batch(run: WorkerRun, system_name: str, questions: list[Any]) -> list[dict[str, Any]]:
    """Run ``system_name`` on ``questions`` in this worker; the scored records."""
    from branchwise.evals.scoring import score_output
    from branchwise.evals.systems import build_systems

    index, cache = _context(run)
    system = cache.get(system_name)
    if system is None:
        system = cache[system_name] = build_systems([system_name], cache["__context__"])[0]
    records = []
    for q in questions:
        output = system.run(q.prompt_text())
        record = score_output(q, output, run.kind, lambda c: index.chunks.get(c).doc_id,
                              lambda c: index.chunks.get(c).text)
        records.append({"system": system_name, **record})
    return records


def map_questions(client: Any, run: WorkerRun, system_name: str, questions: Sequence[Any], batch: int,
                  on_record: Callable[[dict[str, Any]], None]) -> int:
    """Run the questions in batches of ``batch`` on the workers; ``on_record`` gets each record
    (on the client) as its batch finishes. Returns the number of records."""
    from distributed import as_completed

    futures = [client.submit(run_batch, run, system_name, list(questions[i : i + batch]), pure=False)
               for i in range(0, len(questions), max(1, batch))]
    n = 0
    for fut in as_completed(futures):
        for record in fut.result():
            on_record(record)
            n += 1
    return n


def batches(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), max(1, size)):
        yield list(items[i : i + size])
