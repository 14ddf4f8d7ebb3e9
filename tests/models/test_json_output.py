"""The backends' shared parse-or-ask-again loop behind ``chat_json``."""

from __future__ import annotations

from typing import Callable

import pytest

from branchwise.errors import OutputParseError
from branchwise.models.base import Completion, GenParams
from branchwise.models.json_output import complete_json, schema_hint


def _scripted(texts: list[str]) -> tuple[list[GenParams], Callable[[GenParams], Completion]]:
    seen: list[GenParams] = []

    def generate(p: GenParams) -> Completion:
        seen.append(p)
        return Completion(text=texts[len(seen) - 1], completion_tokens=len(seen), finish_reason="length")

    return seen, generate


def test_complete_json_returns_the_first_parsable_attempt_with_its_completion() -> None:
    seen, generate = _scripted(['{"ids": [1, 2', '{"ids": [1, 2, 3]}'])
    # The first answer is repairable: no retry, repaired flagged.
    sc = complete_json(generate, GenParams(max_tokens=8), name="m")
    assert sc.value == {"ids": [1, 2]} and sc.repaired and len(seen) == 1
    seen, generate = _scripted(["no json here", '{"ids": [1, 2, 3]}'])
    sc = complete_json(generate, GenParams(max_tokens=8, seed=3), name="m")
    assert sc.value == {"ids": [1, 2, 3]} and not sc.repaired
    assert sc.completion.completion_tokens == 2  # the successful attempt's usage, not the first's
    assert seen == [GenParams(max_tokens=8, seed=3), GenParams(max_tokens=16, seed=4)]


def test_complete_json_gives_up_after_the_attempts_with_the_last_text() -> None:
    seen, generate = _scripted(["a", "b", "c"])
    with pytest.raises(OutputParseError, match="m did not produce parsable JSON after 3 attempts") as ei:
        complete_json(generate, GenParams(max_tokens=4), name="m", attempts=3, fix="do X.")
    assert ei.value.raw == "c" and ei.value.fix == "do X." and ei.value.retryable
    assert [p.max_tokens for p in seen] == [4, 8, 16]
    seen, generate = _scripted(["a", "b"])
    with pytest.raises(OutputParseError, match="after 2 attempts"):
        complete_json(generate, GenParams(max_tokens=4), name="m", next_params=None)
    assert seen == [GenParams(max_tokens=4)] * 2  # the same request repeated
    seen, generate = _scripted(["a"])
    with pytest.raises(OutputParseError, match="after 1 attempts"):
        complete_json(generate, GenParams(), name="m", attempts=0)  # at least one call


def test_schema_hint_carries_the_schema() -> None:
    m = schema_hint({"type": "object"})
    assert m.role == "system" and m.content.endswith('{"type": "object"}')
