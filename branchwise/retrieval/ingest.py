"""Ingestion: a folder, a single file, or JSONL records → :class:`~branchwise.types.Document`.

Folder discovery uses llama-index-core's ``SimpleDirectoryReader`` (recursive walk, hidden
files skipped, extension filter, sorted order). Its *reading* is not used: without the
separate ``llama-index-readers-file`` package it has no reader for any format and falls back
to ``open(errors="ignore")``, which silently drops undecodable bytes and turns a PDF into
binary noise. The small readers in :mod:`branchwise.retrieval.readers` detect binary files,
report non-UTF-8 text, strip HTML and extract PDF text (with pypdf, when installed).

Document ids are paths relative to the corpus root (POSIX separators) for files, and the
``id`` field for JSONL records, so they are stable across machines and re-runs.

Documents are untrusted: they are parsed as data (``json.loads``, ``html.parser``, pypdf),
never evaluated or unpickled. Sizes are bounded before anything is read: a file over
``IngestConfig.max_file_mb`` is refused from its size alone, and JSONL is streamed line by
line with the same bound per record, so an enormous file or line is never loaded whole.
Folders that are branchwise index directories (an index built inside its own corpus folder)
are never read as documents.

With ``on_error="skip"`` every input left out is reported (:class:`SkippedInput`, in
:attr:`IngestReport.skipped`), so a folder with one bad file still builds and the user is
told which file was left out and why.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Literal

from branchwise.errors import InputError
from branchwise.retrieval.readers import READERS, SkipFile, pdf_supported
from branchwise.types import Document

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl",)
#: the manifest schema that marks a folder as a branchwise index directory (never ingested)
_INDEX_SCHEMA = "branchwise.index/1"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """How documents are read.

    Attributes:
        on_error: ``"raise"`` (default) stops at the first unreadable input with an error
            naming the file (and line); ``"skip"`` leaves it out, logs a warning and lists it
            in :attr:`IngestReport.skipped` (CLI: ``--on-error skip``).
        encoding_errors: ``"strict"`` (default) reports non-UTF-8 text files; ``"replace"``
            decodes them with U+FFFD for the undecodable bytes (and logs a warning) (CLI:
            ``--encoding-errors replace``).
        max_file_mb: largest file read, in MiB (a ``.jsonl`` file: largest record); a
            larger one is an input error found from its size alone, before it is read
            (CLI: ``--max-file-mb``). 10 MiB of text is ~2.6 M tokens, ~11 k chunks. 0: no limit.
        recursive: descend into sub-folders.
        extensions: file suffixes read from a folder (others are ignored). ``.pdf`` files
            need pypdf (``pip install 'branchwise[pdf]'``); without it they are skipped with
            a warning. ``.jsonl`` files in a folder are read as records.
        id_field, text_field, title_field: JSONL keys of the record id, text and title;
            every other key of a record goes to ``Document.metadata``.
    """

    on_error: Literal["raise", "skip"] = "raise"
    encoding_errors: Literal["strict", "replace"] = "strict"
    max_file_mb: float = 10.0
    recursive: bool = True
    extensions: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")
    id_field: str = "id"
    text_field: str = "text"
    title_field: str = "title"

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "skip"):
            raise InputError(f"on_error={self.on_error!r} is not valid.", fix="use 'raise' or 'skip'.")
        if self.encoding_errors not in ("strict", "replace"):
            raise InputError(
                f"encoding_errors={self.encoding_errors!r} is not valid.", fix="use 'strict' or 'replace'."
            )
        if not self.max_file_mb >= 0:
            raise InputError(f"max_file_mb={self.max_file_mb!r} is not valid.", fix="use a size in MiB (0: no limit).")

    @property
    def max_bytes(self) -> int | None:
        """``max_file_mb`` in bytes (None: no limit)."""
        return int(self.max_file_mb * 2**20) if self.max_file_mb else None


@dataclass(frozen=True, slots=True)
class SkippedInput:
    """An input left out by ``on_error="skip"`` (or an empty document, always left out).

    Attributes:
        where: the file, or ``file:line`` for a JSONL record.
        reason: what is wrong with it (and what would fix it).
    """

    where: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}


@dataclass(slots=True)
class IngestReport:
    """The documents read, and every input left out (with ``on_error="skip"``, or empty)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)


