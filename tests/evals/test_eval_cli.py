"""``branchwise eval`` / ``branchwise udcg-study`` argument handling (no models loaded)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from branchwise.cli import eval_cmd


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="branchwise")
    eval_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_eval_arguments_parse() -> None:
    args = _parse(["eval", "--dataset", "hotpotqa", "--data", "x.jsonl", "--systems", "bm25,naive_rag",
                   "--limit", "50", "--out", "runs/hp", "--llm", "default", "--embedder", "default"])
    assert (args.dataset, args.systems, args.limit, args.out, args.llm) == (
        "hotpotqa", "bm25,naive_rag", 50, Path("runs/hp"), "default")
    assert args.func is eval_cmd._eval
    study = _parse(["udcg-study", "--run", "runs/hp", "--k", "3"])
    assert (study.run, study.k, study.read_retrieval_only, study.func) == (Path("runs/hp"), 3, False, eval_cmd._study)


def test_list_systems_prints_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_cmd._eval(_parse(["eval", "--list-systems"])) == 0
    out = capsys.readouterr().out
    assert "naive_rag" in out and "[needs LLM]" in out and "raptor" in out


def test_missing_options_are_input_errors() -> None:
    from branchwise.errors import InputError

    with pytest.raises(InputError, match="missing --systems, --out"):
        eval_cmd._eval(_parse(["eval", "--dataset", "hotpotqa"]))
    with pytest.raises(InputError, match="no default location"):
        eval_cmd._eval(_parse(["eval", "--dataset", "musique", "--systems", "bm25", "--out", "x"]))
