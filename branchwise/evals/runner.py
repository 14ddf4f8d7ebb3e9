"""The evaluation runner: systems × questions → per-question JSONL → summary, tests, plots.

    result = run_eval(dataset, ["bm25", "dense", "naive_rag"], EvalConfig(out_dir=Path("runs/hp"), limit=50),
                      embedder=embedder, llm_factory=lambda: make_llm("default"))

* **Resumable**: each finished (system, question) is appended to ``results.jsonl`` at once
  (flushed and fsynced); a rerun skips the pairs already there, so a killed run continues
  where it stopped and never duplicates a record. A half-written last line (the process died
  mid-write) is cut off on load.
* **Cached**: LLM calls go through :class:`~branchwise.models.cache.CachedLLM` backed by
  ``cache/llm.sqlite`` in the run folder, so a rerun (or a second system making the same
  call) costs nothing.
* **Parallel where the backend allows**: questions run in a thread pool of
  :attr:`EvalConfig.workers` for HTTP backends (``openai:`` specs), serially otherwise — one
  llama.cpp model on a CPU gains nothing from threads and would only contend for cores.
* **On Dask** with :attr:`EvalConfig.dask_workers` / :attr:`EvalConfig.cluster`: questions are
  mapped over worker processes (:mod:`branchwise.evals.dask_map`), each with its own models.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.evals.datasets.types import EvalDataset, EvalQuestion
from branchwise.evals.report import write_report
from branchwise.evals.scoring import score_output
from branchwise.evals.systems import System, SystemContext, available_systems, build_systems
from branchwise.evals.workspace import prepare_index
from branchwise.models.base import LLM, Embedder
from branchwise.types import Usage
from branchwise.files import atomic_write_json, safe_name

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """One evaluation run.

    Attributes:
        out_dir: run folder (results, report, plots, cache; the index unless ``index_dir``).
        limit: evaluate the first ``limit`` questions (None: all).
        k: chunks each system returns for the retrieval metrics.
        rag_k: chunks naive RAG puts into the generator's context.
        answer_style: how every QA system writes its answer: ``"short"`` (the answer span
            and its citation; what EM/F1 against short gold answers, as in HotpotQA, measure)
            or ``"sentence"`` (one cited sentence, the interactive default).
        workers: threads for HTTP LLM backends (local backends always run serially).
        index_dir: build/reuse the index here instead of ``out_dir/index`` (to share one
            index between runs).
        llm_spec: recorded in the run metadata; ``openai:`` specs enable ``workers``.
        embedder_spec: recorded in the index manifest and the run metadata.
        tree_summaries: how the tree is summarised when a system needs one and the index
            has none: ``"llm"`` (RAPTOR/LATTICE-style, one call per internal node) or
            ``"extractive"`` (no LLM).
        reference: system the others are compared against in the paired tests (None: the
            first of naive_rag / bm25 present, else the first system).
        seed: seed of the bootstrap resampling.
        n_resamples: bootstrap resamples.
        progress: show tqdm bars.
        dask_workers: map questions over a Dask LocalCluster of this many worker processes
            (:mod:`branchwise.evals.dask_map`; 0: in this process). Not the same as
            ``workers``, which are threads for HTTP backends.
        cluster: address of a running Dask scheduler to map questions over (overrides
            ``dask_workers``).
        dask_batch: questions per Dask task.
        block: run every system on this many questions before the next block (a stopped run
            then holds paired results); 0: each system runs all questions in turn.
        report_only: run nothing; write the report from the results so far, on the questions
            every listed system has answered (a paired report of a stopped run).
        settings: the :class:`branchwise.Settings` the branchwise systems (navigator, agent
            and its variants) are assembled from; None: from the environment.
    """

    out_dir: Path
    limit: int | None = None
    k: int = 10
    rag_k: int = 5
    answer_style: str = "short"
    workers: int = 4
    index_dir: Path | None = None
    llm_spec: str | None = None
    embedder_spec: str | None = None
    tree_summaries: str = "llm"
    reference: str | None = None
    seed: int = 0
    n_resamples: int = 10_000
    progress: bool = True
    dask_workers: int = 0
    cluster: str | None = None
    dask_batch: int = 4
    block: int = 0
    report_only: bool = False
    settings: Any = None

    def __post_init__(self) -> None:
        if self.block < 0:
            raise InputError(f"block={self.block} must be >= 0.", fix="e.g. --block 10 (0: each system runs all questions in turn).")
        if self.dask_workers < 0 or self.dask_batch < 1:
            raise InputError("dask_workers must be >= 0 and dask_batch >= 1.", fix="e.g. dask_workers=2.")
        if self.k < 1 or self.rag_k < 1 or self.workers < 1:
            raise InputError("EvalConfig needs k, rag_k and workers >= 1.", fix="e.g. k=10, rag_k=5, workers=4.")
        if self.tree_summaries not in ("llm", "extractive"):
            raise InputError(f"unknown tree_summaries {self.tree_summaries!r}.", fix="use 'llm' or 'extractive'.")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit={self.limit} must be >= 1.", fix="pass a positive --limit or none.")

    @property
    def parallel(self) -> bool:
        return self.workers > 1 and bool(self.llm_spec and self.llm_spec.startswith("openai:"))


@dataclass(slots=True)
class RunResult:
    """Where a run's outputs are, and the records it holds."""

    out_dir: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any]