def load_documents(path: str | Path, config: IngestConfig = IngestConfig()) -> list[Document]:
    """Read ``path`` (folder, text/markdown/html/pdf file, or ``.jsonl``) into documents.

    Returns documents in a deterministic order (sorted paths; JSONL line order). Documents
    whose text is empty after extraction are skipped with a warning. :func:`ingest` also
    returns what was left out.

    Raises:
        InputError: the path does not exist, a folder has no supported files, a file is
            binary / not UTF-8 / malformed / too large (unless ``on_error="skip"``), ids repeat,
            or the path is an index directory.
    """
    return ingest(path, config).documents


def ingest(path: str | Path, config: IngestConfig = IngestConfig()) -> IngestReport:
    """:func:`load_documents`, with the list of inputs left out (:class:`IngestReport`)."""
    root = require_source(path)
    reader = _Reader(config)
    if root.is_dir():
        if is_index_dir(root):
            raise InputError(
                f"{root} is a branchwise index directory, not a folder of documents.",
                fix="pass the folder (or file) of documents the index is built from.",
            )
        files = discover_files(root, config)
        docs = [d for f in files for d in reader.read_file(f, f.relative_to(root).as_posix())]
    else:
        suffix = root.suffix.lower()
        if suffix not in READERS and suffix not in JSONL_SUFFIXES:
            raise InputError(
                f"unsupported file type {suffix or '(none)'!r}: {root}.",
                fix=f"use one of {', '.join(sorted({*READERS, *JSONL_SUFFIXES}))}, or pass a folder.",
            )
        docs = list(reader.read_file(root, root.name))
    docs = reader.dedupe(docs)
    if not docs:
        left = f" ({len(reader.skipped)} input(s) left out: {reader.skipped[0].where}: {reader.skipped[0].reason})" \
            if reader.skipped else ""
        raise InputError(
            f"no documents with text found in {root}{left}.",
            fix="check the files have text (a scanned PDF has none) and are not all skipped.",
        )
    if reader.skipped:
        log.warning("left out %d input(s) of %s (first: %s: %s)", len(reader.skipped), root,
                    reader.skipped[0].where, reader.skipped[0].reason)
    log.info("loaded %d documents from %s", len(docs), root)
    return IngestReport(docs, reader.skipped)


def check_file_size(path: Path, size: int, config: IngestConfig) -> None:
    """Raise the error ingestion would raise for a file over ``config.max_file_mb`` (with
    ``on_error="raise"``), before anything is read or loaded."""
    if config.on_error == "raise":
        _Reader(config).size_ok(Path(path), size)


def require_source(path: str | Path) -> Path:
    """``path`` made absolute; InputError when it does not exist (callers check before slow work)."""
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise InputError(f"no such file or folder: {root}.", fix="check the path you passed to index.")
    return root


