"""Tree-build benchmark: time and peak memory over N = 1k .. 1M chunks.

    python benchmarks/tree_build.py --sizes 1000,10000,100000 [--include-1m] [--baselines]

Corpus: the Vaswani abstracts (11,429; ../shared/data/vaswani) embedded with the real
default embedder (all-MiniLM-L6-v2), cached as .npy under /tmp. N ≤ 11,429 uses real
abstracts and real embeddings; larger N tiles the real embeddings with Gaussian noise
(σ per dimension, renormalised) and reuses the abstracts' text — stated in the output.

Each (N, strategy, mode) runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its
own; it includes loading the embeddings (and the embedder for summary vectors).
Modes: ``extractive`` (extractive summaries, vectors from the real embedder on the
summaries), ``extractive-centroid`` (extractive summaries, centroid vectors: no embedder)
and ``structure`` (clustering only, empty summaries).

``--baselines`` times sklearn Spectral and Ward agglomerative clustering against one level
of our balanced grouping at small N (they are O(N²) in memory).

Results on the 2-core dev machine: see ``RESULTS`` at the bottom of this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from branchwise.types import Chunk, Usage

log = logging.getLogger("benchmarks.tree_build")
REPO = Path(__file__).resolve().parents[1]
_DOC = re.compile(r"<DOC>\s*<DOCNO>\s*(.*?)\s*</DOCNO>(.*?)</DOC>", re.S)


def vaswani(shared: Path) -> list[tuple[str, str]]:
    """(docno, text) of the Vaswani abstracts (TREC SGML)."""
    raw = (shared / "vaswani" / "doc-text.trec").read_text(encoding="utf-8", errors="replace")
    return [(no, " ".join(text.split())) for no, text in _DOC.findall(raw)]


def real_embeddings(texts: Sequence[str], cache: Path) -> np.ndarray:
    """Embeddings of ``texts`` with the default embedder, cached in ``cache`` (.npy)."""
    if cache.exists():
        emb = np.load(cache, allow_pickle=False)
        if emb.shape[0] == len(texts):
            return emb
    from branchwise.models.embedders import default_embedder

    t0 = time.perf_counter()
    emb = default_embedder().embed(list(texts))
    log.info("embedded %d texts in %.1fs", len(texts), time.perf_counter() - t0)
    np.save(cache, emb, allow_pickle=False)
    return emb


def corpus(n: int, shared: Path, cache: Path, noise: float, seed: int) -> tuple[list[Chunk], np.ndarray, str]:
    """``n`` chunks and embeddings: real when n ≤ corpus size, else tiled with noise."""
    docs = vaswani(shared)
    base = real_embeddings([t for _, t in docs], cache)
    if n <= len(docs):
        chunks = [Chunk(id=f"v{no}", doc_id=f"v{no}", text=t) for no, t in docs[:n]]
        return chunks, base[:n], "real Vaswani abstracts + real embeddings"
    rng = np.random.default_rng(seed)
    rows = np.arange(n) % len(docs)
    emb = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):  # in blocks: a float64 noise array for 1M x 384 would be 3 GB
        block = base[rows[i : i + step]] + rng.normal(0.0, noise, (min(step, n - i), base.shape[1])).astype(np.float32)
        emb[i : i + step] = block / np.linalg.norm(block, axis=1, keepdims=True)
    chunks = [Chunk(id=f"v{docs[r][0]}~{i}", doc_id=f"v{docs[r][0]}", text=docs[r][1]) for i, r in enumerate(rows.tolist())]
    return chunks, emb, f"real embeddings of {len(docs)} abstracts tiled x{n / len(docs):.1f} with N(0, {noise}^2) noise per dim"


class NoSummaries:
    """Structure-only benchmark mode: empty summaries, no model."""

    name = "none"

    def __init__(self) -> None:
        self.usage = Usage()

    def summarize_batch(self, requests: Sequence[object]) -> list[str]:
        return [""] * len(requests)
