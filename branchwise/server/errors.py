"""HTTP errors of the server, and the one mapping from branchwise errors to status codes.

Every error body has the OpenAI shape, so OpenAI SDKs raise their usual exceptions::

    {"error": {"message": "...", "type": "not_found_error", "code": 404, "fix": "..."}}

:data:`STATUS` is checked in order (most specific first). Messages never carry the server's
file-system paths: the handler replaces index directories with their served names.
"""

from __future__ import annotations

from typing import Any, Mapping

from branchwise.errors import (
    BackendError,
    BranchwiseError,
    BudgetExceeded,
    IndexFormatError,
    InputError,
    MissingDependencyError,
    OutputParseError,
)


class AuthError(BranchwiseError):
    """No API key, or a key no served index knows (401)."""


class Forbidden(BranchwiseError):
    """A valid API key of another index (403)."""


class NotFound(InputError):
    """No such index, trace or document (404)."""


class TooLarge(InputError):
    """The request body (or a part of it) is over the server's limit (413)."""


class Busy(BackendError):
    """The queue in front of the LLM is full (429; retry later)."""

    retryable = True


#: (error class, HTTP status), most specific first
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (AuthError, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (TooLarge, 413),
    (Busy, 429),
    (MissingDependencyError, 501),
    (InputError, 400),
    (IndexFormatError, 409),
    (BudgetExceeded, 422),
    (OutputParseError, 502),
    (BackendError, 502),
    (BranchwiseError, 500),
)

#: OpenAI's error ``type`` by status
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    409: "conflict_error", 413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
    501: "not_implemented", 502: "upstream_error", 503: "service_unavailable",
}


def status_of(exc: BaseException) -> int:
    """The HTTP status of ``exc``: :data:`STATUS`; a transient backend failure is 503."""
    if isinstance(exc, BackendError) and exc.retryable and not isinstance(exc, Busy):
        return 503
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def scrub(text: str, paths: Mapping[str, str]) -> str:
    """``text`` with each server path (longest first) replaced by its public name."""
    for path in sorted(paths, key=len, reverse=True):
        text = text.replace(path, paths[path])
    return text


def error_body(status: int, message: str, fix: str | None = None) -> dict[str, Any]:
    """The OpenAI-shaped error body."""
    body: dict[str, Any] = {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "code": status}
    if fix:
        body["fix"] = fix
    return {"error": body}


def branchwise_error_body(exc: BranchwiseError, paths: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """Status and body of a branchwise error (server paths scrubbed)."""
    status = status_of(exc)
    fix = scrub(exc.fix, paths) if exc.fix else None
    return status, error_body(status, scrub(exc.message, paths), fix)
