"""Lenient JSON parsing for LLM output: small local models often break JSON.

:func:`parse_json_lenient` tries, in order: strict parse; the first fenced code block;
the outermost ``{...}``/``[...]`` span; then light repairs (single → double quotes,
trailing commas, Python literals, unbalanced closing brackets). It raises
:class:`~branchwise.errors.OutputParseError` (retryable) if nothing parses.
"""

from __future__ import annotations

import json
import re
from typing import Any

from branchwise.errors import OutputParseError

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _outer_span(text: str) -> str | None:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    close = "}" if text[start] == "{" else "]"
    end = text.rfind(close)
    return text[start : end + 1] if end > start else text[start:]


def _balance(s: str) -> str:
    stack: list[str] = []
    in_str = False
    esc = False
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    if in_str:
        s += '"'
    return s + "".join(reversed(stack))


def _repair(s: str) -> str:
    s = s.strip()
    s = re.sub(r"\bTrue\b", "true", s)
    s = re.sub(r"\bFalse\b", "false", s)
    s = re.sub(r"\bNone\b", "null", s)
    if '"' not in s and "'" in s:
        s = s.replace("'", '"')
    s = _TRAILING_COMMA.sub(r"\1", s)
    return _balance(s)


def parse_json_lenient(text: str) -> tuple[Any, bool]:
    """Parse ``text`` as JSON; return ``(value, repaired)``.

    ``repaired`` is False only when the text was valid JSON as-is.
    """
    try:
        return json.loads(text), False
    except (json.JSONDecodeError, TypeError):
        pass
    candidates: list[str] = []
    m = _FENCE.search(text or "")
    if m:
        candidates.append(m.group(1))
    span = _outer_span(text or "")
    if span:
        candidates.append(span)
    for cand in candidates:
        for attempt in (cand, _repair(cand)):
            try:
                return json.loads(attempt), True
            except json.JSONDecodeError:
                continue
    raise OutputParseError(
        "the model's output is not valid JSON and could not be repaired.",
        raw=text,
        fix="use a backend with grammar/JSON-schema constrained decoding, or a larger model.",
    )