def is_index_dir(path: Path) -> bool:
    """Whether ``path`` is a branchwise index directory (its ``manifest.json`` has our schema)."""
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        with manifest.open("rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return _INDEX_SCHEMA.encode() in head


def discover_files(root: Path, config: IngestConfig) -> list[Path]:
    """The files of folder ``root`` that ingestion reads (sorted; hidden files, unsupported
    suffixes and index directories left out). InputError when there are none."""
    from llama_index.core import SimpleDirectoryReader

    exts = {e.lower() for e in config.extensions}
    # SimpleDirectoryReader compares suffixes case-sensitively: list both spellings.
    required = sorted(exts | {e.upper() for e in exts})
    # Hidden files are filtered here, relative to the root: SimpleDirectoryReader's own
    # exclude_hidden looks at every part of the absolute path, so a corpus stored under any
    # dot-folder (~/.local/..., .cache/...) would come out empty.
    files: list[Path] = []
    try:
        reader = SimpleDirectoryReader(
            input_dir=str(root), recursive=config.recursive, required_exts=required, exclude_hidden=False
        )
        files = [Path(p) for p in reader.input_files]
    except ValueError:  # "No files found in ..."
        pass
    files = sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(root).parts))
    files = _outside_indexes(root, files)
    if ".pdf" in exts and not pdf_supported():  # one walk: found with the rest, dropped here
        exts.discard(".pdf")
        pdfs = [p for p in files if p.suffix.lower() == ".pdf"]
        if pdfs:
            log.warning("pypdf is not installed: %d .pdf file(s) in %s are skipped (pip install 'branchwise[pdf]').",
                        len(pdfs), root)
            files = [p for p in files if p.suffix.lower() != ".pdf"]
    if not files:
        raise InputError(
            f"no supported files ({', '.join(sorted(exts))}) in folder {root}.",
            fix="add documents to the folder, or point at another folder or a .jsonl file.",
        )
    return files


def _outside_indexes(root: Path, files: list[Path]) -> list[Path]:
    """``files`` without those inside an index directory under ``root`` (e.g. an index built
    with ``--out`` inside its own corpus folder: its chunks.jsonl is not a document)."""
    verdict: dict[Path, bool] = {}

    def inside_index(p: Path) -> bool:
        for d in p.relative_to(root).parents:
            folder = root / d
            if folder == root:
                continue
            if folder not in verdict:
                verdict[folder] = is_index_dir(folder)
            if verdict[folder]:
                return True
        return False

    kept = [p for p in files if not inside_index(p)]
    for folder in sorted(d for d, yes in verdict.items() if yes):
        log.info("not reading %s: it is a branchwise index directory", folder)
    return kept


