"""UDCG arithmetic (scripted reader, hand-computed values), one real-reader check, statistics."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pytest

from branchwise.errors import InputError
from branchwise.evals.stats import bootstrap_ci, correlation, paired_bootstrap, wilcoxon_test
from branchwise.evals.udcg import UDCG_SYSTEM, UDCGConfig, passage_utilities, udcg, utility_messages
from branchwise.models.base import Message
from branchwise.testing import ScriptedLLM


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_udcg_hand_computed() -> None:
    # u = [0.9, 0.6, 0.3], relevant = [T, F, T]: (0.9 - 0.6/3 + 0.3) / 3 = 1.0 / 3
    assert udcg([0.9, 0.6, 0.3], [True, False, True]) == pytest.approx(_sigmoid(1.0 / 3))
    # all distractors: -(0.5 + 0.5)/3 / 2
    assert udcg([0.5, 0.5], [False, False]) == pytest.approx(_sigmoid(-1 / 6))
    # no positional discount: order does not matter
    assert udcg([0.3, 0.6, 0.9], [True, False, True]) == pytest.approx(udcg([0.9, 0.6, 0.3], [True, False, True]))
    assert udcg([], []) == 0.0
    custom = UDCGConfig(relevant_weight=2.0, irrelevant_weight=-1.0)
    assert udcg([0.5, 0.25], [True, False], custom) == pytest.approx(_sigmoid((1.0 - 0.25) / 2))
    with pytest.raises(InputError):
        udcg([0.5], [True, False])


def test_passage_utilities_read_p_of_first_no_response_token() -> None:
    # The scripted reader abstains with P("NO") = 0.8 unless the passage mentions Paris.
    def logprob(messages: Sequence[Message], cont: str) -> float:
        assert cont == "NO"  # first BPE piece of "NO-RESPONSE" (Qwen2.5: NO | - | RESP | ONSE)
        return math.log(0.05) if "Paris" in messages[-1].content else math.log(0.8)

    llm = ScriptedLLM(logprob_fn=logprob)
    u = passage_utilities(llm, "What is the capital of France?", ["Paris is the capital of France.", "Bananas."])
    assert u == [pytest.approx(0.95), pytest.approx(0.2)]
    assert len(llm.calls) == 2  # one forward pass per passage
    sys_msg, user = llm.calls[0]
    assert sys_msg.content == UDCG_SYSTEM and "NO-RESPONSE" in sys_msg.content
    assert user.content == "Document: Paris is the capital of France.\nQuestion: What is the capital of France?\nAnswer:"
    assert udcg(u, [True, False]) == pytest.approx(_sigmoid((0.95 - 0.2 / 3) / 2))


def test_utility_prompt_truncates_long_passages() -> None:
    msgs = utility_messages("q?", "x" * 50, UDCGConfig(max_passage_chars=10))
    assert msgs[1].content == "Document: " + "x" * 10 + "\nQuestion: q?\nAnswer:"


@pytest.mark.real_llm
def test_real_reader_prefers_the_relevant_passage(real_llm) -> None:
    q = "In what year was the Eiffel Tower completed?"
    relevant = "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889."
    irrelevant = "The giant panda is a bear species endemic to China, living in mountain forests."
    u_rel, u_irr = passage_utilities(real_llm, q, [relevant, irrelevant])
    assert 0.0 <= u_irr < u_rel <= 1.0
    assert u_rel - u_irr > 0.3


# ------------------------------------------------------------------------------- stats
def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    small = rng.normal(0.5, 0.2, size=30)
    large = rng.normal(0.5, 0.2, size=3000)
    ci_s, ci_l = bootstrap_ci(small, seed=3), bootstrap_ci(large, seed=3)
    assert ci_s.low < ci_s.mean < ci_s.high
    assert ci_l.low < 0.5 < ci_l.high
    assert (ci_l.high - ci_l.low) < (ci_s.high - ci_s.low) / 5
    # normal-theory half width 1.96 * sd / sqrt(n) as a reference for the large sample
    assert (ci_l.high - ci_l.low) / 2 == pytest.approx(1.96 * large.std(ddof=1) / math.sqrt(3000), rel=0.1)
    assert bootstrap_ci(small, seed=3) == ci_s  # seeded: reproducible
    assert bootstrap_ci([1.0, 1.0, 1.0]).low == 1.0


def test_paired_tests_detect_known_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, size=200)
    better = np.clip(base + 0.1 + rng.normal(0, 0.05, size=200), 0, None)
    t = paired_bootstrap(better, base, seed=5)
    assert t.diff == pytest.approx(float(np.mean(better - base)))
    assert t.low > 0 and t.p_bootstrap < 0.001 and t.p_wilcoxon < 1e-6
    noise = base + rng.normal(0, 0.05, size=200)
    t0 = paired_bootstrap(noise, base, seed=5)
    assert t0.low < 0 < t0.high and t0.p_bootstrap > 0.05
    assert paired_bootstrap(base, base).p_wilcoxon == 1.0
    with pytest.raises(InputError):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_wilcoxon_matches_scipy_on_hand_example() -> None:
    # diffs 1..8 all positive: exact two-sided p = 2 / 2^8
    assert wilcoxon_test(np.arange(1, 9, dtype=float)) == pytest.approx(2 / 256)


def test_correlation_values() -> None:
    c = correlation([1, 2, 3, 4, 5], [2, 4, 6, 8, 11])
    assert c.spearman == pytest.approx(1.0) and c.kendall == pytest.approx(1.0)
    c2 = correlation([1, 2, 3, 4], [4, 3, 2, 1])
    assert c2.spearman == pytest.approx(-1.0) and c2.kendall == pytest.approx(-1.0)
    # one swap among 4 items: tau = (5 - 1) / 6
    assert correlation([1, 2, 3, 4], [1, 3, 2, 4]).kendall == pytest.approx(4 / 6)
    assert math.isnan(correlation([1, 1, 1], [1, 2, 3]).spearman)
