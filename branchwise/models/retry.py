"""Resilience of backend calls: retries, deadlines, back-pressure and a fault log.

* **Retries** (:func:`call_with_retries`): only errors marked ``retryable`` (timeouts,
  dropped connections, HTTP 408/429/5xx) are retried, with capped exponential backoff and
  jitter, so concurrent workers do not hit a recovering server in lock-step ("Exponential
  Backoff And Jitter", AWS Architecture Blog, 2015). A server's ``Retry-After`` replaces the
  computed delay (capped). A 4xx means the request itself is wrong: never retried.
* **Deadlines** (:class:`CallScope`): a caller (the agent, per question) opens a scope with
  a deadline; every backend call made inside it — in any thread that inherited the scope's
  context — bounds its waits, timeouts and retries by the time left, and fails with
  :class:`DeadlineExceeded` (not retryable) instead of waiting longer. Nothing hangs.
* **Back-pressure** (:class:`RequestLimiter`): at most ``max_in_flight`` requests at once and
  at most ``max_waiting`` queued behind them; a request that cannot start within its wait
  limit fails with a clear error instead of queueing without bound.
* **Fault log** (:class:`Fault`, :func:`report_fault`): every retried failure and every
  fallback a backend takes is reported to the scopes that are open, so a question's trace
  can list them (``CallScope.faults``), and logged.

Scopes travel with :mod:`contextvars`: LangGraph runs nodes in copies of the caller's
context, and the HTTP backend's batch pool copies it too.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

from branchwise.errors import BackendError, BranchwiseError

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


# -- deadlines and the fault log --------------------------------------------------------------
class DeadlineExceeded(BackendError):
    """A scope's deadline passed while a backend call was waiting; never retried."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix, retryable=False)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in time (``time.monotonic``) by which ``what`` must be done."""

    at: float
    seconds: float
    what: str = "question"

    @classmethod
    def after(cls, seconds: float, what: str = "question") -> "Deadline":
        return cls(time.monotonic() + seconds, seconds, what)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault a backend met and what it did about it (credentials already redacted).

    Attributes:
        endpoint: what was called (``http://host:8000/v1/chat/completions``).
        kind: ``timeout``, ``connect``, ``reset``, ``http_503``, ``malformed_json``,
            ``wrong_schema``, ``empty_completion``, ``format_fallback``, ``queue_full``,
            ``deadline``, ...
        detail: the error or observation, shortened.
        attempt: the attempt it happened on (1 = the first request).
        action: what followed: ``"retry 1/3 in 0.52 s"``, ``"gave up"``, ``"used json_object"``.
        where: the caller's label when the scope has one (the agent node).
    """

    endpoint: str
    kind: str
    detail: str
    attempt: int = 1
    action: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"{self.endpoint}: {self.kind} on attempt {self.attempt} ({self.detail}); {self.action}"


@dataclass(frozen=True, slots=True)
class _ScopeState:
    deadline: Deadline | None
    sinks: tuple[list[Fault], ...]
    label: Callable[[], str] | None


_NOTICES = frozenset({"format_fallback", "empty_completion"})

_SCOPE: contextvars.ContextVar[_ScopeState | None] = contextvars.ContextVar("branchwise_call_scope", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the innermost open :class:`CallScope` (None: no deadline)."""
    state = _SCOPE.get()
    return state.deadline if state is not None else None


def report_fault(fault: Fault) -> None:
    """Log ``fault`` and add it to every open scope's ``faults`` (labelled by the scope)."""
    state = _SCOPE.get()
    if state is not None and state.label is not None and not fault.where:
        try:
            fault = Fault(fault.endpoint, fault.kind, fault.detail, fault.attempt, fault.action, state.label())
        except Exception:  # a label must never break a call  # noqa: BLE001
            pass
    # a retry or a give-up is a warning; a mode fallback or an empty answer passed on is news
    log.log(logging.INFO if fault.kind in _NOTICES else logging.WARNING, "%s", fault.describe())
    if state is not None:
        for sink in state.sinks:
            sink.append(fault)


class CallScope:
    """A deadline and a fault log for every backend call made through the scope.

    Args:
        deadline_s: seconds from now by which calls must finish (None: no deadline of its
            own; an enclosing scope's earlier deadline still applies).
        what: what the deadline is for, used in error messages ("question").
        label: called when a fault is reported, to say where it happened (the agent uses
            the current LangGraph node).

    Run work in the scope with :meth:`run` (a call) or :meth:`iterate` (a generator, one
    step at a time: safe when consecutive steps run on different threads), or use it as a
    ``with`` block in straight-line code. ``faults`` lists what the calls met.
    """

    def __init__(self, deadline_s: float | None = None, *, what: str = "question",
                 label: Callable[[], str] | None = None) -> None:
        parent = _SCOPE.get()
        own = Deadline.after(deadline_s, what) if deadline_s is not None and deadline_s > 0 else None
        outer = parent.deadline if parent is not None else None
        self.deadline = min((d for d in (own, outer) if d is not None), key=lambda d: d.at, default=None)
        self.faults: list[Fault] = []
        sinks = (*(parent.sinks if parent is not None else ()), self.faults)
        self._state = _ScopeState(self.deadline, sinks, label or (parent.label if parent is not None else None))
        self._ctx = contextvars.copy_context()
        self._ctx.run(_SCOPE.set, self._state)
        self._tokens: list[contextvars.Token[_ScopeState | None]] = []

    def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn(*args, **kwargs)`` inside the scope."""
        return self._ctx.run(fn, *args, **kwargs)

    def iterate(self, iterable: Iterable[T]) -> Iterator[T]:
        """Iterate ``iterable`` with every step inside the scope."""
        it = self._ctx.run(iter, iterable)
        while True:
            try:
                item = self._ctx.run(next, it)
            except StopIteration:
                return
            yield item

    def __enter__(self) -> "CallScope":
        self._tokens.append(_SCOPE.set(self._state))
        return self

    def __exit__(self, *exc: object) -> None:
        _SCOPE.reset(self._tokens.pop())


def deadline_error(what: str, deadline: Deadline, detail: str) -> DeadlineExceeded:
    """The error of a call to ``what`` cut short by ``deadline``."""
    return DeadlineExceeded(
        f"{what} did not complete within the {deadline.seconds:g} s deadline of this {deadline.what}: {detail}",
        fix=f"check that the server answers (e.g. GET its /models) and is not overloaded; allow more time with "
        f"`--timeout SECONDS` (CLI) or Settings(timeout_s=...) (Python) if the {deadline.what} is legitimately slow.",
    )


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    fault_kind: Callable[[BranchwiseError], str] = lambda e: type(e).__name__,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable :class:`BranchwiseError` s.

    Args:
        fn: the operation.
        policy: retry budget and delays.
        what: a short description for log lines and errors ("POST http://.../chat/completions";
            no credentials).
        rng: jitter source (a fresh unseeded one by default; inject a seeded one in tests).
        sleep: the sleep function (injectable for tests).
        fault_kind: names an error for the fault log.

    Every failed attempt is reported (:func:`report_fault`). Under a :class:`CallScope`
    deadline, a retry whose delay would pass the deadline is not made: the call fails with
    :class:`DeadlineExceeded` at once.

    Raises:
        The last error when it is not retryable or the retries are spent; its message then
        says how many attempts were made.
    """
    rng = rng or random.Random()
    for attempt in range(policy.max_retries + 1):
        try:
            return fn()
        except BranchwiseError as e:
            kind = fault_kind(e)
            if not e.retryable or attempt >= policy.max_retries:
                if e.retryable and attempt > 0:
                    e.args = (f"{e.args[0]} (gave up after {attempt + 1} attempts)",)
                if e.retryable or attempt > 0:
                    report_fault(Fault(what, kind, _short(e.message), attempt + 1, "gave up"))
                raise
            delay = backoff_delay(policy, attempt, getattr(e, "retry_after", None), rng)
            deadline = current_deadline()
            if deadline is not None and deadline.remaining() < delay:
                report_fault(Fault(what, "deadline", _short(e.message), attempt + 1, "gave up: no time left to retry"))
                raise deadline_error(
                    what, deadline, f"attempt {attempt + 1} failed ({_short(e.message)}) and a retry in "
                    f"{delay:.1f} s would pass the deadline ({max(0.0, deadline.remaining()):.1f} s left).",
                ) from e
            report_fault(Fault(what, kind, _short(e.message), attempt + 1,
                               f"retry {attempt + 1}/{policy.max_retries} in {delay:.2f} s"))
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- back-pressure ----------------------------------------------------------------------------
@dataclass(slots=True)
class LimiterStats:
    """What a :class:`RequestLimiter` has seen (peaks since creation)."""

    in_flight: int = 0
    waiting: int = 0
    peak_in_flight: int = 0
    peak_waiting: int = 0
    admitted: int = 0
    rejected: int = 0
    waited_s: float = 0.0


class QueueTimeout(Exception):
    """Raised by :meth:`RequestLimiter.slot` when no slot freed up in time (``reason`` says why)."""

    def __init__(self, reason: str, waited_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.waited_s = waited_s


class RequestLimiter:
    """A bounded queue in front of a bounded number of concurrent requests.

    Args:
        max_in_flight: requests running at once.
        max_waiting: requests allowed to wait for a slot; further callers wait for room in
            the queue itself (and count against the same wait limit).

    Thread-safe. ``stats`` records the peaks, for tests and benchmarks.
    """

    def __init__(self, max_in_flight: int, max_waiting: int) -> None:
        self.max_in_flight = max(1, int(max_in_flight))
        self.max_waiting = max(0, int(max_waiting))
        self.stats = LimiterStats()
        self._cond = threading.Condition()

    def _wait(self, until: float, reason: str, t0: float) -> None:
        left = until - time.monotonic()
        if left <= 0 or not self._cond.wait(timeout=left):
            if time.monotonic() >= until:
                self.stats.rejected += 1
                raise QueueTimeout(reason, time.monotonic() - t0)

    @contextmanager
    def slot(self, timeout_s: float) -> Iterator[None]:
        """Hold one of the ``max_in_flight`` slots for the block; wait at most ``timeout_s``.

        Raises:
            QueueTimeout: the queue stayed full, or no slot freed up, for ``timeout_s``.
        """
        t0 = time.monotonic()
        until = t0 + max(0.0, timeout_s)
        s = self.stats
        with self._cond:
            while s.in_flight >= self.max_in_flight and s.waiting >= self.max_waiting:
                self._wait(until, f"the queue was full ({self.max_waiting} waiting for "
                                  f"{self.max_in_flight} slots)", t0)
            if s.in_flight >= self.max_in_flight:
                s.waiting += 1
                s.peak_waiting = max(s.peak_waiting, s.waiting)
                try:
                    while s.in_flight >= self.max_in_flight:
                        self._wait(until, f"all {self.max_in_flight} slots stayed busy", t0)
                finally:
                    s.waiting -= 1
                    self._cond.notify_all()  # room in the queue
            s.in_flight += 1
            s.admitted += 1
            s.peak_in_flight = max(s.peak_in_flight, s.in_flight)
            s.waited_s += time.monotonic() - t0
        try:
            yield
        finally:
            with self._cond:
                s.in_flight -= 1
                self._cond.notify_all()


__all__ = [
    "CallScope", "Deadline", "DeadlineExceeded", "Fault", "LimiterStats", "QueueTimeout", "RequestLimiter",
    "RetryPolicy", "backoff_delay", "call_with_retries", "current_deadline", "deadline_error", "report_fault",
]
