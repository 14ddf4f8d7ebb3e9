"""Entity resolution: decide whether an extracted name is an entity the graph already has.

Two stages, cheapest first:

1. **Normalised names.** :func:`normalize_name` applies Unicode NFKC, strips diacritics,
   casefolds, turns punctuation into spaces, drops leading articles and un-inverts
   "Last, First" — so "Barack Obama", "barack obama" and "Obama, Barack" share the key
   ``"barack obama"``. Equal keys merge whatever the extracted type (small models type
   noisily; LightRAG merges on exact names for the same reason).
2. **Embedding similarity.** Names with no exact match are embedded and merged into the
   most similar known alias when the cosine is at least ``merge_threshold``, the types are
   compatible (equal, or one is "other"), neither is a date, and no number / roman numeral
   differs ("World War I" vs "World War II" embed very close). The default 0.92 comes from
   measuring all-MiniLM-L6-v2 on same-entity variants vs look-alike different entities:
   run ``python benchmarks/graph_retrieval.py --measure-merge`` (numbers in that script's
   docstring).

Merged entities keep every mention, so all aliases, descriptions and chunk ids survive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from branchwise.graph.types import KnowledgeGraph
from branchwise.models.base import Embedder

_ARTICLES = frozenset({"the", "a", "an"})
_STOP = frozenset({"the", "a", "an", "of", "and", "in", "on", "for", "to", "at", "by", "with",
                   "from", "is", "was", "who", "what", "which", "when", "where", "how", "did", "does"})
_INVERTIBLE = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+){0,2}$")
_NUMBERISH = re.compile(r"^(?:\d+|[ivxlc]{2,})$")


def _fold(text: str) -> str:
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).casefold()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in s).split())


def normalize_name(name: str, *, invert_comma: bool = True) -> str:
    """The merge key of an entity name (see the module docstring)."""
    s = unicodedata.normalize("NFKC", name).strip()
    if invert_comma and s.count(",") == 1:
        last, first = (p.strip() for p in s.split(","))
        if _INVERTIBLE.match(last) and _INVERTIBLE.match(first):
            s = f"{first} {last}"
    tokens = _fold(s).split()
    while len(tokens) > 1 and tokens[0] in _ARTICLES:
        tokens = tokens[1:]
    return " ".join(tokens)


def normalize_text(text: str) -> str:
    """Free text folded like names (no article stripping), for finding names in a query."""
    return _fold(text)


def types_compatible(a: str, b: str) -> bool:
    return a == b or "other" in (a, b)


def numbers_conflict(a: str, b: str) -> bool:
    """True when the two keys differ in a number or roman numeral token."""
    na = {t for t in a.split() if _NUMBERISH.match(t)}
    nb = {t for t in b.split() if _NUMBERISH.match(t)}
    return na != nb


class NameIndex:
    """Normalised alias → entity ids, plus a token index for partial matches in queries."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = {}
        self._by_token: dict[str, set[str]] = {}
        self._tokens_of: dict[str, set[str]] = {}

    def add(self, entity_id: str, names: Iterable[str]) -> None:
        for name in names:
            for key in {normalize_name(name), normalize_name(name, invert_comma=False)}:
                if not key:
                    continue
                self._by_key.setdefault(key, set()).add(entity_id)
                toks = {t for t in key.split() if t not in _STOP and len(t) >= 3}
                self._tokens_of.setdefault(entity_id, set()).update(toks)
                for t in toks:
                    self._by_token.setdefault(t, set()).add(entity_id)

    def lookup(self, name: str) -> set[str]:
        """Entity ids whose alias has the same key as ``name``."""
        out: set[str] = set()
        for key in {normalize_name(name), normalize_name(name, invert_comma=False)}:
            out |= self._by_key.get(key, set())
        return out

    def find_in_text(self, text: str, min_chars: int = 3) -> dict[str, float]:
        """Entities named in ``text``: 1.0 for a whole alias, ``0.8 × token fraction`` for a part."""
        padded = f" {normalize_text(text)} "
        scores: dict[str, float] = {}
        for key, ids in self._by_key.items():
            if len(key) >= min_chars and f" {key} " in padded:
                for eid in ids:
                    scores[eid] = 1.0
        present = set(padded.split())
        for tok in present & self._by_token.keys():
            for eid in self._by_token[tok]:
                if eid in scores and scores[eid] >= 1.0:
                    continue
                frac = len(self._tokens_of[eid] & present) / max(1, len(self._tokens_of[eid]))
                scores[eid] = max(scores.get(eid, 0.0), 0.8 * frac)
        return scores


