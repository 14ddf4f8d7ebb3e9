"""Server-side state of the chat app: shared models, the work directory, per-session state.

* :class:`ModelPool` — LLMs and embedders by spec, loaded once and shared by every session
  (backends are thread-safe: llama.cpp serialises calls with a lock, the embedder cache has
  its own). Objects can be registered under a spec (tests inject doubles this way).
* :class:`Workspace` — the one directory the app writes to. Uploaded files are copied into
  ``uploads/<batch>/`` under sanitised names, so no upload can name a path outside it;
  indexes built from them go to ``indexes/<name>/``.
* :class:`ChatSession` — what one browser session remembers (its last answer, for the
  trace panel and the citation chips). Gradio keeps one copy per session in ``gr.State``.
* :class:`ChatService` — answers a question as a stream of :class:`ChatUpdate`, opening each
  index once and sharing it across sessions.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from branchwise.files import safe_name
from branchwise.errors import IndexFormatError, InputError
from branchwise.models.base import LLM, Embedder
from branchwise.retrieval.ingest import IngestConfig
from branchwise.types import Answer
from branchwise.ui.settings import ChatSettings

log = logging.getLogger(__name__)

UPLOADS_DIR = "uploads"
INDEXES_DIR = "indexes"
MANIFEST = "manifest.json"
#: agent assemblies kept (one per index and settings in use; each may hold a reranker model)
MAX_ASSEMBLIES = 8


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


class ModelPool:
    """Shared model objects by spec; each spec loads once, even when sessions race for it.

    Args:
        llms / embedders: objects registered under spec names (used as they are).
        make_llm / make_embedder: factories for specs not registered (default:
            :mod:`branchwise.models.factory`).
        allow_custom: load specs that were not registered or listed in ``known_llms``.
        known_llms / known_embedders: further specs offered in the UI (loaded on first use).
    """

    def __init__(
        self,
        *,
        llms: Mapping[str, LLM] | None = None,
        embedders: Mapping[str, Embedder] | None = None,
        make_llm: Callable[[str], LLM] | None = None,
        make_embedder: Callable[[str], Embedder] | None = None,
        allow_custom: bool = True,
        known_llms: Sequence[str] = ("default",),
        known_embedders: Sequence[str] = ("default",),
    ) -> None:
        from branchwise.models import factory

        self._llms: dict[str, LLM] = dict(llms or {})
        self._embedders: dict[str, Embedder] = dict(embedders or {})
        self._make_llm = make_llm or factory.make_llm
        self._make_embedder = make_embedder or factory.make_embedder
        self.allow_custom = allow_custom
        self._known = list(dict.fromkeys([*self._llms, *known_llms]))
        self._known_emb = list(dict.fromkeys([*self._embedders, *known_embedders]))
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def llm_specs(self) -> list[str]:
        """LLM specs offered in the Settings tab (registered first)."""
        return list(self._known)

    def embedder_specs(self) -> list[str]:
        """Embedder specs offered for new indexes (registered first)."""
        return list(self._known_emb)

    def has_llm(self, spec: str) -> bool:
        return spec in self._llms

    def _check(self, spec: str, known: Sequence[str]) -> None:
        if not self.allow_custom and spec not in known:
            raise InputError(f"model spec {spec!r} is not offered by this server.",
                             fix=f"pick one of: {', '.join(known)} (or restart `branchwise chat` with --llm SPEC).")

    def _get(self, kind: str, spec: str, cache: dict[str, Any], make: Callable[[str], Any]) -> Any:
        spec = (spec or "default").strip()
        with self._guard:
            if spec in cache:
                return cache[spec]
            lock = self._loading.setdefault(f"{kind}:{spec}", threading.Lock())
        with lock:  # one loader per spec; other specs load in parallel
            if spec not in cache:
                log.info("loading %s %r", kind, spec)
                obj = make(spec)
                with self._guard:
                    cache[spec] = obj
        return cache[spec]

    def llm(self, spec: str) -> LLM:
        self._check(spec, self._known)
        return self._get("llm", spec, self._llms, self._make_llm)

    def stand_in(self, recorded: str, spec: str) -> None:
        """Open indexes whose manifest records embedder ``recorded`` with embedder ``spec`` instead
        (``branchwise chat DIR --embedder SPEC``: the spec given again, e.g. with its credentials)."""
        embedder = self.embedder(spec, trusted=True)
        with self._guard:
            self._embedders[(recorded or "default").strip()] = embedder

    def embedder(self, spec: str, *, trusted: bool = False) -> Embedder:
        """The embedder ``spec``; ``trusted`` specs (from an index manifest) skip the allow-list."""
        if not trusted:
            self._check(spec, self._known_emb)
        return self._get("embedder", spec, self._embedders, self._make_embedder)


class Workspace:
    """The app's work directory: listed indexes, confined uploads, index builds.

    Args:
        root: the work directory (created).
        indexes: extra indexes to offer by display name (e.g. the ``DIR`` given to
            ``branchwise chat``); they are read, never written.
    """

    def __init__(self, root: Path, indexes: Mapping[str, Path] | None = None) -> None:
        self.root = Path(root).resolve()
        (self.root / UPLOADS_DIR).mkdir(parents=True, exist_ok=True)
        (self.root / INDEXES_DIR).mkdir(parents=True, exist_ok=True)
        self._extra = {safe_name(k, default="index"): Path(v).resolve() for k, v in (indexes or {}).items()}
        self._build_lock = threading.Lock()

    def index_choices(self) -> list[str]:
        """Display names of the ready indexes (given ones first, then those built here)."""
        built = sorted(p.name for p in (self.root / INDEXES_DIR).iterdir() if (p / MANIFEST).is_file())
        return list(dict.fromkeys([*self._extra, *built]))

    def index_path(self, name: str) -> Path:
        """The directory of index ``name``; only names from :meth:`index_choices` resolve."""
        if name in self._extra:
            return self._extra[name]
        path = self.root / INDEXES_DIR / safe_name(name, default="index")
        if not name or safe_name(name) != name or not (path / MANIFEST).is_file():
            raise InputError(f"there is no index named {name!r}.",
                             fix="pick one from the Index list, or upload files and build one.")
        return path

    def save_uploads(self, files: Sequence[tuple[str, Path]], *, max_bytes: int) -> Path:
        """Copy uploaded ``(original name, temp path)`` pairs into a fresh ``uploads/<batch>/``.

        The original names come from the browser and are untrusted: each is reduced by
        :func:`safe_name`, its suffix must be a readable document type, and the target is
        checked to lie inside the batch folder before anything is written.
        """
        if not files:
            raise InputError("no files were uploaded.", fix="choose one or more documents first.")
        allowed = IngestConfig().extensions
        batch = self.root / UPLOADS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        batch.mkdir(parents=True)
        used: set[str] = set()
        for orig, tmp in files:
            name = safe_name(orig)
            suffix = Path(name).suffix.lower()
            if suffix not in allowed:
                shutil.rmtree(batch, ignore_errors=True)
                raise InputError(f"{name!r} is not a supported document type.",
                                 fix=f"upload files ending in {', '.join(allowed)}.")
            if Path(tmp).stat().st_size > max_bytes:
                shutil.rmtree(batch, ignore_errors=True)
                raise InputError(f"{name!r} is larger than {max_bytes // 2**20} MB.", fix="upload a smaller file.")
            stem, n = Path(name).stem, 1
            while name.lower() in used:
                name, n = f"{stem}-{n}{suffix}", n + 1
            used.add(name.lower())
            target = batch / name
            if not _inside(target, batch):  # safe_name makes this impossible; keep the invariant explicit
                raise InputError(f"refusing upload name {orig!r}.", fix="rename the file.")
            shutil.copyfile(tmp, target)
        log.info("saved %d upload(s) to %s", len(files), batch)
        return batch

    def build(self, source: Path, name: str, settings: Any, *, embedder: Embedder, llm: LLM | None,
              progress: bool = True) -> str:
        """Build an index of ``source`` (an upload batch) as ``indexes/<name>`` with ``settings``
        (a :class:`branchwise.Settings`) through the composition root; returns its name."""
        from branchwise.assembly.root import build_index

        if not _inside(source, self.root / UPLOADS_DIR):
            raise InputError("indexes are built only from files uploaded to this app.", fix="upload the files first.")
        name = safe_name(name or source.name, default="index")
        out = self.root / INDEXES_DIR / name
        if out.exists() or name in self._extra:
            raise InputError(f"an index named {name!r} exists already.", fix="choose another name.")
        with self._build_lock:  # one build at a time: it saturates the CPU anyway
            build_index(source, out, settings, embedder=embedder, llm=llm, progress=progress)
        return name


@dataclass
class ChatSession:
    """Per-browser-session state (one deep copy per session in ``gr.State``).

    Attributes:
        answer: the last answer (drives the trace panel and the citation chips).
        index_name: the index that answer came from.
        asked: questions asked in this session.
    """

    answer: Answer | None = None
    index_name: str = ""
    asked: int = 0


@dataclass(slots=True)
class ChatUpdate:
    """One step of a streamed question, as the UI shows it.

    :meth:`ChatService.stream` yields the same object, updated in place: render it before
    asking for the next one.

    Attributes:
        steps: human-readable progress lines so far.
        text: the answer text streamed so far.
        answer: the final answer (last update only).
        elapsed_s: seconds since the question was asked.
    """

    steps: list[str] = field(default_factory=list)
    text: str = ""
    answer: Answer | None = None
    elapsed_s: float = 0.0


#: how the app marks an answer that failed (left out of the history)
FAILED_ANSWER = "**Could not answer:**"


def chat_history(messages: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """The conversation of a Gradio chat as agent history: user questions and answers, without
    the collapsible agent-steps messages (they carry ``metadata``) or failed answers."""
    turns: list[dict[str, str]] = []
    for m in messages or []:
        role, content = m.get("role"), m.get("content")
        if isinstance(content, list):  # Gradio may hand back content parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
        if role not in ("user", "assistant") or not isinstance(content, str) or not content.strip():
            continue
        if m.get("metadata") or content.startswith(FAILED_ANSWER):
            continue
        turns.append({"role": role, "content": content})
    return turns


#: step events worth a line of their own (the other nodes report through progress events)
_STEP_NODES = frozenset({"feedback", "compress"})


class ChatService:
    """Answers questions over the workspace's indexes with the pool's shared models."""

    def __init__(self, pool: ModelPool, workspace: Workspace, base: Any = None) -> None:
        from branchwise.assembly.settings import Settings

        self.pool = pool
        self.workspace = workspace
        self.base = base or Settings.from_env()  # what the Settings tab's knobs are applied to
        self._indexes: dict[Path, Any] = {}
        self._assemblies: OrderedDict[tuple[Path, Any], Any] = OrderedDict()
        self._lock = threading.Lock()

    def assembly(self, name: str, settings: Any) -> Any:
        """The composition root's parts over index ``name`` for ``settings`` (a :class:`branchwise.Settings`),
        made once per index and settings (tree resources, the reranker's model) and shared by sessions."""
        from branchwise.assembly.root import Assembly

        index = self.open_index(name)
        key = (index.path, settings)
        with self._lock:
            if key not in self._assemblies:
                self._assemblies[key] = Assembly(index, settings)
                while len(self._assemblies) > MAX_ASSEMBLIES:
                    self._assemblies.popitem(last=False)
            self._assemblies.move_to_end(key)
            return self._assemblies[key]

    def open_index(self, name: str) -> Any:
        """The opened :class:`~branchwise.retrieval.index.Index` ``name`` (opened once, shared)."""
        from branchwise.retrieval.index import Index
        from branchwise.retrieval.manifest import Manifest

        path = self.workspace.index_path(name)
        with self._lock:
            if path not in self._indexes:
                spec = Manifest.load(path).embedder.spec or "default"
                self._indexes[path] = Index.open(path, embedder=self.pool.embedder(spec, trusted=True))
            return self._indexes[path]

    def stream(self, question: str, index_name: str, settings: ChatSettings,
               history: Sequence[Mapping[str, str]] = ()) -> Iterator[ChatUpdate]:
        """Run ``question`` and yield an update per agent event; the last one has the answer.

        ``history`` is the conversation so far (:func:`chat_history`): a follow-up is rewritten
        into a standalone question from it by the agent, and the steps show that question.
        """
        if not question.strip():
            raise InputError("the question is empty.", fix="type a question first.")
        if not index_name:
            raise IndexFormatError("no index is selected.", fix="pick an index in the Index tab, or build one.")
        t0 = time.perf_counter()
        update = ChatUpdate(steps=[f"opening index {index_name}"])
        yield update
        parts = self.assembly(index_name, settings.apply(self.base))
        if not self.pool.has_llm(settings.llm):
            update.steps.append(f"loading the LLM {settings.llm!r} (first use)")
            yield update
        llm = self.pool.llm(settings.llm)
        with parts.agent(llm=llm) as agent:
            for event in agent.stream(question, history=history):
                update.elapsed_s = time.perf_counter() - t0
                if event.kind == "token":
                    update.text += event.message
                elif event.kind == "progress" or (event.kind == "step" and event.node in _STEP_NODES):
                    update.steps.append(event.message)
                elif event.kind == "answer":
                    update.answer = event.answer
                    update.text = event.answer.text if event.answer is not None else update.text
                else:
                    continue
                yield update