class _Reader:
    """Reads files under one :class:`IngestConfig`, collecting what it leaves out."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.skipped: list[SkippedInput] = []

    def problem(self, where: Path | str, message: str, fix: str) -> None:
        """Raise (``on_error="raise"``) or log, record and skip (``on_error="skip"``)."""
        if self.config.on_error == "raise":
            raise InputError(message, fix=fix + " Or pass on_error='skip' to leave such inputs out.")
        log.warning("skipping: %s (%s)", message, fix)
        reason = message
        for prefix in (f"{where}: ", f"{where} "):  # the message names the input: keep only the why
            if reason.startswith(prefix):
                reason = reason[len(prefix):]
                break
        self.skipped.append(SkippedInput(str(where), reason))

    def empty(self, where: Path | str, what: str) -> None:
        log.warning("skipping %s: %s", where, what)
        self.skipped.append(SkippedInput(str(where), what))

    def size_ok(self, path: Path, size: int) -> bool:
        """False (after raising or recording the problem) when ``path`` is over the size limit."""
        limit = self.config.max_bytes
        if limit is None or size <= limit:
            return True
        self.problem(path, f"{path} is {_mb(size)}, over the {_mb(limit)} limit per file.",
                     f"split it into smaller files, or raise the limit with max_file_mb=... (at least {math.ceil(size / 2**20 * 10) / 10:g}).")
        return False

    def read_file(self, path: Path, doc_id: str) -> Iterator[Document]:
        suffix = path.suffix.lower()
        if suffix in JSONL_SUFFIXES:
            yield from self.read_jsonl(path)
            return
        try:
            if not self.size_ok(path, path.stat().st_size):
                return
            text, title = READERS[suffix](path, self.config.encoding_errors)
        except SkipFile as e:
            self.problem(path, e.message, e.fix)
            return
        except OSError as e:  # unreadable: permissions, a dangling link, a special file
            self.problem(path, f"cannot read {path} ({e.strerror or e}).", "check that it is a readable file.")
            return
        if not text.strip():
            self.empty(path, "no text found in it")
            return
        yield Document(
            id=doc_id,
            text=text,
            title=title or path.stem,
            metadata={"source": doc_id, "format": suffix.lstrip(".")},
        )

    def read_jsonl(self, path: Path) -> Iterator[Document]:
        """One record per line, streamed; blank lines are ignored; errors name ``file:line``."""
        try:
            f = path.open("rb")
        except OSError as e:
            self.problem(path, f"cannot read {path} ({e.strerror or e}).", "check that it is a readable file.")
            return
        with f:
            if b"\x00" in f.read(8192):
                self.problem(path, f"{path} looks binary (it contains NUL bytes), not JSONL.", "pass a UTF-8 .jsonl file.")
                return
            f.seek(0)
            for lineno, line_bytes, size in _lines(f, self.config.max_bytes):
                where = f"{path}:{lineno}"
                if line_bytes is None:
                    limit = self.config.max_bytes or 0
                    self.problem(where, f"{where}: the record is {_mb(size)}, over the {_mb(limit)} limit per record.",
                                 "split that record, or raise the limit with max_file_mb=...")
                    continue
                try:
                    line = line_bytes.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    self.problem(where, f"{where}: not valid UTF-8 ({e.reason} at byte {e.start}).",
                                 "re-encode the file as UTF-8.")
                    continue
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    self.problem(where, f"{where}: malformed JSON ({e.msg} at column {e.colno}).",
                                 "fix or delete that line.")
                    continue
                doc = self.record_to_document(record, where, path, lineno)
                if doc is not None:
                    yield doc

    def record_to_document(self, record: Any, where: str, path: Path, lineno: int) -> Document | None:
        config = self.config
        if not isinstance(record, dict):
            self.problem(where, f"{where}: a record must be a JSON object, got {type(record).__name__}.",
                         "write one JSON object per line.")
            return None
        text = record.get(config.text_field)
        if not isinstance(text, str):
            what = "has no" if text is None else "has a non-string"
            self.problem(where, f"{where}: record {what} {config.text_field!r} field.",
                         f"give every record a string {config.text_field!r}.")
            return None
        if not text.strip():
            self.empty(where, "the record's text is empty")
            return None
        rid = record.get(config.id_field)
        doc_id = f"{path.stem}/{lineno}" if rid is None or rid == "" else str(rid)
        title = record.get(config.title_field)
        meta = {k: v for k, v in record.items() if k not in (config.id_field, config.text_field, config.title_field)}
        meta.setdefault("source", f"{path.name}:{lineno}")
        return Document(id=doc_id, text=text, title=str(title) if title is not None else "", metadata=meta)

    def dedupe(self, docs: list[Document]) -> list[Document]:
        seen: dict[str, Document] = {}
        for d in docs:
            first = seen.get(d.id)
            if first is None:
                seen[d.id] = d
                continue
            self.problem(
                str(d.metadata.get("source", d.id)),
                f"duplicate document id {d.id!r} ({first.metadata.get('source')} and {d.metadata.get('source')}).",
                "give every record a unique id (the first one is kept with on_error='skip').",
            )
        return list(seen.values())


def _lines(f: BinaryIO, limit: int | None) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line number, line bytes, size)`` of a binary file, reading at most ``limit`` + 1
    bytes of any line at a time; a longer line yields ``None`` (its size counted, not kept)."""
    lineno = 0
    while True:
        line = f.readline(limit + 1) if limit is not None else f.readline()
        if not line:
            return
        lineno += 1
        if limit is None or len(line) <= limit or line.endswith(b"\n") and len(line) <= limit + 1:
            yield lineno, line, len(line)
            continue
        size = len(line)
        while not line.endswith(b"\n"):  # skip the rest of the line, a block at a time
            line = f.readline(1 << 20)
            if not line:
                break
            size += len(line)
        yield lineno, None, size


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