@dataclass(frozen=True, slots=True)
class ResolutionConfig:
    """Entity-resolution settings.

    Attributes:
        merge_threshold: minimum cosine between name embeddings to merge two entities with
            different keys (0.92 measured on all-MiniLM-L6-v2; see the module docstring).
        use_embeddings: set False for exact-key merging only (no embedder calls).
        min_key_chars: shorter keys (initials, "US") are merged by exact key only.
    """

    merge_threshold: float = 0.92
    use_embeddings: bool = True
    min_key_chars: int = 4


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome for one name: an existing entity id (or None: new) and how it was found."""

    entity_id: str | None
    how: str  # "exact" | "embedding" | "new"
    score: float = 0.0


class EntityResolver:
    """Greedy, order-stable resolver over a growing :class:`KnowledgeGraph`.

    Call :meth:`prepare` with all the names of a batch first (one embedder call), then
    :meth:`resolve` each mention and :meth:`register` every entity that gets a new alias.
    """

    def __init__(self, graph: KnowledgeGraph, embedder: Embedder | None,
                 config: ResolutionConfig = ResolutionConfig()) -> None:
        self.config = config
        self.embedder = embedder if config.use_embeddings else None
        self.names = NameIndex()
        self._vec_cache: dict[str, np.ndarray] = {}
        self._rows: list[tuple[str, str, str]] = []  # (entity_id, key, type) per matrix row
        self._mat = np.zeros((0, self.embedder.dim if self.embedder is not None else 0), dtype=np.float32)
        self._n = 0
        self._registered: set[tuple[str, str]] = set()
        existing = [(e.id, a, e.type) for e in graph.entities() for a in e.aliases]
        self.prepare(a for _, a, _ in existing)
        for eid, alias, etype in existing:
            self.register(eid, alias, etype)

    def _eligible(self, key: str, etype: str) -> bool:
        return self.embedder is not None and etype != "date" and len(key) >= self.config.min_key_chars

    def prepare(self, names: Iterable[str]) -> None:
        """Embed, in one batch, every name not seen before."""
        if self.embedder is None:
            return
        todo = sorted({n for n in names if n not in self._vec_cache})
        if todo:
            vecs = np.asarray(self.embedder.embed(todo), dtype=np.float32)
            self._vec_cache.update(zip(todo, vecs, strict=True))

    def _vec(self, name: str) -> np.ndarray:
        if name not in self._vec_cache:
            self.prepare([name])
        return self._vec_cache[name]

    def resolve(self, name: str, etype: str = "other") -> Resolution:
        exact = sorted(self.names.lookup(name))
        if exact:
            return Resolution(exact[0], "exact", 1.0)
        key = normalize_name(name)
        if not self._eligible(key, etype) or self._n == 0:
            return Resolution(None, "new")
        sims = self._mat[: self._n] @ self._vec(name)
        for i in np.argsort(-sims, kind="stable"):
            if sims[i] < self.config.merge_threshold:
                break
            eid, other_key, other_type = self._rows[i]
            if types_compatible(etype, other_type) and not numbers_conflict(key, other_key):
                return Resolution(eid, "embedding", float(sims[i]))
        return Resolution(None, "new")

    def register(self, entity_id: str, name: str, etype: str = "other") -> None:
        """Make ``name`` findable as an alias of ``entity_id``."""
        self.names.add(entity_id, [name])
        key = normalize_name(name)
        if not self._eligible(key, etype) or (entity_id, key) in self._registered:
            return
        self._registered.add((entity_id, key))
        if self._n == len(self._mat):
            grown = np.zeros((max(64, 2 * len(self._mat)), self._mat.shape[1]), dtype=np.float32)
            grown[: self._n] = self._mat[: self._n]
            self._mat = grown
        self._mat[self._n] = self._vec(name)
        self._rows.append((entity_id, key, etype))
        self._n += 1
