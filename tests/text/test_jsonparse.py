"""Lenient JSON parsing of broken LLM output (shapes seen from small local models)."""

from __future__ import annotations

import pytest

from branchwise.errors import OutputParseError
from branchwise.text.jsonparse import parse_json_lenient


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
