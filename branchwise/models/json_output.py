"""The backends' shared "generate, parse leniently, on failure ask again" loop behind ``chat_json``.

:func:`complete_json` drives it; :func:`schema_hint` is the system message that puts the
schema into the prompt where decoding is not constrained by it. Parsing itself is
:func:`branchwise.text.jsonparse.parse_json_lenient` (the maintained ``json-repair`` package).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Callable

from branchwise.errors import OutputParseError
from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion
from branchwise.text.jsonparse import parse_json_lenient

log = logging.getLogger(__name__)


def schema_hint(schema: dict[str, Any]) -> Message:
    """The system message asking for one JSON value matching ``schema`` (unconstrained decoding)."""
    return Message("system", "Respond with one JSON value only, matching this JSON schema:\n" + json.dumps(schema))


def more_tokens(params: GenParams) -> GenParams:
    """The parameters of a retry: twice the token budget (a truncated answer) and the next seed."""
    return dataclasses.replace(params, max_tokens=params.max_tokens * 2, seed=params.seed + 1)


def complete_json(
    generate: Callable[[GenParams], Completion],
    params: GenParams,
    *,
    name: str,
    attempts: int = 2,
    next_params: Callable[[GenParams], GenParams] | None = more_tokens,
    fix: str = "raise GenParams.max_tokens, simplify the schema, or use a larger model.",
) -> StructuredCompletion:
    """Generate, parse leniently, and ask again on unparsable output: a ``chat_json`` loop.

    Args:
        generate: one generation call with the given parameters.
        params: the first attempt's parameters.
        name: the model name, for the log and the error.
        attempts: generation calls at most (at least one is made).
        next_params: the parameters of the next attempt from the last one's (None: the same).
        fix: the advice of the error raised when no attempt parses.

    Returns the first parsable answer with *its* completion (earlier, failed attempts are
    not part of it). ``repaired`` is False only for output that was valid JSON as-is.

    Raises:
        OutputParseError: every attempt was unparsable; ``raw`` is the last answer's text.
    """
    last: Completion | None = None
    n = max(1, attempts)
    for attempt in range(n):
        if attempt and next_params is not None:
            params = next_params(params)
        last = generate(params)
        try:
            value, repaired = parse_json_lenient(last.text)
            return StructuredCompletion(value=value, completion=last, repaired=repaired)
        except OutputParseError:
            log.info("unparsable JSON from %s (attempt %d/%d, finish=%s)", name, attempt + 1, n, last.finish_reason)
    raise OutputParseError(
        f"{name} did not produce parsable JSON after {n} attempts.",
        raw=last.text if last else "",
        fix=fix,
    )
