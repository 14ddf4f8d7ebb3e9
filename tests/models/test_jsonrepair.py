"""Lenient JSON parsing of broken LLM output (shapes seen from small local models), and the
backends' shared parse-or-ask-again loop behind ``chat_json``."""

from __future__ import annotations

from typing import Callable

import pytest

from branchwise.errors import OutputParseError
from branchwise.models.base import Completion, GenParams
from branchwise.models.jsonrepair import complete_json, parse_json_lenient, schema_hint


@pytest.mark.parametrize(
    ("text", "expected", "repaired"),
    [
        ('{"a": 1}', {"a": 1}, False),
        ("[1, 2]", [1, 2], False),
        ('Here you go:\n```json\n{"a": [1, 2]}\n```\nHope it helps', {"a": [1, 2]}, True),
        ('The answer is {"score": 7} and {"other": 1}', {"score": 7}, True),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}, True),
        ("{'answer': 'Paris', 'ok': True, 'n': None}", {"answer": "Paris", "ok": True, "n": None}, True),
        ("{'quote': 'he said \"hi\"', \"x\": 'it\\'s'}", {"quote": 'he said "hi"', "x": "it's"}, True),
        ('{answer: "Paris", confidence: 0.9}', {"answer": "Paris", "confidence": 0.9}, True),
        ('{"a": 1, // the first\n "b": 2}', {"a": 1, "b": 2}, True),
        ('{"ids": [1, 2, 3], "reason": "trunc', {"ids": [1, 2, 3], "reason": "trunc"}, True),
        ('{"ids": [1, 2, 3], "reas', {"ids": [1, 2, 3]}, True),
        ('{"scores": [{"id": 1, "s": 0.5}, {"id": 2', {"scores": [{"id": 1, "s": 0.5}, {"id": 2}]}, True),
    ],
)
def test_repairs(text: str, expected: object, repaired: bool) -> None:
    assert parse_json_lenient(text) == (expected, repaired)


def test_string_contents_are_never_rewritten() -> None:
    value, _ = parse_json_lenient('{"text": "None of True, False, or x: y, ]", "k": None,}')
    assert value == {"text": "None of True, False, or x: y, ]", "k": None}


def test_unparsable_raises_with_raw_text() -> None:
    with pytest.raises(OutputParseError) as ei:
        parse_json_lenient("I cannot answer that.")
    assert ei.value.raw == "I cannot answer that." and ei.value.retryable
    with pytest.raises(OutputParseError):
        parse_json_lenient("")


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
