"""Offline tiktoken: token counting for chunking, budgets and prompts, with no download.

``tiktoken.get_encoding("cl100k_base")`` fetches its BPE ranks file from
``openaipublic.blob.core.windows.net`` on first use. llama-index-core ships the same
files (``llama_index/core/_static/tiktoken_cache``, named by the sha1 of their download URL,
byte-identical to the published files), so we build the :class:`tiktoken.Encoding` directly
from that bundled copy, after checking its published sha256.

We read and parse the file ourselves instead of calling ``tiktoken.load.load_tiktoken_bpe``:
that function routes local paths through tiktoken's download cache, which writes a copy of
the file into ``$TIKTOKEN_CACHE_DIR`` (or ``/tmp/data-gym-cache``) and raises when a
user-chosen cache directory is not writable. The format is one ``base64(token) rank`` pair
per line; parsing it is three lines. The regex split patterns and special tokens are those of
``tiktoken_ext/openai_public.py`` (tiktoken 0.14).

Documents are untrusted, so every method encodes with :meth:`tiktoken.Encoding.encode_ordinary`:
a document containing the text ``<|endoftext|>`` is counted as plain text, never as a special
token (and never raises).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from branchwise.errors import InputError, MissingDependencyError

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


@dataclass(frozen=True, slots=True)
class _EncodingSpec:
    """Where a bundled encoding lives and how to assemble it."""

    filename: str  # sha1 of the download URL: tiktoken's own cache key
    sha256: str  # the hash tiktoken checks for the downloaded file
    pat_str: str
    special_tokens: dict[str, int]


_ENCODINGS: dict[str, _EncodingSpec] = {
    "cl100k_base": _EncodingSpec(
        filename="9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=_CL100K_PAT,
        special_tokens={
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": _EncodingSpec(
        filename="fb374d419588a4632f3f557e76b4b70aebbca790",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT,
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}

#: The encoding used for chunk sizes and token budgets throughout branchwise.
DEFAULT_ENCODING = "cl100k_base"


def bundled_tiktoken_dir() -> Path:
    """The folder of BPE files bundled with llama-index-core."""
    try:
        import llama_index.core as li_core
    except ImportError as e:  # pragma: no cover - llama-index-core is a core dependency
        raise MissingDependencyError("llama-index-core", "core", "Offline tiktoken encodings") from e
    return Path(li_core.__file__).resolve().parent / "_static" / "tiktoken_cache"


def _parse_bpe(data: bytes, source: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if not ranks:
        raise InputError(f"tiktoken BPE file {source} is empty.", fix="reinstall llama-index-core.")
    return ranks


def _load_encoding(name: str):  # -> tiktoken.Encoding
    try:
        import tiktoken
    except ImportError as e:  # pragma: no cover - tiktoken is a core dependency
        raise MissingDependencyError("tiktoken", "core", "Token counting") from e
    spec = _ENCODINGS.get(name)
    if spec is None:
        raise InputError(
            f"tiktoken encoding {name!r} is not bundled for offline use.",
            fix=f"use one of {sorted(_ENCODINGS)}.",
        )
    path = bundled_tiktoken_dir() / spec.filename
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise MissingDependencyError("llama-index-core", "core", f"The offline {name} encoding") from e
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise InputError(
            f"the bundled {name} file {path} does not match its published sha256.",
            fix="reinstall llama-index-core (pip install --force-reinstall llama-index-core).",
        )
    return tiktoken.Encoding(
        name=name,
        pat_str=spec.pat_str,
        mergeable_ranks=_parse_bpe(data, path),
        special_tokens=dict(spec.special_tokens),
    )


class Tokenizer:
    """A tiktoken encoding built offline, with the few operations branchwise needs.

    Loading an encoding parses ~100k BPE ranks (a few hundred ms), so get instances through
    :func:`get_tokenizer`, which caches one per encoding name.

    Args:
        encoding: ``"cl100k_base"`` (default) or ``"o200k_base"``.
    """

    def __init__(self, encoding: str = DEFAULT_ENCODING):
        self.name = encoding
        self._enc = _load_encoding(encoding)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (special-token strings are ordinary text)."""
        return self._enc.encode_ordinary(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; a multi-byte character cut in half decodes to U+FFFD."""
        return self._enc.decode(list(ids))

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        return len(self._enc.encode_ordinary(text))

    def truncate(self, text: str, n: int) -> str:
        """The longest prefix of ``text`` of at most ``n`` tokens (``text`` itself if it fits)."""
        if n < 0:
            raise InputError(f"cannot truncate to {n} tokens.", fix="pass n >= 0.")
        ids = self._enc.encode_ordinary(text)
        if len(ids) <= n:
            return text
        # Dropping a trailing partial character keeps the prefix a clean substring.
        return self._enc.decode(ids[:n]).rstrip("\ufffd")

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r})"


@functools.lru_cache(maxsize=len(_ENCODINGS))
def get_tokenizer(encoding: str = DEFAULT_ENCODING) -> Tokenizer:
    """The shared :class:`Tokenizer` for ``encoding`` (built once per process, lazily)."""
    return Tokenizer(encoding)
