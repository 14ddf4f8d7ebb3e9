"""Lenient JSON parsing for LLM output: small local models often break JSON.

:func:`parse_json_lenient` tries a strict parse, then the first JSON value that decodes
from the first ``{``/``[`` (prose after it is ignored), then hands the text to the
maintained `json-repair <https://pypi.org/project/json-repair/>`_ package, which fixes
fenced blocks, Python literals, single quotes, unquoted keys, comments, trailing commas and
truncated answers (cut back to the last complete member) without touching string contents.
It raises :class:`~branchwise.errors.OutputParseError` (retryable) when no JSON object or
array can be recovered. Grammar-constrained backends (llama.cpp) rarely need any of this;
HTTP servers without ``response_format`` and the transformers backend do.
"""

from __future__ import annotations

import json
from typing import Any

import json_repair

from branchwise.errors import OutputParseError


def _first_value(text: str) -> Any:
    """The first JSON value decoding from the first bracket (raises ValueError if none)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no bracket")
    value, _ = json.JSONDecoder().raw_decode(text[min(starts):])
    return value


def parse_json_lenient(text: str) -> tuple[Any, bool]:
    """Parse ``text`` as JSON; return ``(value, repaired)``.

    ``repaired`` is False only when the text was valid JSON as-is.
    """
    text = text or ""
    try:
        return json.loads(text), False
    except (json.JSONDecodeError, TypeError):
        pass
    try:
        return _first_value(text), True
    except ValueError:  # json.JSONDecodeError is a ValueError
        pass
    if "{" in text or "[" in text:
        value = json_repair.repair_json(text, return_objects=True)
        if isinstance(value, (dict, list)) and value != []:  # [] is what json-repair returns for no JSON
            return value, True
    raise OutputParseError(
        "the model's output is not valid JSON and could not be repaired.",
        raw=text,
        fix="use a backend with grammar/JSON-schema constrained decoding, or a larger model.",
    )
