"""Runner end to end on a real index (Chroma + bm25s) with the hashing embedder and a scripted LLM."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import pytest

from branchwise.errors import InputError
from branchwise.evals.datasets import load_hotpotqa
from branchwise.evals.datasets.types import EvalDataset
from branchwise.evals.runner import EvalConfig, run_eval
from branchwise.evals.study import StudyConfig, run_udcg_study
from branchwise.models.base import Message
from branchwise.testing import HashingEmbedder, ScriptedLLM

N_QUESTIONS = 4


@pytest.fixture(scope="module")
def hotpot(shared_data: Path) -> EvalDataset:
    return load_hotpotqa(shared_data / "hotpotqa" / "dev_distractor_200.jsonl", limit=N_QUESTIONS)


def _answer_from_first_source(messages: Sequence[Message]) -> str:
    # Answer with the first source's title, cited: deterministic, and right for some questions.
    user = messages[-1].content
    title = user.split('title="', 1)[1].split('"', 1)[0]
    return f"{title} [1]"


class Interrupting:
    """A scripted generator that dies (like Ctrl-C) on its ``fail_at``-th call."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.llm = ScriptedLLM(replies=self._reply)

    def _reply(self, messages: Sequence[Message]) -> str:
        if self.fail_at is not None and len(self.llm.calls) > self.fail_at:  # calls include this one
            raise KeyboardInterrupt
        return _answer_from_first_source(messages)


