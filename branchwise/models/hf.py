"""transformers backend (``hf:/path/or/id``): a local causal LM, batched, GPU when available.

This is the backend for real hardware: ``device_map="auto"`` (accelerate) spreads a model
over the available GPUs, prompts are left-padded into batches, and continuation scoring
reads only the last position's logits (``logits_to_keep=1``) for a whole batch of prompts
in one forward pass — the navigator's slates then cost one GPU call per step.

Loads are ``local_files_only=True``: a hub id resolves only if it is already in the local
Hugging Face cache; nothing is downloaded. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from branchwise.errors import BackendError, InputError, MissingDependencyError
from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion
from branchwise.models.json_output import complete_json, schema_hint
from branchwise.models.pretrained import from_pretrained

log = logging.getLogger(__name__)

_HF_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
DType = Literal["auto", "float32", "float16", "bfloat16"]


def ensure_hf_offline() -> None:
    """Make Hugging Face libraries offline for this process unless the user said otherwise.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once, at import, and without it a hub id retries
    for 23-70 s before failing (see OFFLINE.md). Every HF load in branchwise also passes
    ``local_files_only=True``; this closes the remaining doors (telemetry, model-card
    lookups) when called before the first import. ``setdefault`` keeps an explicit user
    setting.
    """
    for key, value in _HF_OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


@dataclass(frozen=True, slots=True)
class HFConfig:
    """Settings of :class:`HFLLM`.

    Attributes:
        device_map: accelerate placement: None picks ``"auto"`` when CUDA is available and
            ``"cpu"`` otherwise; or pass ``"cuda:0"``, ``"balanced"``...
        dtype: weights dtype; ``"auto"`` uses the checkpoint's (bf16 for most modern LMs).
        batch_size: prompts per forward pass / ``generate`` call.
        max_input_tokens: refuse prompts longer than this (None: the model's
            ``max_position_embeddings``).
    """

    device_map: str | None = None
    dtype: DType = "auto"
    batch_size: int = 8
    max_input_tokens: int | None = None


class _StopOnStrings:
    """Stop a row once its decoded continuation contains a stop string.

    transformers' own ``stop_strings`` precomputes token/string overlaps from the vocabulary
    and fails on some tokenizers (word-level ones); decoding the new tokens of each row is
    vocabulary-agnostic and cheap at the batch sizes used here.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int, torch: Any) -> None:
        self._tok, self._stops, self._start, self._torch = tokenizer, tuple(stops), prompt_len, torch

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        texts = self._tok.batch_decode(input_ids[:, self._start :], skip_special_tokens=True)
        done = [any(s in t for s in self._stops) for t in texts]
        return self._torch.tensor(done, dtype=self._torch.bool, device=input_ids.device)


