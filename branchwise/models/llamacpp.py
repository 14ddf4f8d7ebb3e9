"""llama.cpp backend (``default`` and ``llamacpp:/path/model.gguf``) via llama-cpp-python.

Three capabilities, one model object:

* :meth:`LlamaCppLLM.chat` — ``create_chat_completion`` with the GGUF's own chat template,
  greedy by default so results are reproducible and cacheable.
* :meth:`LlamaCppLLM.chat_json` — decoding constrained by a GBNF grammar compiled from the
  JSON schema (``LlamaGrammar.from_json_schema``): the small embedded model cannot produce
  malformed JSON, only JSON truncated by ``max_tokens``, which we detect and retry.
* :meth:`LlamaCppLLM.continuation_logprobs` — P("Yes")-style scoring from one forward pass,
  implemented in :mod:`branchwise.models.llamacpp_scoring` without ``logits_all``.

llama.cpp keeps one KV cache per context, so calls are serialised by a lock (the Gradio UI
serves sessions concurrently) and batches are ordered so consecutive prompts share the
longest prefix, which llama.cpp then does not recompute.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from branchwise.errors import BackendError, InputError, MissingDependencyError
from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion
from branchwise.models.json_output import complete_json
from branchwise.models.llamacpp_scoring import PrefixScorer, prefix_order

log = logging.getLogger(__name__)


def default_threads() -> int:
    """``BRANCHWISE_THREADS``, else the CPUs this process may run on (cgroup/affinity aware).

    llama.cpp slows down sharply when given more threads than cores, so the affinity mask
    (what ``nproc`` reports) is used rather than the machine's total CPU count.
    """
    env = os.environ.get("BRANCHWISE_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError as e:
            raise InputError(f"BRANCHWISE_THREADS={env!r} is not an integer.", fix="set it to e.g. 2.") from e
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class LlamaCppConfig:
    """Settings of :class:`LlamaCppLLM`.

    Attributes:
        n_ctx: context window in tokens (prompt + answer). 4096 fits a question, a slate of
            ten ~250-token passages and an answer; the KV cache costs ~110 MB at 4096 for
            the 1.5B model.
        n_threads: CPU threads (None: ``BRANCHWISE_THREADS`` or all cores).
        n_batch: prompt tokens evaluated per llama.cpp decode call.
        seed: sampling seed used when a call asks for temperature > 0 without its own seed.
        n_gpu_layers: layers to offload when llama.cpp was built with GPU support (-1: all).
        json_retries: extra attempts of :meth:`LlamaCppLLM.chat_json` after an unparsable
            (e.g. truncated) answer; each retry doubles ``max_tokens``.
        prefix_cache: keep the KV cache of the longest prompt prefix shared with the
            previous call (a slate of passages under one question then costs only the
            passages). llama.cpp rounds differently for different batch shapes, so with it
            a greedy answer can differ from a cold-cache run in a rare near-tie (scores
            differ by ~1e-3); set False for bit-identical results whatever the call order.
    """

    n_ctx: int = 4096
    n_threads: int | None = None
    n_batch: int = 512
    seed: int = 0
    n_gpu_layers: int = 0
    json_retries: int = 1
    prefix_cache: bool = True


class LlamaCppLLM:
    """A GGUF chat model in-process. Thread-safe (calls are serialised).

    Args:
        model_path: the ``.gguf`` file.
        config: context size, threads, batching.
        name: the model name used in cache keys and manifests (default: the file name).
    """

    def __init__(self, model_path: str | Path, config: LlamaCppConfig | None = None, name: str | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise MissingDependencyError("llama-cpp-python", "embedded", "the llama.cpp backend") from e
        self.config = config or LlamaCppConfig()
        self.model_path = Path(model_path)
        self.name = name or self.model_path.name
        threads = self.config.n_threads or default_threads()
        t0 = time.perf_counter()
        try:
            self._llm = Llama(
                model_path=str(self.model_path),
                n_ctx=self.config.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=self.config.n_batch,
                seed=self.config.seed,
                n_gpu_layers=self.config.n_gpu_layers,
                logits_all=False,  # never: it would keep n_ctx x 151k floats (~2.5 GB)
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise BackendError(
                f"llama.cpp could not load {self.model_path}: {e}.",
                fix="check that the file is a complete GGUF model (re-assemble it by deleting it).",
            ) from e
        self.load_s = time.perf_counter() - t0
        self._lock = threading.RLock()
        self._scorer = PrefixScorer(self._llm, reuse_prefix=self.config.prefix_cache)
        self._grammars: dict[str, Any] = {}
        log.info("loaded %s in %.1f s (n_ctx=%d, threads=%d)", self.name, self.load_s, self.config.n_ctx, threads)

    # -- generation ---------------------------------------------------------------------
    def _create(self, messages: Sequence[Message], params: GenParams, grammar: Any = None) -> Completion:
        kwargs: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "stop": list(params.stop) or None,
            "seed": params.seed if params.temperature > 0 else self.config.seed,
            "grammar": grammar,
        }
        t0 = time.perf_counter()
        with self._lock:
            if not self.config.prefix_cache:
                self._llm.reset()
            try:
                resp: Any = self._llm.create_chat_completion(**kwargs)
            except ValueError as e:
                if "context window" in str(e) or "exceed" in str(e):
                    raise InputError(
                        f"the prompt does not fit the model's context ({self.config.n_ctx} tokens): {e}.",
                        fix="shorten the prompt (fewer/shorter passages) or raise LlamaCppConfig.n_ctx.",
                    ) from e
                raise BackendError(f"llama.cpp generation failed: {e}.") from e
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=time.perf_counter() - t0,
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def chat(self, messages: Sequence[Message], params: GenParams = GenParams()) -> Completion:
        return self._create(messages, params)

    def chat_batch(self, batch: Sequence[Sequence[Message]], params: GenParams = GenParams()) -> list[Completion]:
        """Generate for each prompt, in prefix-sharing order (results in input order)."""
        tokens = [self._prompt_tokens(m) for m in batch]
        out: dict[int, Completion] = {}
        for i in prefix_order(tokens):
            out[i] = self._create(batch[i], params)
        return [out[i] for i in range(len(batch))]

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import JSON_GBNF

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            try:
                self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as e:  # llama.cpp's converter rejects some schema features
                log.warning("schema not expressible as a grammar (%s); constraining to generic JSON", e)
                self._grammars[key] = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        return self._grammars[key]

    def chat_json(
        self, messages: Sequence[Message], schema: dict[str, Any], params: GenParams = GenParams()
    ) -> StructuredCompletion:
        """Grammar-constrained JSON; lenient repair, then retries with more tokens."""
        grammar = self._grammar(schema)
        return complete_json(
            lambda p: self._create(messages, p, grammar=grammar),
            params,
            name=self.name,
            attempts=1 + max(0, self.config.json_retries),
        )

    # -- scoring ------------------------------------------------------------------------
    def _prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        with self._lock:
            return self._scorer.prompt_tokens(messages)

    def continuation_logprobs(self, messages: Sequence[Message], continuations: Sequence[str]) -> list[float]:
        return self.continuation_logprobs_batch([messages], continuations)[0]

    def continuation_logprobs_batch(
        self, batch: Sequence[Sequence[Message]], continuations: Sequence[str]
    ) -> list[list[float]]:
        """Score every prompt; prompts sharing a prefix are evaluated back to back."""
        if not continuations:
            raise InputError("continuation_logprobs needs at least one continuation.", fix='pass e.g. ["Yes", "No"].')
        with self._lock:
            tokens = [self._scorer.prompt_tokens(m) for m in batch]
            for t in tokens:
                if len(t) + 8 > self.config.n_ctx:
                    raise InputError(
                        f"a scoring prompt has {len(t)} tokens, more than the context ({self.config.n_ctx}).",
                        fix="shorten the prompt or raise LlamaCppConfig.n_ctx.",
                    )
            out: dict[int, list[float]] = {}
            for i in prefix_order(tokens):
                out[i] = self._scorer.score(tokens[i], continuations)
        return [out[i] for i in range(len(batch))]

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    @property
    def prefix_hits(self) -> int:
        """Prompt tokens skipped thanks to KV-cache prefix reuse (for benchmarks)."""
        return self._scorer.reused_tokens

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""
        with self._lock:
            self._llm.close()
