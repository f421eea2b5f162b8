"""Experiment statistics by simulation: error rates, power, variance reduction, bandit regret, SRM.

Every figure is measured on simulated experiments whose truth is known, through the same functions
the results job calls (``experiments.stats``, ``experiments.sequential``, ``experiments.bandits``,
``experiments.assignment``), and printed beside its target and, where there is one, a baseline
measured in the same run:

    .venv/bin/python -m bench.experiments --seed 7 --experiments 1000

Simulated metrics:

- revenue per visitor: 30% of visitors buy, order values Gamma(shape 2, mean 50), so mean 15 and
  sd 30 (skewed, with a spike at zero, like real revenue); a "+5%" treatment multiplies order values
  by 1.05, which scales the whole distribution;
- conversion: a 5% rate, a "+5%" treatment converts at 5.25%;
- click-through per person: impressions Poisson(20) + 1 and a personal click rate Beta(1, 9), so
  impressions of one person are correlated;
- CUPED: standard normal metric and pre-period covariate with correlation 0.5.

Monte-Carlo error: a rate measured on 1,000 experiments has a standard error of about
sqrt(p (1 - p) / 1000) (0.7 points at 5%, 1.3 points at 80%); targets allow for it where stated.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from experiments.assignment import ExperimentSplit, allocate
from experiments.bandits import BernoulliArm, thompson_bernoulli
from experiments.sequential import (
    SequentialResult,
    mixture_variance_for,
    plan_mixture_variance,
    sequential_proportion_test,
    sequential_test,
)
from experiments.stats import (
    CovariateSummary,
    RatioSummary,
    SampleSummary,
    cuped_test,
    ratio_test,
    sample_ratio_check,
    sample_size_for_mean,
    sample_size_for_proportion,
    two_proportion_test,
    welch_test,
)

ALPHA = 0.05
PURCHASE_RATE = 0.3
MEAN_ORDER = 50.0
LIFT = 0.05
CONVERSION = 0.05
LOOKS = 20


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    target: str
    baseline: str = "-"
    passed: bool | None = None  # None: reported for information

    @property
    def result(self) -> str:
        return "info" if self.passed is None else "PASS" if self.passed else "FAIL"


def _pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def _revenue(rng: np.random.Generator, shape: tuple[int, ...], lift: float = 0.0) -> NDArray[np.float64]:
    buys = rng.random(shape) < PURCHASE_RATE
    orders = rng.gamma(2.0, MEAN_ORDER * (1 + lift) / 2.0, shape)
    return np.where(buys, orders, 0.0)


def _summaries(values: NDArray[np.float64]) -> list[SampleSummary]:
    """One summary per row of a (runs, units) array."""
    n = values.shape[-1]
    means = values.mean(axis=-1)
    variances = values.var(axis=-1, ddof=1)
    return [SampleSummary(n, float(m), float(v)) for m, v in zip(means, variances, strict=True)]


def _in_chunks(runs: int, units: int, budget: int = 4_000_000) -> list[int]:
    """Chunk sizes (in runs) so that one chunk of two arms holds about ``budget`` values."""
    size = max(1, budget // (2 * units))
    return [min(size, runs - start) for start in range(0, runs, size)]


def _tolerance(rate: float, runs: int, at_least: float) -> float:
    """The stated tolerance, widened to two Monte-Carlo standard errors when fewer runs are asked for."""
    return max(at_least, 2 * math.sqrt(rate * (1 - rate) / runs))


def _fpr_row(figure: str, rejections: int, runs: int, baseline: str = "-") -> Row:
    rate, tolerance = rejections / runs, _tolerance(ALPHA, runs, 0.015)
    return Row(figure, _pct(rate), f"5% ± {100 * tolerance:.1f}", baseline, abs(rate - ALPHA) <= tolerance)


def aa_fixed_horizon(rng: np.random.Generator, runs: int) -> list[Row]:
    n, rejections = 2_000, 0
    for chunk in _in_chunks(runs, n):
        values = _revenue(rng, (chunk, 2, n))
        for c, t in zip(_summaries(values[:, 0]), _summaries(values[:, 1]), strict=True):
            rejections += welch_test(c, t, ALPHA).p_value < ALPHA
    return [_fpr_row("A/A revenue/visitor, Welch t, fixed horizon (2,000/arm): false positives", rejections, runs)]


def aa_conversion(rng: np.random.Generator, runs: int) -> list[Row]:
    n = 10_000
    conversions = rng.binomial(n, CONVERSION, (runs, 2))
    rejections = sum(two_proportion_test(int(c), n, int(t), n).p_value < ALPHA for c, t in conversions)
    return [_fpr_row("A/A conversion 5%, two-proportion z (10,000/arm): false positives", rejections, runs)]


def aa_ratio(rng: np.random.Generator, runs: int) -> list[Row]:
    people = 2_000
    impressions = rng.poisson(20, (runs, 2, people)) + 1
    clicks = rng.binomial(impressions, rng.beta(1, 9, (runs, 2, people)))
    sums = {
        "x": clicks.sum(-1),
        "y": impressions.sum(-1),
        "xx": (clicks * clicks).sum(-1),
        "yy": (impressions * impressions).sum(-1),
        "xy": (clicks * impressions).sum(-1),
    }
    delta = naive = 0
    for r in range(runs):
        arms = [
            RatioSummary.from_sums(
                people,
                float(sums["x"][r, a]),
                float(sums["y"][r, a]),
                float(sums["xx"][r, a]),
                float(sums["yy"][r, a]),
                float(sums["xy"][r, a]),
            )
            for a in (0, 1)
        ]
        delta += ratio_test(arms[0], arms[1]).p_value < ALPHA
        x, y = sums["x"][r], sums["y"][r]
        naive += two_proportion_test(int(x[0]), int(y[0]), int(x[1]), int(y[1])).p_value < ALPHA
    return [
        _fpr_row(
            "A/A click-through per person, delta method (2,000 people/arm): false positives",
            delta,
            runs,
            baseline=f"{_pct(naive / runs)} if impressions are taken as units",
        )
    ]


def aa_sequential(rng: np.random.Generator, runs: int, baseline_sd: float) -> list[Row]:
    per_look = 250
    tau2 = plan_mixture_variance(baseline_sd, per_look * LOOKS, ALPHA)
    sequential_hits = naive_hits = 0
    for chunk in _in_chunks(runs, per_look * LOOKS):
        values = _revenue(rng, (chunk, 2, per_look * LOOKS))
        sums = values.reshape(chunk, 2, LOOKS, per_look).sum(-1).cumsum(-1)
        squares = (values * values).reshape(chunk, 2, LOOKS, per_look).sum(-1).cumsum(-1)
        for r in range(chunk):
            previous: SequentialResult | None = None
            naive_rejected = False
            for look in range(LOOKS):
                n = per_look * (look + 1)
                c = SampleSummary.from_sums(n, float(sums[r, 0, look]), float(squares[r, 0, look]))
                t = SampleSummary.from_sums(n, float(sums[r, 1, look]), float(squares[r, 1, look]))
                previous = sequential_test(c, t, tau2, ALPHA, previous)
                naive_rejected = naive_rejected or welch_test(c, t, ALPHA).p_value < ALPHA
            assert previous is not None
            sequential_hits += previous.significant
            naive_hits += naive_rejected
    rate = sequential_hits / runs
    return [
        Row(
            f"A/A revenue/visitor, {LOOKS} daily looks, always-valid mSPRT: false positives",
            _pct(rate),
            "≤ 5%",
            f"{_pct(naive_hits / runs)} naive t-test at every look",
            rate <= ALPHA,
        )
    ]


def ab_power_revenue(rng: np.random.Generator, runs: int, baseline_mean: float, baseline_sd: float) -> list[Row]:
    n = sample_size_for_mean(baseline_mean, baseline_sd, LIFT, ALPHA, 0.8, treatment_sd=baseline_sd * (1 + LIFT))
    detected = covered = 0
    for chunk in _in_chunks(runs, n):
        control = _summaries(_revenue(rng, (chunk, n)))
        treatment = _summaries(_revenue(rng, (chunk, n), lift=LIFT))
        for c, t in zip(control, treatment, strict=True):
            result = welch_test(c, t, ALPHA)
            detected += result.significant and result.difference > 0
            covered += result.relative_lift_interval.contains(LIFT)
    return [
        _power_row(f"A/B revenue/visitor +5% at planned n = {n:,}/arm: detected", detected, runs),
        _coverage(covered, runs),
    ]


def _power_row(figure: str, detected: int, runs: int) -> Row:
    rate = detected / runs
    allowed = 0.8 - 2 * math.sqrt(0.8 * 0.2 / runs)
    return Row(figure, _pct(rate), f"≥ 80% (planned power; ≥ {_pct(allowed)} with 2 s.e.)", "-", rate >= allowed)


def _coverage(covered: int, runs: int) -> Row:
    rate, tolerance = covered / runs, _tolerance(0.95, runs, 0.015)
    return Row(
        "  95% interval on the relative lift covers the true +5%",
        _pct(rate),
        f"95% ± {100 * tolerance:.1f}",
        "-",
        abs(rate - 0.95) <= tolerance,
    )


def ab_power_conversion(rng: np.random.Generator, runs: int) -> list[Row]:
    n = sample_size_for_proportion(CONVERSION, LIFT, ALPHA, 0.8)
    treated = CONVERSION * (1 + LIFT)
    per_look = math.ceil(n / LOOKS)
    increments = np.stack(
        [rng.binomial(per_look, CONVERSION, (runs, LOOKS)), rng.binomial(per_look, treated, (runs, LOOKS))], axis=1
    )
    cumulative = increments.cumsum(-1)
    total_n = per_look * LOOKS
    tau2 = mixture_variance_for(2 * CONVERSION * (1 - CONVERSION) / total_n, ALPHA)
    fixed = sequential = covered = 0
    for r in range(runs):
        c, t = int(cumulative[r, 0, -1]), int(cumulative[r, 1, -1])
        result = two_proportion_test(c, total_n, t, total_n, ALPHA)
        fixed += result.significant and result.difference > 0
        covered += result.relative_lift_interval.contains(LIFT)
        previous: SequentialResult | None = None
        for look in range(LOOKS):
            m = per_look * (look + 1)
            previous = sequential_proportion_test(
                int(cumulative[r, 0, look]), m, int(cumulative[r, 1, look]), m, tau2, ALPHA, previous
            )
        assert previous is not None
        sequential += previous.significant and previous.difference > 0
    return [
        _power_row(f"A/B conversion 5% -> 5.25% at planned n = {total_n:,}/arm: detected", fixed, runs),
        _coverage(covered, runs),
        Row(
            f"  same data, {LOOKS} looks, always-valid mSPRT: detected by the last look",
            _pct(sequential / runs),
            "reported (the price of peeking safely)",
            f"{_pct(fixed / runs)} fixed horizon",
        ),
    ]


def cuped(rng: np.random.Generator, runs: int, rho: float = 0.5) -> list[Row]:
    n = 2_000
    plain_differences, cuped_differences, reductions = [], [], []
    rejections = 0
    for chunk in _in_chunks(runs, n):
        pre = rng.normal(0.0, 1.0, (chunk, 2, n))
        post = rho * pre + math.sqrt(1 - rho * rho) * rng.normal(0.0, 1.0, (chunk, 2, n)) + 10.0
        for r in range(chunk):
            control = CovariateSummary.from_values(post[r, 0], pre[r, 0])
            treatment = CovariateSummary.from_values(post[r, 1], pre[r, 1])
            adjusted = cuped_test(control, treatment, ALPHA)
            plain_differences.append(treatment.mean - control.mean)
            cuped_differences.append(adjusted.comparison.difference)
            reductions.append(adjusted.variance_reduction)
            rejections += adjusted.comparison.p_value < ALPHA
    plain_var = float(np.var(plain_differences, ddof=1))
    cuped_var = float(np.var(cuped_differences, ddof=1))
    reduction = 1 - cuped_var / plain_var
    # Monte-Carlo error of a ratio of two correlated sample variances: Var(log ratio) ≈ 4 (1 - r²) / runs.
    correlation = float(np.corrcoef(plain_differences, cuped_differences)[0, 1])
    tolerance = max(0.05, 2 * (1 - reduction) * math.sqrt(4 * (1 - correlation**2) / runs))
    return [
        Row(
            f"CUPED, pre-period covariate ρ = {rho}: variance of the estimated difference removed",
            _pct(reduction),
            f"{_pct(rho * rho)} (ρ²) ± {100 * tolerance:.1f}",
            f"Welch without covariate: Var = {plain_var:.2e}; in-sample estimate {_pct(float(np.mean(reductions)))}",
            abs(reduction - rho * rho) <= tolerance,
        ),
        _fpr_row("  CUPED A/A (2,000/arm): false positives", rejections, runs),
    ]


def bandit(rng: np.random.Generator, replications: int) -> list[Row]:
    rates = np.array([0.04, 0.05, 0.06])
    keys = ["4%", "5%", "6%"]
    pulls, batch, floor, min_samples = 50_000, 500, 0.05, 500
    gaps = rates.max() - rates
    regrets, uniform_regrets, shares, lowest_weights = [], [], [], []
    for _ in range(replications):
        trials = np.zeros(3, dtype=np.int64)
        successes = np.zeros(3, dtype=np.int64)
        uniform_trials = np.zeros(3, dtype=np.int64)
        lowest = 1.0
        for start in range(0, pulls, batch):
            arms = [BernoulliArm(k, int(s), int(t)) for k, s, t in zip(keys, successes, trials, strict=True)]
            allocation = thompson_bernoulli(arms, floor=floor, min_samples=min_samples, draws=4_000, rng=rng)
            weights = np.array([allocation.weights[k] for k in keys])
            lowest = min(lowest, float(weights.min()))
            size = min(batch, pulls - start)
            served = rng.multinomial(size, weights)
            trials += served
            successes += rng.binomial(served, rates)
            uniform_trials += rng.multinomial(size, np.full(3, 1 / 3))
        regrets.append(float(gaps @ trials))
        uniform_regrets.append(float(gaps @ uniform_trials))
        shares.append(float((trials / pulls).min()))
        lowest_weights.append(lowest)
    regret, uniform = float(np.mean(regrets)), float(np.mean(uniform_regrets))
    return [
        Row(
            f"Bandit 4% / 5% / 6% over {pulls:,} pulls (re-weighted every {batch}): expected regret",
            f"{regret:.0f} conversions ({_pct(regret / uniform, 0)} of uniform)",
            "≤ 30% of uniform",
            f"{uniform:.0f} conversions with an even split",
            regret <= 0.3 * uniform,
        ),
        Row(
            "  every arm at or above its floor",
            f"lowest weight {_pct(min(lowest_weights), 2)}, lowest share served {_pct(min(shares), 2)}",
            f"≥ {_pct(floor)}",
            "-",
            min(lowest_weights) >= floor - 1e-12 and min(shares) >= floor,
        ),
    ]


def sample_ratio(rng: np.random.Generator, runs: int) -> list[Row]:
    flagged = sample_ratio_check({"A": 10_300, "B": 9_700}, {"A": 0.5, "B": 0.5})
    fair = rng.binomial(20_000, 0.5, runs)
    false_alarms = sum(
        sample_ratio_check({"A": int(a), "B": 20_000 - int(a)}, {"A": 0.5, "B": 0.5}).mismatch for a in fair
    )
    return [
        Row(
            "SRM: 50/50 plan realized as 51.5/48.5 on 20,000 units",
            f"p = {flagged.p_value:.1e}, {'flagged' if flagged.mismatch else 'not flagged'}",
            "flagged (p < 0.001)",
            "-",
            flagged.mismatch,
        ),
        Row(
            "  SRM false alarms on fair 50/50 splits of 20,000",
            _pct(false_alarms / runs),
            "≤ 0.5% (0.1% expected)",
            "-",
            false_alarms / runs <= 0.005,
        ),
    ]


def real_assignment(seed: int) -> list[Row]:
    split = ExperimentSplit(f"bench-{seed}", allocate({"A": 1, "B": 1}))
    counts = Counter(split.variants_for(f"person-{i}" for i in range(100_000)))
    check = sample_ratio_check({"A": counts["A"], "B": counts["B"]}, {"A": 1, "B": 1})
    return [
        Row(
            "Assignment: 100,000 units hashed 50/50",
            f"{counts['A']:,} / {counts['B']:,}, p = {check.p_value:.2f}",
            "p > 0.001",
            "-",
            not check.mismatch,
        )
    ]


def render(rows: list[Row]) -> str:
    header = ("Figure", "Measured", "Target", "Baseline (same run)", "Result")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append(f"| {row.figure} | {row.measured} | {row.target} | {row.baseline} | {row.result} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--experiments", type=int, default=1000, help="simulated experiments per figure")
    parser.add_argument("--bandit-runs", type=int, default=None, help="bandit replications (default experiments/10)")
    args = parser.parse_args(argv)
    runs = args.experiments
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    # Plan from "history": a large pre-experiment sample, as a marketer would from last month's data.
    history = _revenue(rng, (200_000,))
    baseline_mean, baseline_sd = float(history.mean()), float(history.std(ddof=1))

    rows: list[Row] = []
    steps = [
        lambda: aa_fixed_horizon(rng, runs),
        lambda: aa_conversion(rng, runs),
        lambda: aa_ratio(rng, runs),
        lambda: aa_sequential(rng, runs, baseline_sd),
        lambda: ab_power_revenue(rng, runs, baseline_mean, baseline_sd),
        lambda: ab_power_conversion(rng, runs),
        lambda: cuped(rng, runs),
        lambda: bandit(rng, args.bandit_runs or max(10, runs // 10)),
        lambda: sample_ratio(rng, runs),
        lambda: real_assignment(args.seed),
    ]
    for step in steps:
        rows.extend(step())
    elapsed = time.perf_counter() - started

    print(f"Experiments by simulation: {runs:,} experiments per figure, seed {args.seed}, alpha {ALPHA}")
    print(f"Baseline revenue/visitor from history: mean {baseline_mean:.2f}, sd {baseline_sd:.2f}")
    print()
    print(render(rows))
    print()
    failed = sum(row.passed is False for row in rows)
    print(f"{len(rows)} figures, {failed} failed, {elapsed:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
