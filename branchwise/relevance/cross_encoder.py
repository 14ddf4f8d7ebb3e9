"""Cross-encoder rerankers (sentence-transformers ``CrossEncoder``): query and passage read together.

What users bring (``cross-encoder:/path/to/folder`` or a hub name such as
``cross-encoder:BAAI/bge-reranker-base`` already in the local Hugging Face cache) and the
bundled default (``default``): a MiniLM-L6 cross-encoder fine-tuned on HotpotQA supporting
facts by ``branchwise train-reranker`` (see ``branchwise/relevance/weights/default/CARD.md``).

The model loads lazily on the first call (thread-safe), runs on the GPU when one is present,
and on CPU can use dynamic int8 quantisation of its linear layers. Scores are the sigmoid of
the model's logit (one-label models), so they lie in [0, 1].

**Residual models.** A model trained with ``train-reranker --prior-weight W`` learns a
correction to the dual encoder: a pair scores ``sigmoid(logit + W * cosine)``, the cosine
being the recorded embedder's (``prior.json`` beside the weights). Serving adds the same
term; the bundled default is such a model over the bundled MiniLM embedder.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from branchwise.errors import InputError, MissingDependencyError
from branchwise.files import atomic_write_json
from branchwise.models.pretrained import from_pretrained

if TYPE_CHECKING:
    from branchwise.models.base import Embedder

log = logging.getLogger(__name__)

#: the bundled default reranker (trained by ``branchwise train-reranker``; see its CARD.md)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"

#: beside a residual model's weights: ``{"embedder": name, "weight": W}``
PRIOR_FILE = "prior.json"


@dataclass(frozen=True, slots=True)
class Prior:
    """A residual model's dual-encoder term: ``weight * cosine`` by the embedder named ``embedder``."""

    embedder: str
    weight: float

    @classmethod
    def read(cls, folder: str | Path) -> "Prior | None":
        """The prior recorded in ``folder`` (None: a plain cross-encoder, or not a local folder)."""
        path = Path(folder).expanduser() / PRIOR_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(str(raw["embedder"]), float(raw["weight"]))

    def write(self, folder: str | Path) -> None:
        atomic_write_json(Path(folder) / PRIOR_FILE, {"embedder": self.embedder, "weight": self.weight})


def prior_cosines(embedder: "Embedder", query: str, passages: Sequence[str]) -> np.ndarray:
    """The dual encoder's cosine of each passage to ``query`` (vectors are L2-normalised)."""
    return np.asarray(embedder.embed(list(passages)) @ embedder.embed_query(query), dtype=np.float32)


def prior_embedder(prior: Prior, given: "Embedder | None") -> "Embedder":
    """The embedder a residual model was trained with: ``given`` when it is that model, the
    bundled MiniLM when that was it, else a clear error."""
    if given is not None and given.name == prior.embedder:
        return given
    from branchwise.models.embedders import DEFAULT_EMBEDDER_NAME, default_embedder

    if prior.embedder == DEFAULT_EMBEDDER_NAME:
        return default_embedder()
    raise InputError(f"this reranker adds the cosine of the embedder {prior.embedder!r}, which is not loaded.",
                     fix=f"open the reranker with that embedder (an index built with --embedder {prior.embedder}).")


@dataclass(frozen=True, slots=True)
class CrossEncoderConfig:
    """Settings of :class:`CrossEncoderReranker`.

    Attributes:
        max_length: tokens of query + passage read by the model (longer inputs are cut).
        batch_size: pairs per forward pass.
        device: ``"cpu"``, ``"cuda"``, ... (None: CUDA when available, else CPU).
        quantize: dynamic int8 quantisation of the linear layers on CPU (faster, nearly
            the same scores; ignored on GPU).
        threads: torch CPU threads while scoring (None: torch's default).
    """

    max_length: int = 256
    batch_size: int = 32
    device: str | None = None
    quantize: bool = False
    threads: int | None = None


