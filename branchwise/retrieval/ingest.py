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
never evaluated or unpickled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from branchwise.errors import InputError
from branchwise.retrieval.readers import READERS, SkipFile, pdf_supported
from branchwise.types import Document

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl",)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """How documents are read.

    Attributes:
        on_error: ``"raise"`` (default) stops at the first unreadable input with an error
            naming the file (and line); ``"skip"`` logs a warning and goes on without it.
        encoding_errors: ``"strict"`` (default) reports non-UTF-8 text files; ``"replace"``
            decodes them with U+FFFD for the undecodable bytes (and logs a warning).
        recursive: descend into sub-folders.
        extensions: file suffixes read from a folder (others are ignored). ``.pdf`` files
            need pypdf (``pip install 'branchwise[pdf]'``); without it they are skipped with
            a warning. ``.jsonl`` files in a folder are read as records.
        id_field, text_field, title_field: JSONL keys of the record id, text and title;
            every other key of a record goes to ``Document.metadata``.
    """

    on_error: Literal["raise", "skip"] = "raise"
    encoding_errors: Literal["strict", "replace"] = "strict"
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


def load_documents(path: str | Path, config: IngestConfig = IngestConfig()) -> list[Document]:
    """Read ``path`` (folder, text/markdown/html/pdf file, or ``.jsonl``) into documents.

    Returns documents in a deterministic order (sorted paths; JSONL line order). Documents
    whose text is empty after extraction are skipped with a warning.

    Raises:
        InputError: the path does not exist, a folder has no supported files, a file is
            binary / not UTF-8 / malformed (unless ``on_error="skip"``), or ids repeat.
    """
    root = require_source(path)
    if root.is_dir():
        files = _discover(root, config)
        docs = [d for f in files for d in _read_file(f, f.relative_to(root).as_posix(), config)]
    else:
        suffix = root.suffix.lower()
        if suffix not in READERS and suffix not in JSONL_SUFFIXES:
            raise InputError(
                f"unsupported file type {suffix or '(none)'!r}: {root}.",
                fix=f"use one of {', '.join(sorted({*READERS, *JSONL_SUFFIXES}))}, or pass a folder.",
            )
        docs = list(_read_file(root, root.name, config))
    docs = _dedupe(docs, config)
    if not docs:
        raise InputError(
            f"no documents with text found in {root}.",
            fix="check the files have text (a scanned PDF has none) and are not all skipped.",
        )
    log.info("loaded %d documents from %s", len(docs), root)
    return docs


def require_source(path: str | Path) -> Path:
    """``path`` made absolute; InputError when it does not exist (callers check before slow work)."""
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise InputError(f"no such file or folder: {root}.", fix="check the path you passed to index.")
    return root


def _discover(root: Path, config: IngestConfig) -> list[Path]:
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


def _read_file(path: Path, doc_id: str, config: IngestConfig) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(path, config)
        return
    try:
        text, title = READERS[suffix](path, config.encoding_errors)
    except SkipFile as e:
        _problem(config, e.message, e.fix)
        return
    if not text.strip():
        log.warning("skipping %s: no text found in it.", path)
        return
    yield Document(
        id=doc_id,
        text=text,
        title=title or path.stem,
        metadata={"source": doc_id, "format": suffix.lstrip(".")},
    )


def _read_jsonl(path: Path, config: IngestConfig) -> Iterator[Document]:
    """One record per line; blank lines are ignored; errors name ``file:line``."""
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        _problem(config, f"{path} looks binary (it contains NUL bytes), not JSONL.", "pass a UTF-8 .jsonl file.")
        return
    for lineno, line_bytes in enumerate(raw.splitlines(), start=1):
        where = f"{path}:{lineno}"
        try:
            line = line_bytes.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as e:
            _problem(config, f"{where}: not valid UTF-8 ({e.reason} at byte {e.start}).",
                     "re-encode the file as UTF-8.")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            _problem(config, f"{where}: malformed JSON ({e.msg} at column {e.colno}).", "fix or delete that line.")
            continue
        doc = _record_to_document(record, where, path, lineno, config)
        if doc is not None:
            yield doc


def _record_to_document(
    record: Any, where: str, path: Path, lineno: int, config: IngestConfig
) -> Document | None:
    if not isinstance(record, dict):
        _problem(config, f"{where}: a record must be a JSON object, got {type(record).__name__}.",
                 "write one JSON object per line.")
        return None
    text = record.get(config.text_field)
    if not isinstance(text, str):
        what = "has no" if text is None else "has a non-string"
        _problem(config, f"{where}: record {what} {config.text_field!r} field.",
                 f"give every record a string {config.text_field!r}.")
        return None
    if not text.strip():
        log.warning("skipping %s: the record's text is empty.", where)
        return None
    rid = record.get(config.id_field)
    doc_id = f"{path.stem}/{lineno}" if rid is None or rid == "" else str(rid)
    title = record.get(config.title_field)
    meta = {k: v for k, v in record.items() if k not in (config.id_field, config.text_field, config.title_field)}
    meta.setdefault("source", f"{path.name}:{lineno}")
    return Document(id=doc_id, text=text, title=str(title) if title is not None else "", metadata=meta)


def _dedupe(docs: list[Document], config: IngestConfig) -> list[Document]:
    seen: dict[str, Document] = {}
    for d in docs:
        first = seen.get(d.id)
        if first is None:
            seen[d.id] = d
            continue
        _problem(
            config,
            f"duplicate document id {d.id!r} ({first.metadata.get('source')} and {d.metadata.get('source')}).",
            "give every record a unique id (the first one is kept with on_error='skip').",
        )
    return list(seen.values())


def _problem(config: IngestConfig, message: str, fix: str) -> None:
    """Raise (``on_error="raise"``) or log and skip (``on_error="skip"``)."""
    if config.on_error == "raise":
        raise InputError(message, fix=fix + " Or pass on_error='skip' to leave such inputs out.")
    log.warning("skipping: %s (%s)", message, fix)
