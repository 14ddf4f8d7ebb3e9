"""The branchwise exception hierarchy.

Every error says what went wrong *and what to do about it*. Errors that may succeed on a
second attempt (a timed-out HTTP call, a 5xx from a model server) carry ``retryable=True``
so callers and the backends' retry loops can tell them apart from permanent failures.

    BranchwiseError
    ├── InputError            bad user input: paths, files, records, spec strings, options
    ├── IndexFormatError      an index directory that is missing, corrupt, or built differently
    ├── BackendError          a model or store backend failed (``retryable`` marks transient ones)
    │   └── MissingDependencyError   an optional extra is not installed
    ├── OutputParseError      an LLM answered in a shape we could not parse (after repair)
    └── BudgetExceeded        a per-query token / call budget was spent
"""

from __future__ import annotations


class BranchwiseError(Exception):
    """Base class of every error raised by branchwise.

    Args:
        message: what went wrong.
        fix: what the user should do about it (appended to the message).
        retryable: whether trying the same operation again may succeed.
    """

    retryable: bool = False

    def __init__(self, message: str, *, fix: str | None = None, retryable: bool | None = None):
        self.message = message
        self.fix = fix
        if retryable is not None:
            self.retryable = retryable
        super().__init__(f"{message} Fix: {fix}" if fix else message)


class InputError(BranchwiseError, ValueError):
    """The caller gave input branchwise cannot use (a path, file, record, option or spec)."""


class IndexFormatError(BranchwiseError):
    """An index directory is missing, incomplete, corrupt, or incompatible with this run."""


class BackendError(BranchwiseError):
    """A model, embedder or vector-store backend failed.

    ``retryable`` is True for transient failures (timeouts, connection resets, HTTP 429/5xx).
    """


class MissingDependencyError(BackendError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package '{package}', which is not installed.",
            fix=f"pip install 'branchwise[{extra}]'",
        )
        self.package = package
        self.extra = extra


class OutputParseError(BranchwiseError):
    """An LLM's output could not be parsed into the expected structure, even after repair."""

    def __init__(self, message: str, *, raw: str = "", fix: str | None = None):
        super().__init__(message, fix=fix, retryable=True)
        self.raw = raw


class BudgetExceeded(BranchwiseError):
    """A per-query budget (LLM calls or tokens) is spent; results so far remain valid."""