def _config(out: Path) -> EvalConfig:
    return EvalConfig(out_dir=out, n_resamples=500, progress=False)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_runner_resumes_after_a_kill_without_duplicates(hotpot: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"
    embedder = HashingEmbedder()
    first = Interrupting(fail_at=2)  # the 3rd generator call is "killed"
    with pytest.raises(KeyboardInterrupt):
        run_eval(hotpot, ["bm25", "naive_rag"], _config(out), embedder=embedder, llm_factory=lambda: first.llm)
    recs = _records(out)
    assert [r["system"] for r in recs].count("bm25") == N_QUESTIONS
    assert [r["system"] for r in recs].count("naive_rag") == 2

    # a torn half line (the process died mid-write) is discarded on resume
    with (out / "results.jsonl").open("a") as f:
        f.write('{"system": "naive_rag", "qid": "torn')
    second = Interrupting(fail_at=None)
    result = run_eval(hotpot, ["bm25", "naive_rag"], _config(out), embedder=embedder,
                      llm_factory=lambda: second.llm)
    assert len(second.llm.calls) == N_QUESTIONS - 2  # only the missing questions were run
    recs = _records(out)
    keys = [(r["system"], r["qid"]) for r in recs]
    assert len(keys) == len(set(keys)) == 2 * N_QUESTIONS
    assert {q.id for q in hotpot.questions} == {r["qid"] for r in recs}
    assert len(result.records) == 2 * N_QUESTIONS

    # a third run finds everything done: no LLM call at all, the index is reused
    third = Interrupting(fail_at=0)
    run_eval(hotpot, ["bm25", "naive_rag"], _config(out), embedder=embedder, llm_factory=lambda: third.llm)
    assert third.llm.calls == []


def test_blocks_run_every_system_on_the_same_questions_before_moving_on(hotpot: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "blocks"
    first = Interrupting(fail_at=2)  # dies on the 3rd answer: the second block's first naive_rag question
    config = EvalConfig(out_dir=out, n_resamples=500, progress=False, block=2)
    with pytest.raises(KeyboardInterrupt):
        run_eval(hotpot, ["bm25", "naive_rag"], config, embedder=HashingEmbedder(), llm_factory=lambda: first.llm)
    recs = _records(out)
    by_system = {s: [r["qid"] for r in recs if r["system"] == s] for s in ("bm25", "naive_rag")}
    ids = [q.id for q in hotpot.questions]
    # block 1 done by both systems, block 2 by bm25 only: the stopped run is paired on block 1
    assert by_system["naive_rag"] == ids[:2] and by_system["bm25"] == ids[:4]
    assert [r["system"] for r in recs] == ["bm25", "bm25", "naive_rag", "naive_rag", "bm25", "bm25"]
    with pytest.raises(InputError, match="block"):
        EvalConfig(out_dir=out, block=-1)

    # --report-only: nothing runs; the report covers the 2 questions both systems answered
    idle = Interrupting(fail_at=0)
    result = run_eval(hotpot, ["bm25", "naive_rag"], EvalConfig(out_dir=out, n_resamples=500, progress=False,
                                                                report_only=True),
                      embedder=HashingEmbedder(), llm_factory=lambda: idle.llm)
    assert idle.llm.calls == [] and {r["qid"] for r in result.records} == set(ids[:2])
    assert len(result.records) == 4 and "Partial run:** the 2 questions" in (out / "summary.md").read_text()


def test_records_metrics_and_report_files(hotpot: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"
    gen = Interrupting(fail_at=None)
    result = run_eval(hotpot, ["bm25", "dense", "naive_rag"], _config(out), embedder=HashingEmbedder(),
                      llm_factory=lambda: gen.llm)
    rag = [r for r in result.records if r["system"] == "naive_rag"]
    for r in rag:
        m = r["metrics"]
        # the scripted answer is the first source's title; its F1 against the gold answer is recomputable
        title = r["answer"].rsplit(" [1]", 1)[0]
        q = next(q for q in hotpot.questions if q.id == r["qid"])
        from branchwise.evals.metrics import token_f1

        assert m["f1"] == pytest.approx(token_f1(title, q.answers))
        assert m["llm_calls"] == 1 and m["context_tokens"] > 0
        assert len(r["retrieved"]) == 10 and r["cited"] == [r["retrieved"][0]]
        assert 0.0 <= m["citation_precision"] <= 1.0 and 0.0 <= m["ndcg@10"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"] == "naive_rag" and summary["primary"] == "f1"
    f1 = summary["systems"]["naive_rag"]["metrics"]["f1"]
    assert f1["low"] <= f1["mean"] <= f1["high"]
    assert f1["mean"] == pytest.approx(sum(r["metrics"]["f1"] for r in rag) / len(rag))
    # naive RAG retrieves with dense search: identical rankings, a zero paired difference
    assert summary["paired"]["dense"]["ndcg@10"]["diff"] == pytest.approx(0.0)
    md = (out / "summary.md").read_text()
    assert "| naive_rag | 4 |" in md and "Paired tests against **naive_rag**" in md
    for png in ("quality.png", "quality_vs_context.png", "cost.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in summary["plots"]


def test_udcg_study_on_a_finished_run(hotpot: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"
    gen = Interrupting(fail_at=None)
    run_eval(hotpot, ["dense", "naive_rag"], _config(out), embedder=HashingEmbedder(), llm_factory=lambda: gen.llm)

    # The reader abstains unless the passage shares a word with the question's gold answer.
    answers = {q.id: q.answers[0].lower() for q in hotpot.questions}

    def logprob(messages: Sequence[Message], cont: str) -> float:
        text = messages[-1].content.lower()
        good = any(a in text for a in answers.values())
        return math.log(0.1 if good else 0.9)

    reader = ScriptedLLM(replies=_answer_from_first_source, logprob_fn=logprob)
    result = run_udcg_study(out, reader, StudyConfig(k=5, read_retrieval_only=True), embedder=HashingEmbedder(),
                            progress=False)
    # naive_rag has its own F1; dense gets one from the reader: 2 systems x 4 questions
    assert result["n_records"] == 2 * N_QUESTIONS
    assert set(result["system_means"]) == {"dense", "naive_rag"}
    for level in ("pooled", "system_level"):
        assert set(result[level]) == {"udcg", "ndcg", "recall"}
    assert (out / "udcg_study.md").read_text().startswith("## UDCG study")
    n_calls = len(reader.calls)
    run_udcg_study(out, reader, StudyConfig(k=5, read_retrieval_only=True), embedder=HashingEmbedder(),
                   progress=False)
    assert len(reader.calls) == n_calls  # utilities and reader answers are cached


def test_unknown_system_lists_the_available_ones(hotpot: EvalDataset, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="choose from: .*bm25"):
        run_eval(hotpot, ["bm26"], _config(tmp_path / "x"), embedder=HashingEmbedder())
    with pytest.raises(InputError, match="needs an LLM"):
        run_eval(hotpot, ["naive_rag"], _config(tmp_path / "y"), embedder=HashingEmbedder())


def test_tree_systems_build_the_tree_once_with_extractive_summaries(hotpot: EvalDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = EvalConfig(out_dir=out, n_resamples=200, progress=False, tree_summaries="extractive")
    result = run_eval(hotpot, ["raptor", "navigator:embedding"], config, embedder=HashingEmbedder())
    meta = json.loads((out / "run.json").read_text())
    assert meta["tree"]["leaves"] == meta["chunks"] and meta["tree_build"]["llm_calls"] == 0
    assert (out / "index" / "tree.json").exists()
    assert {r["system"] for r in result.records} == {"raptor", "navigator:embedding"}
    assert all(r["retrieved"] and r["metrics"]["llm_calls"] == 0 for r in result.records)
    # the tree is reused by a second run (its build cost stays on record)
    again = run_eval(hotpot, ["raptor"], config, embedder=HashingEmbedder())
    assert json.loads((out / "run.json").read_text())["tree_build"] == meta["tree_build"]
    assert len(again.records) == N_QUESTIONS


def test_collect_reports_gathers_tables_and_plots(hotpot: EvalDataset, tmp_path: Path) -> None:
    from branchwise.evals.report import collect_reports

    run = tmp_path / "hp"
    run_eval(hotpot, ["bm25", "dense"], _config(run), embedder=HashingEmbedder())
    readme = collect_reports([run], tmp_path / "reports", title="T", preface="Hardware: test.")
    text = readme.read_text()
    assert text.startswith("# T\n\nHardware: test.") and "| bm25 | 4 |" in text
    assert "![hotpotqa quality.png](img/hp_quality.png)" in text
    assert (tmp_path / "reports" / "img" / "hp_quality.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "reports" / "img" / "results.jsonl").exists()
