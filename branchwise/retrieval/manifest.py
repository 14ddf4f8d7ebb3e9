"""The index manifest (``manifest.json``, schema ``branchwise.index/1``).

The manifest is what makes an index directory self-describing: which embedder produced the
vectors (an index queried with another embedder returns garbage, so :class:`Index.open`
refuses it), how the corpus was chunked, a fingerprint of the corpus (so a rebuild into the
same directory can tell "resume" from "different corpus"), counts for ``branchwise info``,
and the state of each build stage (``"in_progress"`` / ``"done"``) so an interrupted build
resumes where it stopped.

:class:`Manifest` is frozen: updates return a new value (``with_stage``, ``with_counts``,
``dataclasses.replace``), and the index writes it back atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable, Literal

from branchwise.errors import IndexFormatError
from branchwise.files import atomic_write_json

INDEX_SCHEMA = "branchwise.index/1"
MANIFEST_FILE = "manifest.json"

StageState = Literal["in_progress", "done"]


def branchwise_version() -> str:
    """The installed branchwise version (``"0+unknown"`` when run from an uninstalled tree)."""
    try:
        return importlib_metadata.version("branchwise")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def corpus_fingerprint(doc_digests: Iterable[tuple[str, str]]) -> str:
    """sha256 over sorted ``(doc_id, sha256(text))`` pairs.

    Order-independent, and computable both from fresh documents and from the ``doc_sha256``
    kept in each chunk's metadata (so it stays correct after incremental updates).
    """
    h = hashlib.sha256()
    for doc_id, digest in sorted(set(doc_digests)):
        h.update(doc_id.encode("utf-8") + b"\x00" + digest.encode("ascii") + b"\n")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class EmbedderInfo:
    """The embedder an index was built with.

    Attributes:
        name: the model name (``Embedder.name``); compared on open.
        dim: the vector size; compared on open.
        spec: the spec string that recreates it (``make_embedder(spec)``), if known.
    """

    name: str
    dim: int
    spec: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything needed to reopen and trust an index directory.

    Attributes:
        embedder: name, dimension and spec of the embedder.
        chunking: chunking parameters (``chunk_tokens``, ``overlap_tokens``, ``encoding``).
        corpus_fingerprint: see :func:`corpus_fingerprint` ("" before ingestion).
        store: vector-store spec (``"chroma"`` or ``"chroma+http://host:port"``).
        store_namespace: prefix of this index's collection names (non-empty in server mode,
            where several indexes share one Chroma server).
        llm: the LLM spec used for summaries / graph extraction, if any.
        counts: ``documents``, ``chunks``, ``nodes``, ... for ``branchwise info``.
        stages: build state per stage (``chunks``, ``embeddings``, ``bm25``, ``tree``, ...).
        extra: free-form JSON parameters of later stages (tree and graph configs).
        schema, created_at, branchwise_version: provenance.
    """

    embedder: EmbedderInfo
    chunking: dict[str, Any] = field(default_factory=dict)
    corpus_fingerprint: str = ""
    store: str = "chroma"
    store_namespace: str = ""
    llm: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    stages: dict[str, StageState] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = INDEX_SCHEMA
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    branchwise_version: str = field(default_factory=branchwise_version)

    # -- functional updates -------------------------------------------------------------
    def with_stage(self, stage: str, state: StageState) -> "Manifest":
        return dataclasses.replace(self, stages={**self.stages, stage: state})

    def with_counts(self, **counts: int) -> "Manifest":
        return dataclasses.replace(self, counts={**self.counts, **counts})

    def stage_done(self, stage: str) -> bool:
        return self.stages.get(stage) == "done"

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "manifest") -> "Manifest":
        schema = d.get("schema")
        if schema != INDEX_SCHEMA:
            raise IndexFormatError(
                f"{source} has schema {schema!r}; this branchwise reads {INDEX_SCHEMA!r}.",
                fix="rebuild the index with this version: `branchwise index PATH --out DIR --overwrite`.",
            )
        try:
            emb = d["embedder"]
            embedder = EmbedderInfo(name=str(emb["name"]), dim=int(emb["dim"]), spec=emb.get("spec"))
            # keys written by a newer branchwise of the same schema are ignored, not fatal
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in d.items() if k in known and k != "embedder"}, embedder=embedder)
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(
                f"{source} is corrupt ({e}).",
                fix="rebuild the index: `branchwise index PATH --out DIR --overwrite`.",
            ) from e

    def save(self, index_dir: Path) -> None:
        """Write ``index_dir/manifest.json`` atomically."""
        atomic_write_json(Path(index_dir) / MANIFEST_FILE, self.to_dict())

    @classmethod
    def load(cls, index_dir: Path) -> "Manifest":
        """Read ``index_dir/manifest.json``.

        Raises:
            IndexFormatError: no index there, or a corrupt / other-schema manifest.
        """
        index_dir = Path(index_dir)
        path = index_dir / MANIFEST_FILE
        if not path.is_file():
            raise no_index_error(index_dir)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise IndexFormatError(
                f"{path} is not valid JSON ({e}).",
                fix=f"rebuild the index: `branchwise index PATH --out {index_dir} --overwrite`.",
            ) from e
        if not isinstance(data, dict):
            raise IndexFormatError(f"{path} is not a JSON object.", fix="rebuild the index.")
        return cls.from_dict(data, source=str(path))


def no_index_error(index_dir: Path) -> IndexFormatError:
    """"No index here", with a fix that works: a folder that already holds files (documents,
    most likely) cannot become an index, so the fix builds one beside it."""
    index_dir = Path(index_dir)
    if index_dir.is_dir() and any(p.name != "cache" for p in index_dir.iterdir()):
        target = index_dir.with_name(index_dir.name + "-index") if index_dir.name else Path("index")
        return IndexFormatError(
            f"no index at {index_dir}: it has no {MANIFEST_FILE} (is it a folder of documents?).",
            fix=f"build an index of it in a new folder: `branchwise index {_q(index_dir)} --out {_q(target)}`, "
                f"then use {_q(target)} instead.",
        )
    return IndexFormatError(f"no index at {index_dir} (no {MANIFEST_FILE}).",
                            fix=f"build one with `branchwise index PATH --out {_q(index_dir)}`.")


def _q(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