class ResultsFile:
    """Append-only per-question JSONL with resume support (thread-safe appends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> list[dict[str, Any]]:
        """All complete records; a torn last line is cut off (the run died mid-write)."""
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            log.warning("%s ends with a partial record; discarding %d bytes", self.path, len(raw) - cut)
            with self.path.open("r+b") as f:
                f.truncate(cut)
            raw = raw[:cut]
        records = []
        for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(f"{self.path}:{lineno} is not valid JSON.",
                                     fix="delete that line (or the file) and rerun.") from e
        return records

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def _needs(names: Iterable[str]) -> tuple[bool, bool]:
    specs = available_systems()
    chosen = [specs[n] for n in names if n in specs]
    return any(s.needs_llm for s in chosen), any(s.needs_tree for s in chosen)


def _reference(names: list[str], config: EvalConfig) -> str:
    if config.reference:
        if config.reference not in names:
            raise InputError(f"reference system {config.reference!r} is not among the systems run.",
                             fix=f"choose one of: {', '.join(names)}.")
        return config.reference
    return next((n for n in ("naive_rag", "bm25") if n in names), names[0])


def _run_questions(systems: list[System], data: EvalDataset, index: Any, results: ResultsFile, config: EvalConfig,
                   settings: Any, embedder: Embedder, out: Path) -> None:
    """Answer the questions each system has not answered yet (resumable), in blocks, here or on Dask."""
    index.embedder.embed_query("warm-up")  # model start-up must not count as the first query's latency
    done = {(r["system"], r["qid"]) for r in results.load()}
    if config.dask_workers or config.cluster:
        _run_on_dask(systems, data, index, results, done, config, settings,
                     None if config.embedder_spec else getattr(embedder, "inner", embedder))
        return
    size = config.block or len(data.questions) or 1
    for start in range(0, len(data.questions), size):  # blocks: a stopped run has every system on the same questions
        block = data.questions[start : start + size]
        for system in systems:
            todo = [q for q in block if (system.name, q.id) not in done]
            if todo:
                parallel = config.parallel and available_systems()[system.name].needs_llm
                _run_system(system, todo, data.kind, index, results, config.workers if parallel else 1,
                            config.progress, out / "traces")


def run_eval(
    dataset: EvalDataset,
    system_names: list[str],
    config: EvalConfig,
    *,
    embedder: Embedder,
    llm_factory: Callable[[], LLM] | None = None,
) -> RunResult:
    """Evaluate ``system_names`` on ``dataset``; resumable; writes results and the report."""
    if not system_names:
        raise InputError("no systems to evaluate.", fix="pass --systems a,b,c (see --list-systems).")
    if len(set(system_names)) != len(system_names):
        raise InputError("a system is listed twice.", fix="list each system once.")
    data = dataset.head(config.limit)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    needs_llm, needs_tree = _needs(system_names)
    index = prepare_index(data, config.index_dir or out / "index", embedder,
                          embedder_spec=config.embedder_spec, llm_spec=config.llm_spec, progress=config.progress)
    settings = _settings(config)
    tree_usage = _ensure_tree(index, settings, llm_factory, config) if needs_tree else None
    ctx = SystemContext(index, llm_factory, out / "cache" / "llm.sqlite", k=config.k, rag_k=config.rag_k,
                        answer_style=config.answer_style, settings=settings)
    systems = build_systems(system_names, ctx)
    meta = _run_meta(out, data, index, system_names, config, needs_llm, tree_usage)
    atomic_write_json(out / "run.json", meta)

    results = ResultsFile(out / RESULTS_FILE)
    if not config.report_only:  # --report-only runs nothing, in process or on Dask
        _run_questions(systems, data, index, results, config, settings, embedder, out)

    qids = {q.id for q in data.questions}
    records = [r for r in results.load() if r["system"] in system_names and r["qid"] in qids]
    if config.report_only:  # only the questions every system answered: the comparison stays paired
        answered = [{r["qid"] for r in records if r["system"] == name} for name in system_names]
        common = set.intersection(*answered) if answered else set()
        records = [r for r in records if r["qid"] in common]
        meta = {**meta, "report_only": True, "questions_answered_by_all": len(common)}
        log.info("report on the %d of %d questions every system answered", len(common), len(qids))
    summary = write_report(out, records, meta, reference=_reference(system_names, config),
                           seed=config.seed, n_resamples=config.n_resamples)
    return RunResult(out, records, summary)


def _settings(config: EvalConfig) -> Any:
    """The run's settings: ``config.settings`` (or the environment's) with the run's tree summaries."""
    import dataclasses

    from branchwise.assembly.settings import Settings

    settings = config.settings or Settings.from_env()
    tree = settings.index.tree
    tree = dataclasses.replace(tree, summary=dataclasses.replace(tree.summary, mode=config.tree_summaries))
    return settings.replace(index={"tree": tree})


