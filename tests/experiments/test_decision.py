from __future__ import annotations

from experiments.decision import Verdict, decide
from experiments.sequential import mixture_variance_for, sequential_proportion_test
from experiments.stats import holm, sample_ratio_check, two_proportion_test


def test_a_sample_ratio_mismatch_overrides_everything() -> None:
    result = two_proportion_test(500, 10_300, 700, 9_700)

    decision = decide(result, sample_ratio=sample_ratio_check({"A": 10_300, "B": 9_700}, {"A": 1, "B": 1}))

    assert decision.verdict is Verdict.SAMPLE_RATIO_MISMATCH
    assert decision.message.startswith("Sample ratio mismatch: results unreliable")


def test_a_significant_lift_wins() -> None:
    decision = decide(two_proportion_test(500, 10_000, 600, 10_000))

    assert decision.verdict is Verdict.WINS
    assert decision.message.startswith("B wins: +20.0% vs A")
    assert decision.conclusive


def test_a_significant_drop_loses_unless_lower_is_better() -> None:
    result = two_proportion_test(600, 10_000, 500, 10_000)

    assert decide(result).verdict is Verdict.LOSES
    assert decide(result, higher_is_better=False).verdict is Verdict.WINS  # e.g. unsubscribe rate


def test_ahead_but_not_conclusive_says_how_many_more_days() -> None:
    decision = decide(
        two_proportion_test(500, 10_000, 540, 10_000), planned_n_per_variant=30_000, daily_units_per_variant=2_000
    )

    assert decision.verdict is Verdict.AHEAD
    assert decision.days_remaining == 10
    assert "B is ahead of A" in decision.message
    assert "not yet conclusive; ~10 more days at current traffic" in decision.message


def test_no_detectable_difference_at_the_planned_size() -> None:
    decision = decide(two_proportion_test(1500, 30_000, 1510, 30_000), planned_n_per_variant=30_000)

    assert decision.verdict is Verdict.NO_DETECTABLE_DIFFERENCE
    assert "No detectable difference" in decision.message


def test_holm_can_turn_a_single_win_into_not_yet() -> None:
    family = holm(
        {"B": two_proportion_test(500, 10_000, 570, 10_000), "C": two_proportion_test(500, 10_000, 505, 10_000)}
    )

    assert decide(family["B"], planned_n_per_variant=20_000).verdict is Verdict.AHEAD


def test_sequential_results_read_the_same_way() -> None:
    tau2 = mixture_variance_for(2 * 0.05 * 0.95 / 20_000)

    assert decide(sequential_proportion_test(1000, 20_000, 1300, 20_000, tau2)).verdict is Verdict.WINS
    assert decide(sequential_proportion_test(1000, 20_000, 1040, 20_000, tau2)).verdict is Verdict.AHEAD