class HFLLM:
    """A transformers causal LM implementing the LLM protocol, with batched calls.

    Args:
        model: a local folder, or a hub id already present in the local HF cache.
        config: device placement, dtype, batch size.
    """

    def __init__(self, model: str, config: HFConfig | None = None) -> None:
        ensure_hf_offline()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - core dependencies
            raise MissingDependencyError("transformers", "hf", "the hf: backend") from e
        self._torch = torch
        self.config = config or HFConfig()
        path = Path(model).expanduser()
        self.name = path.name if path.is_dir() else model
        device_map = self.config.device_map or ("auto" if torch.cuda.is_available() else "cpu")
        t0 = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
            self.model = from_pretrained(
                AutoModelForCausalLM, model, local_files_only=True, device_map=device_map, dtype=self.config.dtype
            )
        except OSError as e:
            raise InputError(
                f"could not load a transformers model from {model!r} with local files only: {e}",
                fix="pass hf:/path/to/a/local/model/folder (nothing is downloaded at run time).",
            ) from e
        self.model.eval()
        self.tokenizer.padding_side = "left"  # generation and last-position logits need it
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(
                f"the tokenizer of {model!r} has no chat template.",
                fix="use an instruct/chat model, or set tokenizer.chat_template in its tokenizer_config.json.",
            )
        self._max_input = self.config.max_input_tokens or int(
            getattr(self.model.config, "max_position_embeddings", 0) or 1 << 30
        )
        self._lock = threading.Lock()
        log.info("loaded %s on %s in %.1f s", self.name, device_map, time.perf_counter() - t0)

    # -- helpers ------------------------------------------------------------------------
    def _render(self, messages: Sequence[Message]) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in messages], tokenize=False, add_generation_prompt=True
            )
        )

    def _encode(self, prompts: list[str], suffixes: list[list[int]] | None = None) -> dict[str, Any]:
        """Left-padded batch (prompt ids + optional suffix ids) with explicit positions."""
        torch = self._torch
        rows = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if suffixes is not None:
            rows = [r + s for r, s in zip(rows, suffixes)]
        for r in rows:
            if len(r) > self._max_input:
                raise InputError(
                    f"a prompt has {len(r)} tokens, more than the model accepts ({self._max_input}).",
                    fix="shorten the prompt or raise HFConfig.max_input_tokens.",
                )
        width = max(len(r) for r in rows)
        pad = int(self.tokenizer.pad_token_id)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        device = self.model.device
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device)}

    def _chunks(self, n: int) -> list[range]:
        step = max(1, self.config.batch_size)
        return [range(i, min(n, i + step)) for i in range(0, n, step)]

    # -- generation -----------------------------------------------------------------------
    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion:
        return self.chat_batch([messages], params)[0]

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]:
        """Generate for a batch of prompts (left-padded, ``batch_size`` at a time)."""
        prompts = [self._render(m) for m in batch]
        out: list[Completion] = []
        for idx in self._chunks(len(prompts)):
            out.extend(self._generate([prompts[i] for i in idx], params))
        return out

    def _generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        torch = self._torch
        enc = self._encode(prompts)
        enc.pop("position_ids")  # generate() derives positions from the attention mask
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": params.temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            kwargs["temperature"] = params.temperature
        if params.stop:
            from transformers import StoppingCriteriaList

            stop = _StopOnStrings(self.tokenizer, params.stop, enc["input_ids"].shape[1], torch)
            kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
        t0 = time.perf_counter()
        with self._lock, torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)  # scoped: fork_rng restores the global RNG afterwards
            gen = self.model.generate(**enc, **kwargs)
        latency = (time.perf_counter() - t0) / len(prompts)
        n_in = enc["input_ids"].shape[1]
        eos = self.tokenizer.eos_token_id
        results = []
        for i, row in enumerate(gen[:, n_in:].tolist()):
            pad = self.tokenizer.pad_token_id
            ended = eos in row
            new = row[: row.index(eos)] if ended else [t for t in row if t != pad]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            hit_stop = False
            for s in params.stop:
                if s in text:
                    text, hit_stop = text[: text.index(s)], True
            results.append(
                Completion(
                    text=text,
                    prompt_tokens=int(enc["attention_mask"][i].sum()),
                    completion_tokens=len(new),
                    latency_s=latency,
                    finish_reason="stop" if ended or hit_stop or len(new) < params.max_tokens else "length",
                )
            )
        return results

    def chat_json(
        self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams = GenParams()
    ) -> StructuredCompletion:
        """Generation with the schema in a system message, lenient parse, one retry."""
        hint = schema_hint(schema)
        return complete_json(lambda p: self.chat([hint, *messages], p), params, name=self.name, attempts=2)

    # -- scoring --------------------------------------------------------------------------
    def continuation_logprobs(self, messages: Sequence[Message], continuations: Sequence[str]) -> list[float]:
        return self.continuation_logprobs_batch([messages], continuations)[0]

    def continuation_logprobs_batch(
        self, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
    ) -> list[list[float]]:
        """One forward pass per ``batch_size`` prompts for all first tokens; multi-token
        continuations add one pass each over prompt + continuation (last positions only)."""
        conts = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations]
        if not conts or any(not c for c in conts):
            raise InputError(f"continuations {list(continuations)!r} must be non-empty text.", fix='pass e.g. ["Yes", "No"].')
        prompts = [self._render(m) for m in batch]
        out: list[list[float]] = [[0.0] * len(conts) for _ in prompts]
        for idx in self._chunks(len(prompts)):
            chunk = [prompts[i] for i in idx]
            first = self._last_logprobs(chunk, None, 1)[:, -1, :]
            for j, ids in enumerate(conts):
                for row, i in enumerate(idx):
                    out[i][j] = float(first[row, ids[0]])
                if len(ids) > 1:
                    tail = self._last_logprobs(chunk, [ids[:-1]] * len(chunk), len(ids) - 1)
                    for row, i in enumerate(idx):
                        out[i][j] += float(sum(tail[row, k, ids[k + 1]] for k in range(len(ids) - 1)))
        return out

    def _last_logprobs(self, prompts: list[str], suffixes: list[list[int]] | None, keep: int) -> Any:
        torch = self._torch
        enc = self._encode(prompts, suffixes)
        with self._lock, torch.inference_mode():
            logits = self.model(**enc, logits_to_keep=keep, use_cache=False).logits
        return torch.log_softmax(logits.float(), dim=-1).cpu()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
