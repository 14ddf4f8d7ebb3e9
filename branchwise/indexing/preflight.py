"""A rough bill of an index build from file sizes alone, before anything is read or loaded.

``branchwise index`` shows it and asks before a long build (a 30 MB single-line file once
became 36 k chunks and hours of LLM summaries without a word of warning). It stats the
files that would be read — no parsing, no models — so it costs milliseconds; the figures
are estimates (about 4 characters per token; throughputs measured on 2 busy CPU cores with
the embedded models), good to an order of magnitude. ``branchwise index --dry-run`` gives
the exact shape and LLM calls, at the cost of chunking and embedding the corpus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from branchwise.indexing.plan import EMBEDDED_DEFAULT_SPEED, BackendSpeed

#: characters per token of English text (tiktoken cl100k), for the token estimate
CHARS_PER_TOKEN = 4.0
#: chunks embedded per second (all-MiniLM-L6-v2, 256-token chunks, 2 busy CPU cores)
EMBED_CHUNKS_PER_S = 40.0
#: tokens chunked per second (sentence splitting and token counting)
CHUNK_TOKENS_PER_S = 20_000.0
#: chunks per second of graph extraction: spaCy (measured ~24/s) and the embedded LLM (~30 s each)
GRAPH_CHUNKS_PER_S = {"spacy": 24.0, "llm": 1 / 30}


@dataclass(slots=True)
class BuildEstimate:
    """What a build of a corpus will roughly cost.

    Attributes:
        files: files that would be read; ``bytes``: their total size.
        oversize: ``(file, bytes)`` of files over the per-file limit (not counted).
        tokens, chunks, summaries: estimated tokens, chunks and LLM-written summaries.
        seconds: estimated time per step (``chunking``, ``embedding``, ``summaries``, ``graph``).
    """

    files: int = 0
    bytes: int = 0
    oversize: list[tuple[str, int]] = field(default_factory=list)
    tokens: int = 0
    chunks: int = 0
    summaries: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())

    def format(self) -> str:
        steps = ", ".join(f"{k} ~{_duration(v)}" for k, v in self.seconds.items() if v >= 1)
        lines = [f"{self.files} file(s), {self.bytes / 2**20:.1f} MiB: about {self.tokens:,} tokens, "
                 f"{self.chunks:,} chunks, {self.summaries:,} LLM summaries",
                 f"estimated time: ~{_duration(self.total_s)}" + (f" ({steps})" if steps else "")]
        lines += [f"over the size limit (left out or an error): {f} ({n / 2**20:.1f} MiB)" for f, n in self.oversize[:5]]
        return "\n".join(lines)


def estimate_build(source: str | Path, config: Any, *, speed: BackendSpeed = EMBEDDED_DEFAULT_SPEED) -> BuildEstimate:
    """Estimate the build of ``source`` with ``config`` (an ``IndexConfig``) from file sizes.

    Raises:
        InputError: the source does not exist or has no supported files (as ingestion would).
    """
    from branchwise.retrieval.ingest import JSONL_SUFFIXES, READERS, discover_files, require_source

    root = require_source(source)
    ingest = config.chunk.ingest
    if root.is_dir():
        files = discover_files(root, ingest)
    else:
        files = [root] if root.suffix.lower() in {*READERS, *JSONL_SUFFIXES} else []
    est = BuildEstimate()
    limit = ingest.max_bytes
    for f in files:
        size = f.stat().st_size
        if limit is not None and size > limit and f.suffix.lower() not in JSONL_SUFFIXES:
            est.oversize.append((str(f), size))
            continue
        est.files += 1
        est.bytes += size if f.suffix.lower() != ".pdf" else size // 10  # PDFs: mostly not text
    chunking, tree = config.chunk.chunking, config.tree
    est.tokens = int(est.bytes / CHARS_PER_TOKEN)
    step = max(1, chunking.chunk_tokens - chunking.overlap_tokens)
    est.chunks = max(est.files, math.ceil(est.tokens / step))
    est.seconds["chunking"] = est.tokens / CHUNK_TOKENS_PER_S
    est.seconds["embedding"] = est.chunks / EMBED_CHUNKS_PER_S
    if tree.summary.mode == "llm" and est.chunks > 1:
        per_node = max(2.0, tree.max_children * tree.fill)
        est.summaries = max(1, math.ceil((est.chunks - 1) / (per_node - 1)))
        prompt = min(tree.summary.input_tokens, per_node * chunking.chunk_tokens)
        est.seconds["summaries"] = est.summaries * (prompt / speed.prefill_tps + tree.summary.summary_tokens / speed.decode_tps)
    if config.graph != "off":
        rate = GRAPH_CHUNKS_PER_S.get(config.graph_extractor, GRAPH_CHUNKS_PER_S["spacy"])
        est.seconds["graph"] = est.chunks / rate
    return est


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
