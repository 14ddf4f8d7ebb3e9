"""BM25 lexical retrieval over chunks, with the ``bm25s`` package.

BM25 (Robertson & Zaragoza, 2009) complements dense retrieval on rare terms, names and
numbers that a small sentence embedder blurs; :mod:`branchwise.retrieval.search` fuses both.
``bm25s`` (Lù, 2024) precomputes the BM25 score of every (term, document) pair into a sparse
matrix, so a query is a sum of a few sparse rows.

Persistence (``<index>/bm25/``): ``bm25s`` writes its matrix as ``.npy`` arrays with
``allow_pickle=False`` and its vocabulary and parameters as JSON (checked in bm25s 0.3.16);
we add ``meta.json`` with the chunk id of each row and the tokenisation settings. Nothing is
pickled, and the folder is replaced atomically (written beside, then swapped in).

Stemming: PyStemmer (Snowball English) when installed, else NLTK's Porter stemmer (pure
Python, no data files); the choice is recorded so queries are stemmed like the corpus.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from branchwise.errors import IndexFormatError, InputError, MissingDependencyError
from branchwise.types import Chunk, ScoredChunk

log = logging.getLogger(__name__)

BM25_DIR = "bm25"
_META = "meta.json"

StemmerName = Literal["auto", "pystemmer", "porter", "none"]


@dataclass(frozen=True, slots=True)
class BM25Config:
    """BM25 scoring and tokenisation.

    Attributes:
        k1: term-frequency saturation (1.2-2.0 is usual).
        b: document-length normalisation (0 none, 1 full).
        method: bm25s variant: ``"lucene"`` (default), ``"robertson"``, ``"atire"``, ...
        stopwords: ``"en"`` removes English stopwords; ``"none"`` keeps all tokens.
        stemmer: ``"auto"`` picks PyStemmer, else NLTK Porter, else none.
        title_in_text: index the document title with each chunk (titles carry key terms).
    """

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stopwords: str = "en"
    stemmer: StemmerName = "auto"
    title_in_text: bool = True


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError as e:
        raise MissingDependencyError("bm25s", "core", "BM25 search") from e
    return bm25s


def _resolve_stemmer(name: str) -> tuple[str, Callable[[list[str]], list[str]] | None]:
    """(recorded name, callable on a list of words) for a configured stemmer name."""
    if name in ("auto", "pystemmer") and importlib.util.find_spec("Stemmer") is not None:
        import Stemmer

        return "pystemmer", Stemmer.Stemmer("english").stemWords
    if name == "pystemmer":
        raise MissingDependencyError("PyStemmer", "core", "The index's BM25 stemmer (PyStemmer)")
    if name in ("auto", "porter"):
        from nltk.stem.porter import PorterStemmer

        stem = functools.lru_cache(maxsize=65536)(PorterStemmer().stem)
        return "porter", lambda words: [stem(w) for w in words]
    if name == "none":
        return "none", None
    raise InputError(f"unknown BM25 stemmer {name!r}.", fix="use 'auto', 'pystemmer', 'porter' or 'none'.")


class BM25Index:
    """A BM25 index whose rows are chunk ids. Build with :meth:`build`, or :meth:`load`."""

    def __init__(self, retriever: Any, chunk_ids: list[str], config: BM25Config, stemmer_name: str):
        self._retriever = retriever
        self.chunk_ids = chunk_ids
        self.config = config
        self.stemmer_name, self._stem = _resolve_stemmer(stemmer_name)

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        stop = None if self.config.stopwords == "none" else self.config.stopwords
        return _bm25s().tokenize(
            list(texts), stopwords=stop, stemmer=self._stem, return_ids=False, show_progress=False
        )

    @classmethod
    def build(cls, chunks: Sequence[Chunk], config: BM25Config = BM25Config()) -> "BM25Index":
        """Index ``chunks`` (title + text). An empty corpus gives an index that finds nothing."""
        bm25s = _bm25s()
        stemmer_name, _ = _resolve_stemmer(config.stemmer)
        retriever = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        index = cls(retriever, [c.id for c in chunks], config, stemmer_name)
        if chunks:
            texts = [f"{c.title}\n{c.text}" if config.title_in_text and c.title else c.text for c in chunks]
            retriever.index(index._tokenize(texts), show_progress=False)
        return index

    def search(self, query: str, k: int) -> list[ScoredChunk]:
        """Top ``k`` chunks by BM25 score; chunks sharing no term with the query are left out."""
        if k <= 0 or not self.chunk_ids:
            return []
        tokens = [t for t in self._tokenize([query])[0] if t in self._retriever.vocab_dict]
        if not tokens:
            return []
        scores = np.asarray(self._retriever.get_scores(tokens), dtype=np.float64)
        k = min(k, len(scores))
        candidates = np.argpartition(-scores, k - 1)[:k].tolist()
        # ties broken by row order so results are deterministic
        top = sorted(candidates, key=lambda i: (-scores[i], i))
        return [ScoredChunk(self.chunk_ids[i], float(scores[i]), "bm25") for i in top if scores[i] > 0]

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write to ``directory`` atomically: into a sibling temp dir, then swap it in."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            if self.chunk_ids:
                self._retriever.save(str(tmp), allow_pickle=False, show_progress=False)
            meta = {"chunk_ids": self.chunk_ids, "stemmer": self.stemmer_name,
                    "config": dataclasses.asdict(self.config)}
            (tmp / _META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            if directory.exists():
                directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path) -> "BM25Index":
        """Read an index written by :meth:`save` (arrays loaded with ``allow_pickle=False``)."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
            config = BM25Config(**meta["config"])
            chunk_ids = list(meta["chunk_ids"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise IndexFormatError(
                f"BM25 index at {directory} is missing or corrupt ({e}).",
                fix="re-run `branchwise index` with the same --out to rebuild it.",
            ) from e
        bm25s = _bm25s()
        if chunk_ids:
            retriever = bm25s.BM25.load(str(directory), allow_pickle=False, load_corpus=False, show_progress=False)
        else:
            retriever = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        return cls(retriever, chunk_ids, config, meta["stemmer"])
