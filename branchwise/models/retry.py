"""Retries with capped exponential backoff and jitter for transient backend failures.

Only errors marked ``retryable`` (timeouts, dropped connections, HTTP 408/429/5xx) are
retried; a 4xx means the request itself is wrong and repeating it cannot help. Jitter
spreads the retries of concurrent workers so they do not hit a recovering server in
lock-step ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015). A server's
``Retry-After`` hint, when present, replaces the computed delay (capped).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from branchwise.errors import BranchwiseError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_s: delay before the first retry; doubles on each further retry.
        max_backoff_s: cap on any single delay, ``Retry-After`` included.
        jitter: fraction of each delay that is randomised (0: none, 1: "full jitter").
    """

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    jitter: float = 0.5


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, policy.max_backoff_s)
    base = min(policy.max_backoff_s, policy.backoff_s * (2**attempt))
    return base * (1.0 - policy.jitter + policy.jitter * rng.random())


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable :class:`BranchwiseError` s.

    Args:
        fn: the operation.
        policy: retry budget and delays.
        what: a short description for log lines ("POST http://.../chat/completions").
        rng: jitter source (a fresh unseeded one by default; inject a seeded one in tests).
        sleep: the sleep function (injectable for tests).

    Raises:
        The last error when it is not retryable or the retries are spent; its message then
        says how many attempts were made.
    """
    rng = rng or random.Random()
    for attempt in range(policy.max_retries + 1):
        try:
            return fn()
        except BranchwiseError as e:
            if not e.retryable or attempt >= policy.max_retries:
                if e.retryable and attempt > 0:
                    e.args = (f"{e.args[0]} (gave up after {attempt + 1} attempts)",)
                raise
            delay = backoff_delay(policy, attempt, getattr(e, "retry_after", None), rng)
            log.warning("%s failed (%s); retry %d/%d in %.2f s", what, e.message, attempt + 1, policy.max_retries, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
