"""What ``branchwise serve`` serves, and how: frozen, documented settings.

* :class:`ServedIndexSpec` — one index under its own name, with its optional API keys;
* :class:`ServeConfig` — the interface (loopback by default), the work directory uploads are
  confined to, request limits and the queue in front of the shared LLM.

Index names appear in URLs and as OpenAI ``model`` names: ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from branchwise.errors import InputError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: the shortest API key accepted (a short key is guessable)
MIN_KEY_CHARS = 16


def check_name(name: str) -> str:
    """``name`` if it is a valid index name (else an :class:`InputError`)."""
    if not NAME_RE.match(name or ""):
        raise InputError(f"{name!r} is not a valid index name.",
                         fix="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return name


@dataclass(frozen=True, slots=True)
class ServedIndexSpec:
    """One served index.

    Attributes:
        name: the name it is reached under (URL segment, OpenAI ``model``).
        path: the index directory (built with ``branchwise index``).
        keys: API keys that may use it (``Authorization: Bearer KEY``); empty: no key needed.
        embedder: its embedder's spec given again (e.g. with the credentials the manifest's
            recorded spec was stripped of); ``None``: the recorded spec.
    """

    name: str
    path: Path
    keys: tuple[str, ...] = ()
    embedder: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        short = [k for k in self.keys if len(k) < MIN_KEY_CHARS]
        if short:
            raise InputError(f"an API key of index {self.name!r} is shorter than {MIN_KEY_CHARS} characters.",
                             fix="use long random keys, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`.")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """How the server runs.

    Attributes:
        host: interface to bind; loopback unless asked otherwise.
        port: TCP port.
        workdir: the only directory the server writes to (uploaded documents go to
            ``workdir/uploads/<index>/<batch>/``).
        max_body_bytes: largest request body accepted (413 above it), uploads included.
        max_question_chars: longest question (and longest history turn) accepted.
        max_messages: most chat messages in one request.
        concurrency: agent runs (and index updates) at once. One local llama.cpp model
            serialises its calls, so 1 is right for it; a remote LLM server can take more.
        queue_size: requests waiting for a run slot at most, over all indexes (429 above).
        queue_per_index: requests of one index waiting at most, so one busy index cannot
            fill the whole queue (429 above).
        trace_limit: traces kept in memory for ``GET /v1/traces/{id}`` (oldest dropped first).
        variants_per_index: assembled option variants (``scorer``, budgets, ...) kept per index.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workdir: Path = Path("branchwise-serve")
    max_body_bytes: int = 10 * 2**20
    max_question_chars: int = 4000
    max_messages: int = 64
    concurrency: int = 1
    queue_size: int = 32
    queue_per_index: int = 16
    trace_limit: int = 256
    variants_per_index: int = 8

    def __post_init__(self) -> None:
        bad = [n for n in ("max_body_bytes", "max_question_chars", "max_messages", "concurrency", "queue_size",
                           "queue_per_index", "trace_limit", "variants_per_index") if getattr(self, n) < 1]
        if not 0 <= self.port < 65536:
            bad.append("port")
        if bad:
            raise InputError(f"server settings out of range: {', '.join(bad)}.",
                             fix="use positive limits and a port in 0-65535 (0: any free port).")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_index_args(args: Iterable[str]) -> list[tuple[str, Path]]:
    """``DIR`` or ``NAME=DIR`` arguments → ``(name, path)``; a bare ``DIR`` is named after its folder."""
    out: list[tuple[str, Path]] = []
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = Path(arg).resolve().name, arg
        out.append((check_name(name), Path(path)))
    dupes = sorted({n for n, _ in out if [m for m, _ in out].count(n) > 1})
    if dupes:
        raise InputError(f"two indexes would be served as {dupes}.", fix="name them: branchwise serve NAME=DIR ...")
    return out


def parse_keys(pairs: Sequence[str] = (), keys_file: Path | None = None) -> dict[str, tuple[str, ...]]:
    """API keys by index name, from ``NAME=KEY`` pairs and a JSON file ``{"name": ["key", ...]}``."""
    keys: dict[str, list[str]] = {}
    if keys_file is not None:
        try:
            data = json.loads(Path(keys_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read the keys file {keys_file}: {e}.",
                             fix='write it as JSON: {"index-name": ["key1", "key2"]}.') from e
        if not isinstance(data, Mapping) or not all(
                isinstance(v, list) and all(isinstance(k, str) for k in v) for v in data.values()):
            raise InputError(f"the keys file {keys_file} is not a mapping of index names to lists of keys.",
                             fix='write it as JSON: {"index-name": ["key1", "key2"]}.')
        for name, ks in data.items():
            keys.setdefault(str(name), []).extend(ks)
    for pair in pairs:
        name, sep, key = pair.partition("=")
        if not sep or not name or not key:
            raise InputError(f"--key {pair.split('=')[0]}=... is not NAME=KEY.", fix="e.g. --key docs=$DOCS_KEY")
        keys.setdefault(name, []).append(key)
    return {n: tuple(dict.fromkeys(ks)) for n, ks in keys.items()}
