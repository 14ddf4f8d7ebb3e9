"""Index builds on Dask distributed: ``branchwise index ... --workers N`` or ``--cluster tcp://host:8786``.

The build is the single-process one (:func:`branchwise.indexing.pipeline.build_index`) with
its four expensive steps handed to a Dask cluster — no second pipeline:

=====================  ======================================================================
step                   what runs on the workers
=====================  ======================================================================
embedding              every ``embed`` call of the build (chunks, node summaries, entity
                       profiles) is cut into pieces of ``embed_piece`` texts, one task each
leaf clustering        the bottom-up levels' balanced k-means: the first splits run here
                       until there are ``partitions`` independent pieces
                       (:func:`~branchwise.indexing.cluster.frontier_pieces`), each piece is
                       clustered to the end on a worker
summarisation          all summary batches of a tree level are submitted at once
graph extraction       chunks go out in pieces of ``extract_piece`` (spaCy) or one chunk
                       per task (LLM); results come back as they finish
=====================  ======================================================================

**The same tree.** Balanced k-means seeds every split from its path in the recursion, so
a piece clustered on a worker gives the groups the single-process recursion gives there;
the client sorts the groups back into the single-process order and names the nodes the
same way. Summaries are pure functions of their request (extractive; greedy LLM
decoding), and everything is written by the client in one place. So a distributed build
writes the same ``tree.json`` — node ids, children, summaries — as a single-process build
with the same seed (``tests/indexing/test_distributed_build.py`` checks it against a real
LocalCluster). The one documented tolerance: embeddings computed in smaller pieces by
another process can differ from the single-process ones in float rounding (BLAS kernels
depend on the batch shape and thread count; measured differences are ~1e-7), which could
only flip an exact tie in the clustering; ``benchmarks/scale_out.py`` compares the two
builds' trees on HotpotQA and reports whether they are identical.

**Resumable per partition.** Results are persisted by the client as each task finishes:
chunk vectors per embedding batch (Chroma), summaries per batch and groups per level
(``tree.build/``), extractions per chunk (``graph/extractions.jsonl``). A killed build
rerun with the same command skips everything already persisted, in or out of Dask.

**Models on workers.** Workers rebuild models from their spec strings (``ModelSpecs``,
filled in by the composition root from :class:`~branchwise.Settings`), once per worker
process. Objects given without a spec (test doubles, an extractive summarizer's IDF) are
shipped once with ``client.scatter``.

**Network.** A ``--workers N`` LocalCluster listens on 127.0.0.1 only, with the dashboard
off (``LocalCluster(n_workers=N, threads_per_worker=1, host="127.0.0.1",
dashboard_address=None, processes=True)``; the scheduler keeps its small health/metrics HTTP
endpoint, bound to 127.0.0.1 like the rest — the tests check every socket). Ray is not
used: its dashboard probes cloud-metadata addresses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from branchwise.errors import InputError, MissingDependencyError
from branchwise.types import Chunk, Usage

if TYPE_CHECKING:
    from branchwise.indexing.pipeline import IndexConfig
    from branchwise.models.base import LLM, Embedder
    from branchwise.retrieval.index import Index

log = logging.getLogger(__name__)


# -- the cluster ----------------------------------------------------------------------------
def _distributed() -> Any:
    try:
        import distributed
    except ImportError as e:  # pragma: no cover - the scale extra is part of the test install
        raise MissingDependencyError("distributed", "scale", "a distributed build (--workers / --cluster)") from e
    return distributed


def local_cluster(n_workers: int, **kwargs: Any) -> Any:
    """A LocalCluster of ``n_workers`` single-threaded worker processes on 127.0.0.1, dashboard off."""
    distributed = _distributed()
    opts = dict(n_workers=n_workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                processes=True, silence_logs=logging.WARNING)
    opts.update(kwargs)
    return distributed.LocalCluster(**opts)


@contextlib.contextmanager
def dask_client(workers: int = 0, cluster: str | None = None) -> Iterator[Any]:
    """A Dask client: to the scheduler at ``cluster`` (``tcp://host:8786``), else to a new
    LocalCluster of ``workers`` processes, closed on exit."""
    distributed = _distributed()
    if cluster:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise InputError("a distributed build needs workers >= 1 or a cluster address.",
                         fix="pass --workers N (a LocalCluster) or --cluster tcp://host:8786.")
    t0 = time.perf_counter()
    with local_cluster(workers) as lc, distributed.Client(lc) as client:
        log.info("Dask LocalCluster of %d workers up in %.1f s", workers, time.perf_counter() - t0)
        yield client


# -- models on workers ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModelSpecs:
    """How workers rebuild the build's models: spec strings (credentials included, never
    logged) and the LLM call cache folder."""

    embedder: str | None = None
    llm: str | None = None
    llm_cache_dir: str | None = None


_STATE: dict[str, Any] = {}  # per worker process: models and summarizers by key


def _resolve(key: str, recipe: Any) -> Any:
    """The object ``key`` in this process: built once from ``recipe`` (a ``_Spec``) or the
    object itself (already deserialised from a scattered future)."""
    obj = _STATE.get(key)
    if obj is None:
        obj = recipe.build() if isinstance(recipe, _Spec) else recipe
        _STATE[key] = obj
    return obj


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: str  # "embedder" | "llm"
    spec: str
    cache_dir: str | None = None

    def build(self) -> Any:
        from branchwise.models.factory import make_embedder, make_llm

        if self.kind == "embedder":
            return make_embedder(self.spec)
        return make_llm(self.spec, cache_dir=Path(self.cache_dir) if self.cache_dir else None)


def _embed_task(key: str, recipe: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(_resolve(key, recipe).embed(texts), dtype=np.float32)


def _summarize_task(key: str, recipe: Any, requests: list[Any]) -> tuple[list[str], Usage]:
    summarizer = _resolve(key, recipe)
    before = Usage(**{k: getattr(summarizer.usage, k) for k in ("llm_calls", "prompt_tokens", "completion_tokens")})
    texts = summarizer.summarize_batch(requests)
    after = summarizer.usage
    return texts, Usage(llm_calls=after.llm_calls - before.llm_calls,
                        prompt_tokens=after.prompt_tokens - before.prompt_tokens,
                        completion_tokens=after.completion_tokens - before.completion_tokens)


def _make_summarizer(config: Any, llm_key: str, llm_recipe: Any) -> Any:
    from branchwise.indexing.summarize import LLMSummarizer

    return LLMSummarizer(_resolve(llm_key, llm_recipe), config)


def _llm_summarizer_task(key: str, config: Any, llm_key: str, llm_recipe: Any, requests: list[Any]
                         ) -> tuple[list[str], Usage]:
    if key not in _STATE:
        _STATE[key] = _make_summarizer(config, llm_key, llm_recipe)
    return _summarize_task(key, None, requests)


def _cluster_task(x: np.ndarray, pieces: list[Any], max_size: int, min_size: int, fanout: int, seed: int,
                  config: Any) -> list[Any]:
    from branchwise.indexing.cluster import solve_pieces

    return solve_pieces(x, pieces, max_size, min_size, fanout, seed, config)


def _extract_task(key: str, recipe: Any, chunks: list[Chunk]) -> list[Any]:
    return [res for _, res in _resolve(key, recipe).extract_many(chunks)]


def _make_extractor(name: str, config: Any, llm_key: str | None, llm_recipe: Any) -> Any:
    from branchwise.graph.registry import make_extractor

    llm = _resolve(llm_key, llm_recipe) if llm_key is not None else None
    return make_extractor(name, llm=llm, config=config)


def _extract_named_task(key: str, name: str, config: Any, llm_key: str | None, llm_recipe: Any,
                        chunks: list[Chunk]) -> list[Any]:
    if key not in _STATE:
        _STATE[key] = _make_extractor(name, config, llm_key, llm_recipe)
    return _extract_task(key, None, chunks)


# -- the engine -------------------------------------------------------------------------------
class DaskEngine:
    """Hands the build's expensive steps to a Dask client (see the module docstring).

    Args:
        client: a ``distributed.Client``.
        specs: spec strings workers rebuild models from (None: objects are shipped).
        partitions: independent clustering pieces per bottom-up level (0: 2 × workers).
        embed_piece: texts per embedding task.
        extract_piece: chunks per spaCy extraction task (LLM extraction: one per task).
    """

    def __init__(self, client: Any, specs: ModelSpecs | None = None, *, partitions: int = 0,
                 embed_piece: int = 32, extract_piece: int = 64) -> None:
        self.client = client
        self.specs = specs or ModelSpecs()
        self.n_workers = max(1, len(client.scheduler_info().get("workers", {})) or 1)
        self.partitions = partitions or 2 * self.n_workers
        self.embed_piece = max(1, embed_piece)
        self.extract_piece = max(1, extract_piece)
        self._run = uuid.uuid4().hex[:8]  # keys of this build's worker-side state

    def _recipe(self, kind: str, obj: Any, spec: str | None) -> tuple[str, Any]:
        """(key, recipe) for a model: its spec when known, else the object, scattered once."""
        if spec:
            return f"{kind}:{spec}:{self.specs.llm_cache_dir if kind == 'llm' else ''}", \
                _Spec(kind, spec, self.specs.llm_cache_dir if kind == "llm" else None)
        if obj is None:
            raise InputError(f"the distributed build needs the {kind} on its workers.",
                             fix=f"build through the composition root (bw.build_index / branchwise index), "
                                 f"which passes the {kind} spec.")
        return f"{kind}:obj:{self._run}:{id(obj)}", self.client.scatter(obj, broadcast=True, hash=False)

    # embedding
    def embedder(self, inner: "Embedder") -> "DaskEmbedder":
        key, recipe = self._recipe("embedder", getattr(inner, "inner", inner), self.specs.embedder)
        return DaskEmbedder(inner, self, key, recipe)

    # summaries
    def summarizer(self, inner: Any) -> "DaskSummarizer":
        from branchwise.indexing.summarize import LLMSummarizer

        if isinstance(inner, LLMSummarizer):
            llm_key, llm_recipe = self._recipe("llm", getattr(inner.llm, "inner", inner.llm), self.specs.llm)
            key = f"summarizer:{self._run}:{inner.name}"
            submit = lambda reqs: self.client.submit(  # noqa: E731
                _llm_summarizer_task, key, inner.config, llm_key, llm_recipe, reqs, pure=False)
        else:
            key = f"summarizer:{self._run}:{inner.name}"
            recipe = self.client.scatter(inner, broadcast=True, hash=False)
            submit = lambda reqs: self.client.submit(_summarize_task, key, recipe, reqs, pure=False)  # noqa: E731
        return DaskSummarizer(inner, submit, self)

    # clustering
    def grouper(self) -> Callable[..., list[np.ndarray]]:
        return DaskGrouper(self)

    # graph extraction
    def extractor(self, name: str, *, llm: "LLM | None" = None, config: Any = None) -> "DaskExtractor":
        from branchwise.graph.registry import extractor_needs_llm, make_extractor

        local = make_extractor(name, llm=llm, config=config)  # for the fingerprint, and the client's name
        llm_key, llm_recipe = (self._recipe("llm", getattr(llm, "inner", llm), self.specs.llm)
                               if extractor_needs_llm(name) else (None, None))
        key = f"extractor:{self._run}:{name}"
        piece = 1 if llm_key is not None else self.extract_piece
        submit = lambda chunks: self.client.submit(  # noqa: E731
            _extract_named_task, key, name, config, llm_key, llm_recipe, chunks, pure=False)
        return DaskExtractor(local, submit, piece, self)

    def as_completed(self, futures: Sequence[Any]) -> Iterator[Any]:
        return _distributed().as_completed(futures)


class DaskEmbedder:
    """An :class:`~branchwise.models.base.Embedder` whose ``embed`` runs in pieces on the workers."""

    def __init__(self, inner: "Embedder", engine: DaskEngine, key: str, recipe: Any) -> None:
        self.inner, self.engine, self.key, self.recipe = inner, engine, key, recipe
        self.name, self.dim = inner.name, inner.dim
        self.spec = getattr(inner, "spec", None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self.engine.embed_piece
        futures = [self.engine.client.submit(_embed_task, self.key, self.recipe, texts[i : i + step], pure=False)
                   for i in range(0, len(texts), step)]
        return np.concatenate(self.engine.client.gather(futures)).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


class DaskSummarizer:
    """A :class:`~branchwise.indexing.summarize.Summarizer` with ``map_batches``: every batch
    of a level at once on the workers, yielded as ``(batch number, texts)`` as they finish."""

    def __init__(self, inner: Any, submit: Callable[[list[Any]], Any], engine: DaskEngine) -> None:
        self.inner, self._submit, self.engine = inner, submit, engine
        self.name = inner.name
        self.usage = inner.usage

    def _add(self, usage: Usage) -> None:
        self.usage.llm_calls += usage.llm_calls
        self.usage.prompt_tokens += usage.prompt_tokens
        self.usage.completion_tokens += usage.completion_tokens

    def summarize_batch(self, requests: Sequence[Any]) -> list[str]:
        texts, usage = self._submit(list(requests)).result()
        self._add(usage)
        return list(texts)

    def map_batches(self, batches: Sequence[Sequence[Any]]) -> Iterator[tuple[int, list[str]]]:
        futures = {self._submit(list(b)): i for i, b in enumerate(batches)}
        for fut in self.engine.as_completed(list(futures)):
            texts, usage = fut.result()
            self._add(usage)
            yield futures[fut], list(texts)


class DaskGrouper:
    """``balanced_groups`` with the recursion's pieces clustered on the workers (same result)."""

    def __init__(self, engine: DaskEngine) -> None:
        self.engine = engine

    def __call__(self, x: np.ndarray, groups: int, max_size: int, *, min_size: int = 1, seed: int, config: Any,
                 progress: bool = False) -> list[np.ndarray]:
        from branchwise.indexing.cluster import frontier_pieces, ordered_groups

        done, pieces, min_size, fanout = frontier_pieces(x, groups, max_size, min_size=min_size, seed=seed,
                                                         config=config, min_pieces=self.engine.partitions)
        futures = []
        for idx, g, path in pieces:  # each piece ships its own rows, re-indexed from 0
            futures.append(self.engine.client.submit(_cluster_task, x[idx], [(np.arange(idx.size), g, path)],
                                                     max_size, min_size, fanout, seed, config, pure=False))
        keyed = list(done)
        for (idx, _, _), local in zip(pieces, self.engine.client.gather(futures)):
            keyed.extend((key, idx[rows]) for key, rows in local)
        log.info("clustered %d points into %d groups: %d pieces on the workers", x.shape[0], groups, len(pieces))
        return ordered_groups(keyed)


