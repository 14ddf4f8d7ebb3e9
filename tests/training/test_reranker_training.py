"""train-reranker: labels and negatives mined from HotpotQA supporting facts, a real (short) training
run that writes a loadable model with its card, distillation, and LLM-written examples."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from branchwise.cli.main import main
from branchwise.relevance.factories import make_reranker
from branchwise.testing import HashingEmbedder, ScriptedLLM, json_reply
from branchwise.training.mining import load_hotpot_examples
from branchwise.training.reranker import RerankerTrainConfig, train_reranker
from branchwise.training.reranker_data import GroupConfig, groups_for, mine, question_rows, split_examples
from branchwise.training.reranker_synthetic import synthetic_examples
from branchwise.types import Chunk


@pytest.fixture(scope="module")
def examples(shared_data: Path) -> list:
    return load_hotpot_examples(shared_data / "hotpotqa" / "train_1468.jsonl", limit=40)


def test_labels_follow_the_supporting_facts(examples: list) -> None:
    ex = examples[0]
    rows = question_rows(ex)
    gold_sentences = {rows.sentences[i] for i in range(len(rows.sentences)) if rows.sentence_gold[i]}
    # every supporting fact is the gold sentence of its own paragraph, shown as "title: sentence"
    for title, sent in ex.supporting:
        assert any(s.startswith(f"{title}: ") and " ".join(sent.split()) in " ".join(s.split()) for s in gold_sentences)
    assert int(rows.paragraph_gold.sum()) == len({t for t, _ in ex.supporting})
    assert len(rows.paragraphs) == len(ex.evidence) and all(": " in p for p in rows.paragraphs)


def test_split_is_deterministic_and_disjoint(examples: list) -> None:
    train, val = split_examples(examples, 0.25)
    again_train, again_val = split_examples(list(reversed(examples)), 0.25)
    assert {e.id for e in train} == {e.id for e in again_train} and {e.id for e in val} == {e.id for e in again_val}
    assert not {e.id for e in train} & {e.id for e in val} and len(train) + len(val) == len(examples)


def test_groups_hold_gold_same_paragraph_hard_random_and_pool_negatives(examples: list) -> None:
    rows = [question_rows(e) for e in examples[:12]]
    mine(rows, HashingEmbedder(), pool_negatives=4, progress=False)
    r = next(x for x in rows if x.sentence_gold.sum() >= 2)
    assert len(r.pool_negatives) == 4 and not set(r.pool_negatives) & set(r.paragraphs)
    cfg = GroupConfig(same_paragraph=2, hard=3, random=1, pool=2, paragraph_hard=2, paragraph_random=1, hop_fraction=1.0)
    groups = {g.kind: g for g in groups_for(r, cfg, random.Random(0))}
    sent = groups["sentence"]
    n_pos = int(r.sentence_gold.sum())
    assert sent.labels[:n_pos] == (1.0,) * n_pos and sum(sent.labels) == n_pos
    assert len(sent.passages) == n_pos + 2 + 3 + 1 + 2 and set(r.pool_negatives) >= set(sent.passages[-2:])
    par = groups["paragraph"]
    assert sum(par.labels) == r.paragraph_gold.sum() and len(par.passages) == r.paragraph_gold.sum() + 3
    hop = groups.get("hop")
    if hop is not None:  # two gold paragraphs: the query carries a first-hop gold sentence
        assert hop.query.startswith(r.example.question + " ") and sum(hop.labels) >= 1


def test_a_short_real_training_run_writes_a_loadable_model_with_its_card(examples: list, tmp_path: Path,
                                                                          real_embedder) -> None:
    train, val = examples[:14], examples[14:20]
    cfg = RerankerTrainConfig(epochs=1, questions_per_step=2, groups=GroupConfig(same_paragraph=2, hard=2, random=1,
                                                                                 paragraph_hard=1, paragraph_random=1))
    report = train_reranker(train, val, tmp_path / "ce", cfg, embedder=real_embedder, progress=False,
                            data_file=Path(__file__))
    assert report.steps == 7 and report.best_epoch == 1 and report.pairs > 50
    assert set(report.metrics) >= {"all_gold_kept", "fact_recall", "both_gold_in_top3", "paragraph_mrr"}
    assert all(0.0 <= v <= 1.0 for k, v in report.metrics.items() if k != "train_minutes")
    card = json.loads((tmp_path / "ce" / "card.json").read_text())
    assert card["data"]["sha256"] and card["steps"] == 7 and card["validation"] == report.metrics
    assert "model.safetensors" in card["weights_sha256"] and (tmp_path / "ce" / "CARD.md").is_file()
    ce = make_reranker(f"cross-encoder:{tmp_path / 'ce'}")
    scores = ce.score(val[0].question, [p.text for p in val[0].evidence])  # type: ignore[union-attr]
    assert len(scores) == len(val[0].evidence) and all(0.0 <= s <= 1.0 for s in scores)


def test_residual_mode_trains_and_serves_logit_plus_weighted_cosine(examples: list, tmp_path: Path,
                                                                   real_embedder) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from branchwise.relevance.cross_encoder import Prior

    cfg = RerankerTrainConfig(epochs=2, max_steps=3, prior_weight=20.0, head_lr_multiplier=10.0, loss="listwise",
                              groups=GroupConfig(same_paragraph=1, hard=1, random=1, paragraph_hard=1,
                                                 paragraph_random=0))
    report = train_reranker(examples[:10], examples[10:13], tmp_path / "r", cfg, embedder=real_embedder,
                            progress=False)
    assert report.steps == 3 and len(report.history) == 1  # max_steps stops inside the first epoch
    assert Prior.read(tmp_path / "r") == Prior(real_embedder.name, 20.0)
    assert json.loads((tmp_path / "r" / "card.json").read_text())["prior"]["weight"] == 20.0
    # served: sigmoid(logit + 20 * cosine), the cosine by the recorded embedder (the one passed in)
    ce = make_reranker(f"cross-encoder:{tmp_path / 'r'}", embedder=real_embedder)
    q, passages = examples[12].question, [p.text for p in examples[12].evidence[:4]]
    scores = np.asarray(ce.score(q, passages))  # type: ignore[union-attr]
    tok = AutoTokenizer.from_pretrained(tmp_path / "r")
    net = AutoModelForSequenceClassification.from_pretrained(tmp_path / "r").float().eval()
    with torch.inference_mode():
        enc = tok([q] * 4, passages, truncation="only_second", max_length=256, padding=True, return_tensors="pt")
        logits = net(**enc).logits[:, 0].numpy()
    cos = real_embedder.embed(passages) @ real_embedder.embed_query(q)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-(logits + 20.0 * cos))), atol=1e-4)


def test_a_residual_model_needs_its_own_embedder(tmp_path: Path) -> None:
    from branchwise.errors import InputError
    from branchwise.relevance.cross_encoder import Prior, prior_embedder

    prior = Prior("someone/else-embedder", 5.0)
    with pytest.raises(InputError, match="else-embedder"):
        prior_embedder(prior, HashingEmbedder())
    assert prior_embedder(Prior(HashingEmbedder().name, 5.0), emb := HashingEmbedder()) is emb


def test_distillation_softens_labels_with_the_teachers_scores(examples: list, tmp_path: Path) -> None:
    class Teacher:
        name = "fixed-teacher"

        def __init__(self) -> None:
            self.calls = 0

        def score(self, query: str, passages: list[str]) -> list[float]:
            self.calls += 1
            return [0.5] * len(passages)

    teacher = Teacher()
    cfg = RerankerTrainConfig(epochs=1, groups=GroupConfig(same_paragraph=1, hard=1, random=0, paragraph_hard=1,
                                                           paragraph_random=0), teacher_weight=0.3)
    report = train_reranker(examples[:4], examples[4:6], tmp_path / "d", cfg, embedder=HashingEmbedder(),
                            teacher=teacher, progress=False)
    assert teacher.calls >= 4 and json.loads((tmp_path / "d" / "card.json").read_text())["teacher"] == "fixed-teacher"
    assert report.steps == 2


def test_llm_written_examples_from_a_users_corpus() -> None:
    chunks = [Chunk(id=f"doc{i}#0", doc_id=f"doc{i}", text=t, title=f"Doc {i}") for i, t in enumerate([
        "The Zorblat reactor was commissioned in 1987. It produces 40 megawatts.",
        "Quince jam needs pectin. It sets at 105 degrees.",
        "The harbour crane lifts 80 tonnes. It was built by Krupp.",
    ])]

    def reply(messages) -> str:
        text = messages[-1].content
        if "Zorblat" in text:
            return json_reply({"question": "When was the Zorblat reactor commissioned?",
                               "sentence": "The Zorblat reactor was commissioned in 1987."})
        if "Quince" in text:
            return json_reply({"question": "What does quince jam need?", "sentence": "Quince jam needs sugar."})  # not in it
        return "no json"

    made = synthetic_examples(chunks, ScriptedLLM(replies=reply), distractors=2)
    assert len(made) == 1
    ex = made[0]
    assert ex.question.startswith("When was the Zorblat") and ex.supporting == (("doc0#0", ex.supporting[0][1]),)
    assert {e.chunk_id for e in ex.evidence} == {"doc0#0", "doc1#0", "doc2#0"}
    rows = question_rows(ex)
    assert int(rows.sentence_gold.sum()) == 1 and rows.sentences[int(np.argmax(rows.sentence_gold))].endswith("1987.")


def test_the_cli_refuses_to_train_on_the_evaluation_questions(shared_data: Path, tmp_path: Path, capsys) -> None:
    code = main(["train-reranker", "--data", str(shared_data / "hotpotqa" / "dev_distractor_200.jsonl"),
                 "--out", str(tmp_path / "x")])
    assert code == 2 and "evaluation questions" in capsys.readouterr().err and not (tmp_path / "x").exists()
