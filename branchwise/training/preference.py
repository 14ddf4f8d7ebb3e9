"""Preference fine-tuning of a compressor LM on CoLoR pairs: ORPO (default) or DPO.

CoLoR (arXiv 2412.18232) trains its compressor with ORPO on (prompt, chosen, rejected)
triples where the chosen compression is the shortest one that still works (see
:mod:`branchwise.compression.color`). TRL is not a dependency, so both objectives are
implemented here on plain transformers + torch:

* **ORPO** (Hong, Lee & Thorne 2024, arXiv 2403.07691) needs no reference model:
  ``L = NLL(chosen) + λ · −log σ(log odds(chosen) − log odds(rejected))`` with
  ``odds(y) = P(y) / (1 − P(y))`` and ``log P(y)`` the *mean* token log-probability of the
  response, so the SFT term teaches the format and the odds-ratio term pushes the
  rejected (longer or failing) compression down.
* **DPO** (Rafailov et al. 2023, arXiv 2305.18290):
  ``L = −log σ(β · [(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])`` with
  summed response log-probabilities. The reference log-probabilities are computed once
  before training with the initial weights, so no second model sits in memory.

Only response tokens are scored (prompt positions get label ``-100``); chosen and rejected
go through the model in one padded batch.

**CPU check** (what the tests run): ``base_model="tiny"`` builds a randomly initialised
2-layer Llama from a config with the bundled all-MiniLM-L6-v2 WordPiece tokenizer (no
download), trains a few steps on a handful of pairs, and saves a folder that
``AutoModelForCausalLM.from_pretrained(out, local_files_only=True)`` loads back.

**GPU-scale path**: point ``base_model`` at a local instruction model folder (e.g.
Qwen2.5-1.5B/7B-Instruct in HF format) and set ``device="cuda"`` (or ``device_map="auto"``
to shard across GPUs), ``dtype="bfloat16"``, ``gradient_checkpointing=True``,
``batch_size`` 4-8 with ``grad_accum`` 4-8 (effective 32), ``learning_rate`` 5e-6..8e-6,
``beta`` 0.1 for ORPO (λ in the paper) and 1-3 epochs over a few thousand pairs mined with
``branchwise train-color``. Use the result as the summariser of the abstractive
compressor (``hf:/path/to/out``).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from branchwise.errors import InputError, MissingDependencyError
from branchwise.compression.color import PreferencePair
from branchwise.models.pretrained import from_pretrained
from branchwise.training.loop import TrainResult, finish, run_steps, seeded

__all__ = ["PreferenceResult", "PreferenceTrainConfig", "dpo_loss", "orpo_loss", "read_preferences", "train_preference"]

TINY = "tiny"


@dataclass(frozen=True, slots=True)
class PreferenceTrainConfig:
    """Settings of :func:`train_preference`.

    Attributes:
        base_model: a local HF causal-LM folder, or ``"tiny"`` for the random CPU check model.
        objective: ``"orpo"`` or ``"dpo"``.
        beta: ORPO's λ (odds-ratio weight) or DPO's β (KL strength).
        learning_rate: AdamW learning rate.
        epochs: passes over the pairs.
        batch_size: pairs per forward pass.
        grad_accum: forward passes per optimiser step.
        max_steps: stop after this many optimiser steps (None: all epochs).
        max_prompt_tokens: prompts are cut from the left (keeping the question end) to this.
        max_response_tokens: responses are cut to this.
        device: "cpu", "cuda", ...; ignored when ``device_map`` is set.
        device_map: passed to ``from_pretrained`` (e.g. "auto") for multi-GPU sharding.
        dtype: "float32" or "bfloat16" (GPU).
        gradient_checkpointing: trade compute for memory on large models.
        seed: shuffling / initialisation seed (scoped: global RNG state is restored).
    """

    base_model: str = TINY
    objective: Literal["orpo", "dpo"] = "orpo"
    beta: float = 0.1
    learning_rate: float = 5e-5
    epochs: int = 1
    batch_size: int = 2
    grad_accum: int = 1
    max_steps: int | None = None
    max_prompt_tokens: int = 384
    max_response_tokens: int = 128
    device: str = "cpu"
    device_map: str | None = None
    dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = False
    seed: int = 0


PreferenceResult = TrainResult  # losses per optimiser step and where the model was saved


def read_preferences(path: Path) -> list[PreferencePair]:
    """Pairs from a JSONL file with ``prompt``, ``chosen``, ``rejected`` (and optional ``meta``)."""
    pairs = []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            r = json.loads(line)
            if not all(isinstance(r.get(k), str) for k in ("prompt", "chosen", "rejected")):
                raise InputError(
                    f"{path}:{n} lacks prompt/chosen/rejected strings.", fix="export pairs with train-color."
                )
            pairs.append(PreferencePair(r["prompt"], r["chosen"], r["rejected"], dict(r.get("meta", {}))))
    return pairs


def orpo_loss(logp_chosen_mean: Any, logp_rejected_mean: Any, nll_chosen: Any, lam: float) -> tuple[Any, Any]:
    """ORPO loss per pair; returns (loss, log odds ratio). Inputs are mean token log-probs."""
    import torch
    import torch.nn.functional as F

    def log1mexp(x: torch.Tensor) -> torch.Tensor:  # log(1 - exp(x)) for x < 0, stable
        return torch.log(-torch.expm1(x.clamp(max=-1e-6)))

    log_odds = (logp_chosen_mean - logp_rejected_mean) - (log1mexp(logp_chosen_mean) - log1mexp(logp_rejected_mean))
    return nll_chosen - lam * F.logsigmoid(log_odds), log_odds


def dpo_loss(pi_w: Any, pi_l: Any, ref_w: Any, ref_l: Any, beta: float) -> tuple[Any, Any]:
    """DPO loss per pair from summed response log-probs; returns (loss, implicit reward margin)."""
    import torch.nn.functional as F

    margin = beta * ((pi_w - ref_w) - (pi_l - ref_l))
    return -F.logsigmoid(margin), margin


def _load(cfg: PreferenceTrainConfig) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from branchwise.models.hf import ensure_hf_offline

    ensure_hf_offline()
    dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else torch.float32
    if cfg.base_model == TINY:
        from branchwise.models.embedders import bundled_minilm_path

        tok = AutoTokenizer.from_pretrained(str(bundled_minilm_path()), local_files_only=True)
        tok.eos_token = tok.sep_token  # WordPiece has no EOS; [SEP] ends a response
        conf = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.cls_token_id,
            eos_token_id=tok.sep_token_id,
        )
        tiny = LlamaForCausalLM(conf)
        return tiny.to(device=cfg.device, dtype=dtype), tok  # type: ignore[call-arg]  # transformers' typed wrapper
    path = Path(cfg.base_model).expanduser()
    if not path.is_dir():
        raise InputError(
            f"base model folder not found: {path}.", fix="pass a local HF model folder, or 'tiny' for the CPU check."
        )
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if cfg.device_map:
        kwargs["device_map"] = cfg.device_map
    model = from_pretrained(AutoModelForCausalLM, str(path), dtype=dtype, **kwargs)
    if not cfg.device_map:
        model = model.to(cfg.device)  # type: ignore[arg-type]  # transformers' typed wrapper
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _prompt_text(tok: Any, prompt: str) -> str:
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    return prompt + "\n"


def _encode(tok: Any, prompt: str, response: str, cfg: PreferenceTrainConfig) -> tuple[list[int], list[int]]:
    """(input_ids, labels) with the prompt masked out of the labels."""
    p = tok(_prompt_text(tok, prompt), add_special_tokens=False)["input_ids"][-cfg.max_prompt_tokens :]
    r = tok(response, add_special_tokens=False)["input_ids"][: cfg.max_response_tokens - 1] + [tok.eos_token_id]
    return p + r, [-100] * len(p) + r


def _response_logps(model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any]:
    """Summed and token-count of response log-probs for each row (one padded forward pass)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    dev = next(model.parameters()).device
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device=dev)
    labels = torch.full((len(rows), width), -100, dtype=torch.long, device=dev)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=dev)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x, device=dev)
        labels[i, : len(y)] = torch.tensor(y, device=dev)
        mask[i, : len(x)] = 1
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    keep = target != -100
    logp = torch.gather(logits.log_softmax(-1), 2, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * keep).sum(-1), keep.sum(-1).clamp(min=1)


