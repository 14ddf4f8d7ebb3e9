"""Chunking: documents → token-bounded, sentence-aligned :class:`~branchwise.types.Chunk` s.

We use llama-index-core's ``SentenceSplitter`` (paragraphs first, then sentences, then
phrases, then words; adjacent chunks overlap) with two offline guarantees:

* token counts come from our bundled tiktoken (:mod:`branchwise.text.tokens`), passed
  as ``tokenizer=`` — llama-index's default tokenizer would otherwise build its own
  ``tiktoken`` encoding and set a process-global tokenizer;
* the sentence splitter is an untrained NLTK ``PunktSentenceTokenizer`` we construct and pass
  as ``chunking_tokenizer_fn=`` — the default goes through llama-index's ``GlobalsHelper``,
  which calls ``nltk.download`` when its data folder (or ``$NLTK_DATA``) lacks ``punkt_tab``.

``SentenceSplitter`` sizes a chunk as the sum of its pieces' token counts; BPE merges across
piece boundaries can make the joined text a token or two longer, so chunks over budget are
split again with a tighter target: every chunk's ``n_tokens`` is ≤ ``chunk_tokens``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from tqdm.auto import tqdm

from branchwise.errors import InputError
from branchwise.text.tokens import DEFAULT_ENCODING, Tokenizer, get_tokenizer
from branchwise.types import Chunk, Document

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    """Chunk sizes, in tokens of ``encoding``.

    Attributes:
        chunk_tokens: maximum tokens per chunk. 256 fits MiniLM's 256-word-piece window and
            keeps tree leaves short enough for the navigator's slates.
        overlap_tokens: tokens shared by consecutive chunks of a document, so a fact cut at
            a boundary survives whole in one of them.
        encoding: the tiktoken encoding used to count tokens.
    """

    chunk_tokens: int = 256
    overlap_tokens: int = 32
    encoding: str = DEFAULT_ENCODING

    def __post_init__(self) -> None:
        if self.chunk_tokens < 8:
            raise InputError(f"chunk_tokens={self.chunk_tokens} is too small.", fix="use at least 8 (default 256).")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise InputError(
                f"overlap_tokens={self.overlap_tokens} must be in [0, chunk_tokens={self.chunk_tokens}).",
                fix="use a smaller overlap (default 32).",
            )


def document_digest(doc: Document) -> str:
    """sha256 of a document's text: stored in each chunk so the corpus fingerprint can be
    recomputed from ``chunks.jsonl`` after incremental updates."""
    return hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


class Chunker:
    """Splits documents with a configured ``SentenceSplitter`` (built once, reused)."""

    def __init__(self, config: ChunkingConfig = ChunkingConfig()):
        self.config = config
        self.tokenizer: Tokenizer = get_tokenizer(config.encoding)
        self._splitters: dict[tuple[int, int], Callable[[str], list[str]]] = {}

    def _splitter(self, size: int, overlap: int) -> Callable[[str], list[str]]:
        key = (size, min(overlap, size - 1))
        if key not in self._splitters:
            from llama_index.core.node_parser import SentenceSplitter
            from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer_internal
            from nltk.tokenize.punkt import PunktSentenceTokenizer

            punkt = PunktSentenceTokenizer()  # default parameters: needs no downloaded data
            splitter = SentenceSplitter(
                chunk_size=size,
                chunk_overlap=key[1],
                tokenizer=self.tokenizer.encode,
                chunking_tokenizer_fn=lambda text: split_by_sentence_tokenizer_internal(text, punkt),
            )
            self._splitters[key] = splitter.split_text
        return self._splitters[key]

    def split(self, text: str) -> list[str]:
        """Split ``text`` into pieces of at most ``chunk_tokens`` tokens (empty pieces dropped)."""
        budget, overlap = self.config.chunk_tokens, self.config.overlap_tokens
        try:
            pieces = self._splitter(budget, overlap)(text)
        except ValueError as e:  # "Single token exceeded chunk size"
            raise InputError(f"cannot split text into {budget}-token chunks: {e}", fix="raise chunk_tokens.") from e
        out: list[str] = []
        for piece in pieces:
            if not piece.strip():
                continue
            out.extend(self._enforce_budget(piece, budget))
        return out

    def _enforce_budget(self, piece: str, budget: int) -> list[str]:
        """Re-split the rare piece whose joined text counts more tokens than its parts did."""
        n = self.tokenizer.count(piece)
        if n <= budget:
            return [piece]
        target = budget - (n - budget) - 2
        if target < 8:  # cannot split sensibly any more: cut by tokens
            ids = self.tokenizer.encode(piece)
            return [self.tokenizer.decode(ids[i : i + budget]) for i in range(0, len(ids), budget)]
        parts = self._splitter(target, 0)(piece)
        return [q for p in parts if p.strip() for q in self._enforce_budget(p, budget)]

    def chunk(self, doc: Document) -> list[Chunk]:
        """Chunks of one document, ids ``"{doc.id}#{ordinal}"``; metadata keeps the document's."""
        digest = document_digest(doc)
        out = []
        for i, text in enumerate(self.split(doc.text)):
            out.append(
                Chunk(
                    id=f"{doc.id}#{i}",
                    doc_id=doc.id,
                    text=text,
                    title=doc.title,
                    ordinal=i,
                    n_tokens=self.tokenizer.count(text),
                    metadata={**doc.metadata, "doc_sha256": digest},
                )
            )
        return out


def chunk_documents(
    docs: Sequence[Document], config: ChunkingConfig = ChunkingConfig(), *, progress: bool = False
) -> list[Chunk]:
    """Chunk every document, in order. Deterministic: the same input gives the same chunks."""
    chunker = Chunker(config)
    chunks: list[Chunk] = []
    for doc in tqdm(docs, desc="chunking", unit="doc", disable=not progress):
        chunks.extend(chunker.chunk(doc))
    log.info("split %d documents into %d chunks", len(docs), len(chunks))
    return chunks
