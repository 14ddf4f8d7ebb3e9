"""Lenient JSON parsing for LLM output: small local models often break JSON.

:func:`parse_json_lenient` tries, in order:

1. a strict parse of the whole text;
2. the first fenced code block, the first JSON value that decodes from the first
   ``{``/``[`` (``raw_decode``: prose after the value is ignored), the outermost
   ``{...}``/``[...]`` span, and everything from the first bracket on;
3. the same candidates after light repairs, applied *outside string literals only* (so a
   value such as ``"None of them"`` is never rewritten): Python literals
   (``True``/``False``/``None``), single-quoted strings, unquoted keys, ``//`` comments,
   trailing commas, and unbalanced brackets/quotes from a truncated answer (when several
   candidates parse, the one recovering the most content wins);
4. for a truncated answer, cutting back to the last complete member and closing brackets.

It raises :class:`~branchwise.errors.OutputParseError` (retryable) if nothing parses.
Grammar-constrained backends (llama.cpp) rarely need any of this; HTTP servers without
``response_format`` and the transformers backend do.

:func:`complete_json` is the backends' shared "generate, parse leniently, on failure ask
again" loop behind ``chat_json``; :func:`schema_hint` is the system message that puts the
schema into the prompt where decoding is not constrained by it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any, Callable, Iterator

from branchwise.errors import OutputParseError
from branchwise.models.base import Completion, GenParams, Message, StructuredCompletion

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_LITERALS = {"True": "true", "False": "false", "None": "null"}
_BARE = re.compile(r"\b(True|False|None)\b")
_UNQUOTED_KEY = re.compile(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_\-]*)(\s*:)")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_COMMENT = re.compile(r"//[^\n]*")


def _scan(s: str) -> Iterator[tuple[bool, str]]:
    """Split ``s`` into (is_string_literal, text) pieces; handles both quote styles."""
    i, n, start = 0, len(s), 0
    while i < n:
        ch = s[i]
        if ch in "\"'":
            if i > start:
                yield False, s[start:i]
            j = i + 1
            while j < n and s[j] != ch:
                j += 2 if s[j] == "\\" else 1
            yield True, s[i : min(j + 1, n)]
            i = start = min(j + 1, n)
            continue
        i += 1
    if start < n:
        yield False, s[start:]


def _to_double_quoted(lit: str) -> str:
    if lit.startswith('"'):
        return lit if len(lit) > 1 and lit.endswith('"') else lit + '"'
    body = lit[1:-1] if len(lit) > 1 and lit.endswith("'") else lit[1:]
    body = body.replace("\\'", "'").replace('"', '\\"')
    return f'"{body}"'


def _fix_outside(text: str) -> str:
    text = _COMMENT.sub("", text)
    text = _BARE.sub(lambda m: _LITERALS[m.group(1)], text)
    return _UNQUOTED_KEY.sub(r'\1"\2"\3', text)


def _repair(s: str) -> str:
    """Apply the outside-string repairs, then remove trailing commas and close brackets."""
    pieces = [_to_double_quoted(t) if is_str else _fix_outside(t) for is_str, t in _scan(s.strip())]
    joined = "".join(pieces)
    # Trailing commas: only outside strings (a string ending in ",]" stays intact).
    out = "".join(t if is_str else _TRAILING_COMMA.sub(r"\1", t) for is_str, t in _scan(joined))
    return _balance(out)


def _balance(s: str) -> str:
    """Close an unterminated string and any open brackets (a truncated answer)."""
    stack: list[str] = []
    for is_str, t in _scan(s):
        if is_str:
            continue
        for ch in t:
            if ch in "{[":
                stack.append("}" if ch == "{" else "]")
            elif ch in "}]" and stack:
                stack.pop()
    return s + "".join(reversed(stack))


def _cut_to_last_member(s: str) -> str | None:
    """Drop a dangling, incomplete last member: cut at the last comma outside strings."""
    last = -1
    pos = 0
    for is_str, t in _scan(s):
        if not is_str and "," in t:
            last = pos + t.rfind(",")
        pos += len(t)
    return _balance(s[:last]) if last > 0 else None


def _candidates(text: str) -> list[str]:
    out: list[str] = []
    m = _FENCE.search(text)
    if m:
        out.append(m.group(1).strip())
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        try:
            _, end = json.JSONDecoder().raw_decode(text[start:])
            out.append(text[start : start + end])
        except json.JSONDecodeError:
            pass
        close = "}" if text[start] == "{" else "]"
        end = text.rfind(close)
        if end > start:
            out.append(text[start : end + 1])
        out.append(text[start:])  # a truncated answer: everything from the first bracket
    return out


def parse_json_lenient(text: str) -> tuple[Any, bool]:
    """Parse ``text`` as JSON; return ``(value, repaired)``.

    ``repaired`` is False only when the text was valid JSON as-is.
    """
    text = text or ""
    try:
        return json.loads(text), False
    except (json.JSONDecodeError, TypeError):
        pass
    cands = _candidates(text)
    for c in cands:
        try:
            return json.loads(c), True
        except json.JSONDecodeError:
            continue
    # Several repaired candidates may parse (the span up to the last bracket, the whole
    # truncated tail): keep the one that recovers the most content.
    parsed: list[tuple[int, Any]] = []
    for c in cands:
        try:
            value = json.loads(_repair(c))
        except json.JSONDecodeError:
            continue
        parsed.append((len(json.dumps(value)), value))
    if parsed:
        return max(parsed, key=lambda p: p[0])[1], True
    for c in cands:
        cut = _cut_to_last_member(_repair(c))
        if cut is not None:
            try:
                return json.loads(cut), True
            except json.JSONDecodeError:
                continue
    raise OutputParseError(
        "the model's output is not valid JSON and could not be repaired.",
        raw=text,
        fix="use a backend with grammar/JSON-schema constrained decoding, or a larger model.",
    )


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