class DaskExtractor:
    """A graph ``Extractor`` mapping chunk pieces over the workers (results as they finish)."""

    def __init__(self, local: Any, submit: Callable[[list[Chunk]], Any], piece: int, engine: DaskEngine) -> None:
        self.local, self._submit, self.piece, self.engine = local, submit, piece, engine
        self.name = getattr(local, "name", type(local).__name__)
        self.llm = getattr(local, "llm", None)

    @property
    def fingerprint(self) -> str:
        return str(self.local.fingerprint)

    def extract_many(self, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, Any]]:
        chunks = list(chunks)
        futures = {self._submit(chunks[i : i + self.piece]): i for i in range(0, len(chunks), self.piece)}
        for fut in self.engine.as_completed(list(futures)):
            start = futures[fut]
            for ch, res in zip(chunks[start : start + self.piece], fut.result()):
                yield ch, res


# -- the build --------------------------------------------------------------------------------
def build_index_distributed(
    source: str | Path,
    out: str | Path,
    *,
    embedder: "Embedder",
    llm: "LLM | None" = None,
    config: "IndexConfig",
    progress: bool = True,
    specs: ModelSpecs | None = None,
    client: Any = None,
) -> "Index":
    """:func:`branchwise.indexing.pipeline.build_index` with its steps on Dask (module docstring).

    Args:
        client: a connected ``distributed.Client`` to use (else one is made from
            ``config.workers`` / ``config.cluster`` and closed at the end).
        specs: model specs for the workers (the composition root passes them).
    """
    from branchwise.indexing.chunk_stage import build_chunk_index
    from branchwise.indexing.pipeline import build_graph_stage, build_tree_stage
    from branchwise.retrieval.index import Index

    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(config.workers, config.cluster))
        engine = DaskEngine(client, specs, partitions=config.partitions)
        t0 = time.perf_counter()
        # enough texts per embedding call to give every worker two pieces
        chunk_cfg = dataclasses.replace(config.chunk, embed_batch_size=max(
            config.chunk.embed_batch_size, 2 * engine.n_workers * engine.embed_piece))
        idx = build_chunk_index(source, out, engine.embedder(embedder), chunk_cfg, progress=progress)
        if not idx.manifest.stage_done("tree"):
            build_tree_stage(idx, config.tree, llm=llm, progress=progress, engine=engine)
        if config.wants_graph(llm) and not idx.manifest.stage_done("graph"):
            from branchwise.graph.build import GraphBuildConfig

            gcfg = (config.graph_config if isinstance(config.graph_config, GraphBuildConfig)
                    else GraphBuildConfig(show_progress=progress))
            ext = engine.extractor(config.graph_extractor, llm=llm, config=gcfg)
            build_graph_stage(idx, llm, gcfg, extractor=ext, progress=progress)
        log.info("distributed build on %d workers: %.1f s", engine.n_workers, time.perf_counter() - t0)
    return Index.open(out, embedder)