def train_preference(
    pairs: Sequence[PreferencePair], out_dir: Path, config: PreferenceTrainConfig | None = None
) -> PreferenceResult:
    """Fine-tune a causal LM on preference pairs with ORPO or DPO; save model + tokenizer."""
    cfg = config or PreferenceTrainConfig()
    if not pairs:
        raise InputError(
            "no preference pairs to train on.", fix="export pairs first: branchwise train-color --pairs-out ..."
        )
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("torch", "core", "Preference training") from e
    start = time.perf_counter()
    rng = random.Random(cfg.seed)
    with seeded(cfg.seed):
        model, tok = _load(cfg)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        encoded = [(_encode(tok, p.prompt, p.chosen, cfg), _encode(tok, p.prompt, p.rejected, cfg)) for p in pairs]
        refs: list[tuple[float, float]] = []
        if cfg.objective == "dpo":
            model.eval()
            with torch.no_grad():
                for chosen, rejected in encoded:
                    s, _ = _response_logps(model, [chosen, rejected], tok.pad_token_id)
                    refs.append((float(s[0]), float(s[1])))
        order = list(range(len(encoded)))
        batches = []
        for _ in range(cfg.epochs):
            rng.shuffle(order)
            batches += [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        steps = len(batches) // cfg.grad_accum
        if cfg.max_steps is not None:
            steps = min(steps, cfg.max_steps)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)

        def step_loss(step: int) -> float:
            total = 0.0
            for b in batches[step * cfg.grad_accum : (step + 1) * cfg.grad_accum]:
                rows = [encoded[i][0] for i in b] + [encoded[i][1] for i in b]
                sums, counts = _response_logps(model, rows, tok.pad_token_id)
                n = len(b)
                if cfg.objective == "orpo":
                    mean = sums / counts
                    loss, _ = orpo_loss(mean[:n], mean[n:], -mean[:n], cfg.beta)
                else:
                    ref = torch.tensor([refs[i] for i in b], device=sums.device)
                    loss, _ = dpo_loss(sums[:n], sums[n:], ref[:, 0], ref[:, 1], cfg.beta)
                loss = loss.mean() / cfg.grad_accum
                loss.backward()
                total += float(loss.detach())
            return total

        losses = run_steps(model, opt, range(steps), step_loss, desc=f"{cfg.objective} training")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    meta = {"config": asdict(cfg), "pairs": len(pairs), "losses": losses}
    return finish(out_dir, "branchwise_preference.json", meta, losses, start, cfg.objective)