class CrossEncoderReranker:
    """A cross-encoder (a transformers sequence-classification model over query-passage pairs)
    as a :class:`~branchwise.relevance.base.Reranker`.

    Pairs are sorted by length and batched (less padding); one-label models score
    ``sigmoid(logit)``, two-label models ``softmax[1]``.

    Args:
        model: a local model folder (a sentence-transformers ``CrossEncoder`` folder is a
            transformers folder), or a hub id found in the local Hugging Face cache.
        config: see :class:`CrossEncoderConfig`.
        name: the name recorded in traces (default: ``cross-encoder:<model>``).
        embedder: for a residual model (:class:`Prior`), the embedder of its cosine term when
            it is the one the model was trained with (else that one is loaded).
    """

    def __init__(self, model: str | Path, config: CrossEncoderConfig = CrossEncoderConfig(), name: str = "",
                 embedder: "Embedder | None" = None) -> None:
        self.model_ref = str(model)
        self.config = config
        self.name = name or f"cross-encoder:{self.model_ref}{'#int8' if config.quantize else ''}"
        self.prior = Prior.read(model) if Path(model).expanduser().is_dir() else None
        self._given_embedder = embedder
        self._embedder: "Embedder | None" = None
        self._loaded: tuple[Any, Any, str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any, str]:
        if self._loaded is None:
            self._loaded = load_cross_encoder(self.model_ref, self.config)
            if self.prior is not None:
                self._embedder = prior_embedder(self.prior, self._given_embedder)
        return self._loaded

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        import torch

        with self._lock:
            model, tokenizer, device = self._load()
            old = torch.get_num_threads()
            if self.config.threads:
                torch.set_num_threads(self.config.threads)
            residual = None
            if self._embedder is not None and self.prior is not None:
                residual = self.prior.weight * prior_cosines(self._embedder, query, passages)
            try:
                return score_pairs(model, tokenizer, query, passages, max_length=self.config.max_length,
                                   batch_size=self.config.batch_size, device=device, residual=residual)
            finally:
                if self.config.threads:
                    torch.set_num_threads(old)


def score_pairs(model: Any, tokenizer: Any, query: str, passages: Sequence[str], *, max_length: int,
                batch_size: int, device: str = "cpu", residual: np.ndarray | None = None,
                bf16: bool = False) -> list[float]:
    """P(relevant) of each passage for ``query`` by a sequence-classification ``model``.

    Pairs are sorted by length and batched; a one-label model scores ``sigmoid(logit +
    residual)`` (``residual``: one value per passage, a residual model's prior term, else 0), a
    two-label model ``softmax[1]``. ``bf16``: autocast to bfloat16 on CPU (training's validation).
    """
    import torch

    order = sorted(range(len(passages)), key=lambda i: len(passages[i]))
    out = [0.0] * len(passages)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and device == "cpu"):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([query] * len(idx), [passages[i] for i in idx], truncation="only_second",
                            max_length=max_length, padding=True, return_tensors="pt").to(device)
            logits = model(**enc).logits.float()
            if logits.shape[1] == 1:
                z = logits[:, 0]
                if residual is not None:
                    z = z + torch.as_tensor(residual[idx]).to(z)
                probs = torch.sigmoid(z)
            else:
                probs = torch.softmax(logits, -1)[:, 1]
            for i, p in zip(idx, probs.tolist()):
                out[i] = float(p)
    return out


def load_cross_encoder(model: str, config: CrossEncoderConfig = CrossEncoderConfig()) -> tuple[Any, Any, str]:
    """``(model, tokenizer, device)`` of a cross-encoder folder or cached hub id (never
    downloading when ``HF_HUB_OFFLINE`` is set, as branchwise's entry points set it)."""
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:  # pragma: no cover - core dependencies
        raise MissingDependencyError("transformers", "embedded", "a cross-encoder reranker") from e
    path = Path(model).expanduser()
    local = path.is_dir()
    if not local and ("/" not in model or model.startswith((".", "/", "~"))):
        raise InputError(f"cross-encoder model {model!r} is not a folder.",
                         fix="pass cross-encoder:/path/to/model-folder or a hub id like BAAI/bge-reranker-base.")
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    offline = local or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    ref = str(path) if local else model
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref, local_files_only=offline)
        net = from_pretrained(AutoModelForSequenceClassification, ref, local_files_only=offline)
    except OSError as e:
        raise InputError(f"cannot load the cross-encoder {model!r}: {e}",
                         fix="download it once (hf download ...) and pass its folder, "
                             "or unset HF_HUB_OFFLINE to let transformers fetch it.") from e
    net = net.eval().to(device)  # built in fp32 (the weights may be stored in fp16)
    if config.quantize and device == "cpu":
        import warnings

        with warnings.catch_warnings():  # torch.ao's dynamic quantisation warns it is moving to torchao
            warnings.simplefilter("ignore")
            net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
    log.info("loaded cross-encoder %s on %s%s", model, device, " (int8)" if config.quantize and device == "cpu" else "")
    return net, tokenizer, device


def default_reranker(config: CrossEncoderConfig = CrossEncoderConfig(),
                     embedder: "Embedder | None" = None) -> CrossEncoderReranker:
    """The bundled default reranker (a clear error if this install lacks its weights)."""
    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise InputError(f"the bundled default reranker is missing from {DEFAULT_MODEL_DIR}.",
                         fix="reinstall branchwise, or train one with `branchwise train-reranker --out DIR` "
                             "and pass --reranker cross-encoder:DIR.")
    return CrossEncoderReranker(DEFAULT_MODEL_DIR, config, name="default:int8" if config.quantize else "default",
                                embedder=embedder)