def _ensure_tree(index: Any, settings: Any, llm_factory: Callable[[], LLM] | None, config: EvalConfig) -> Usage | None:
    """The tree stage as ``branchwise index`` builds it (LLM calls cached in the index)."""
    from branchwise.assembly.root import ensure_tree
    from branchwise.models.cache import CachedLLM

    if index.tree is not None:
        return None
    llm = None
    if config.tree_summaries == "llm":
        if llm_factory is None:
            raise InputError("building the semantic tree needs an LLM for the summaries.",
                             fix="pass --llm SPEC, or use --tree-summaries extractive, or build it with `branchwise index`.")
        llm = CachedLLM(llm_factory(), index.cache_dir / "llm.sqlite")
    return ensure_tree(index, settings, llm=llm, progress=config.progress)  # type: ignore[no-any-return]


def _run_on_dask(systems: list[System], data: EvalDataset, index: Any, results: ResultsFile, done: set[Any],
                 config: EvalConfig, settings: Any, embedder: Any = None) -> None:
    """Map every system's remaining questions over Dask workers (:mod:`branchwise.evals.dask_map`)."""
    import uuid

    from branchwise.evals.dask_map import WorkerRun, map_questions
    from branchwise.indexing.distributed import dask_client

    out = Path(config.out_dir)
    run = WorkerRun(uuid.uuid4().hex, str(Path(index.path).resolve()), config.embedder_spec, config.llm_spec,
                    str((out / "cache" / "llm.sqlite").resolve()), config.k, config.rag_k, config.answer_style,
                    settings, data.kind, embedder)
    with dask_client(config.dask_workers, config.cluster) as client:
        for system in systems:
            todo = [q for q in data.questions if (system.name, q.id) not in done]
            if not todo:
                continue
            with tqdm(total=len(todo), desc=f"{system.name} (dask)", unit="q", disable=not config.progress) as bar:
                def record(r: dict[str, Any]) -> None:
                    results.append(r)
                    bar.update(1)

                map_questions(client, run, system.name, todo, config.dask_batch, record)


def _run_system(
    system: System, questions: list[EvalQuestion], kind: str, index: Any, results: ResultsFile, workers: int,
    progress: bool, traces: Path | None = None,
) -> None:
    """Run one system on ``questions``, appending each scored record as soon as it is done; an
    answer's trace goes to ``traces/<system>/<qid>.json`` (for the per-question analysis)."""

    def one(q: EvalQuestion) -> None:
        output = system.run(q.prompt_text())
        record = score_output(q, output, kind, lambda c: index.chunks.get(c).doc_id, lambda c: index.chunks.get(c).text)
        trace = getattr(output.answer, "trace", None) if output.answer is not None else None
        if traces is not None and trace is not None and hasattr(trace, "save"):
            trace.save(traces / safe_name(system.name) / f"{safe_name(q.id)}.json")
        results.append({"system": system.name, **record})

    with tqdm(total=len(questions), desc=system.name, unit="q", disable=not progress) as bar:
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                for fut in [pool.submit(one, q) for q in questions]:
                    fut.result()
                    bar.update(1)
        else:
            for q in questions:
                one(q)
                bar.update(1)


def _run_meta(
    out: Path, data: EvalDataset, index: Any, names: list[str], config: EvalConfig, uses_llm: bool,
    tree_usage: Usage | None,
) -> dict[str, Any]:
    """``run.json``: what was run on what; keeps the tree's build cost from the run that built it."""
    meta: dict[str, Any] = {
        "dataset": data.name, "kind": data.kind, "questions": len(data.questions), "documents": len(data.corpus),
        "chunks": len(index.chunks), "systems": names, "uses_llm": uses_llm,
        "config": {f.name: str(v) if isinstance(v, Path) else v for f in fields(config)
                   if f.name != "settings" and not callable(v := getattr(config, f.name))},
        "settings": _settings(config).to_dict(),
        "tree": index.tree.stats() if index.tree is not None else None,
    }
    old = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    if tree_usage is not None:
        meta["tree_build"] = asdict(tree_usage)
    elif index.tree is not None and old.get("tree_build"):
        meta["tree_build"] = old["tree_build"]
    return meta
