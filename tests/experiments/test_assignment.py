from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from experiments.assignment import (
    BUCKETS,
    Allocation,
    ExperimentSplit,
    Layer,
    allocate,
    bucket_counts,
    bucket_of,
    moved_buckets,
    reallocate,
    rebucket_salt,
    unit_hash,
)

REPO = Path(__file__).resolve().parents[2]
UNITS = [f"person-{i}" for i in range(100_000)]


def test_hash_is_pinned_so_running_experiments_never_reshuffle() -> None:
    # Changing the hash would move every unit of every running experiment: these values must not change.
    assert unit_hash("homepage-grid", "person-42") == 4976665606455024089
    assert bucket_of("homepage-grid", "person-42") == 4089


def test_salt_and_unit_cannot_run_into_each_other() -> None:
    assert unit_hash("ab", "c") != unit_hash("a", "bc")


def test_even_split_of_100k_units_passes_chi_square() -> None:
    split = ExperimentSplit("checkout-button", allocate({"control": 1, "treatment": 1}))

    counts = Counter(split.variants_for(UNITS))

    assert set(counts) == {"control", "treatment"}
    assert stats.chisquare([counts["control"], counts["treatment"]]).pvalue > 0.001


def test_uneven_weights_are_honoured() -> None:
    split = ExperimentSplit("hero-banner", allocate({"control": 80, "treatment": 20}))

    counts = Counter(split.variants_for(UNITS))

    assert stats.chisquare([counts["control"], counts["treatment"]], [80_000, 20_000]).pvalue > 0.001


def test_same_unit_gets_same_variant_in_another_process() -> None:
    allocation = allocate({"A": 1, "B": 1, "C": 2})
    units = UNITS[:2000]
    here = ExperimentSplit("exp-7", allocation).variants_for(units)
    script = (
        "import json, sys\n"
        "from experiments.assignment import Allocation, ExperimentSplit\n"
        "allocation = Allocation.from_dict(json.loads(sys.argv[1]))\n"
        "units = [f'person-{i}' for i in range(2000)]\n"
        "print(json.dumps(ExperimentSplit('exp-7', allocation).variants_for(units)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}

    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(allocation.to_dict())],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=REPO,
    )

    assert json.loads(out.stdout) == here


def test_two_experiments_are_independent() -> None:
    first = ExperimentSplit("exp-one", allocate({"A": 1, "B": 1}))
    second = ExperimentSplit("exp-two", allocate({"A": 1, "B": 1}))
    units = UNITS[:50_000]

    pairs = Counter(zip(first.variants_for(units), second.variants_for(units), strict=True))
    table = [[pairs["A", "A"], pairs["A", "B"]], [pairs["B", "A"], pairs["B", "B"]]]

    assert stats.chi2_contingency(table, correction=False).pvalue > 0.001


def test_same_salt_is_not_independent_so_the_check_above_can_fail() -> None:
    first = ExperimentSplit("exp-one", allocate({"A": 1, "B": 1}))
    units = UNITS[:50_000]

    pairs = Counter(zip(first.variants_for(units), first.variants_for(units), strict=True))
    table = [[pairs["A", "A"], pairs["A", "B"]], [pairs["B", "A"], pairs["B", "B"]]]

    assert stats.chi2_contingency(table, correction=False).pvalue < 1e-10


def test_weight_change_moves_only_the_units_that_must_move() -> None:
    before = allocate({"A": 1, "B": 1, "C": 1})
    after = reallocate(before, {"A": 2, "B": 1, "C": 1})
    old, new = ExperimentSplit("s", before), ExperimentSplit("s", after)
    units = UNITS[:30_000]

    changes = Counter((a, b) for a, b in zip(old.variants_for(units), new.variants_for(units), strict=True) if a != b)

    # A grows from 3,334 to 5,000 buckets; B and C each give up 833 buckets and nothing else moves.
    assert moved_buckets(before, after) == 1666
    assert set(changes) == {("B", "A"), ("C", "A")}
    assert after.shares() == {"A": 0.5, "B": 0.25, "C": 0.25}


def test_reallocation_beats_cumulative_ranges() -> None:
    before = allocate({"A": 1, "B": 1, "C": 1})
    cumulative = allocate({"A": 2, "B": 1, "C": 1})  # the naive layout: ranges laid end to end again

    assert moved_buckets(before, reallocate(before, {"A": 2, "B": 1, "C": 1})) < moved_buckets(before, cumulative)


def test_raising_traffic_keeps_every_enrolled_unit_where_it_was() -> None:
    before = allocate({"A": 1, "B": 1}, traffic=0.2)
    after = reallocate(before, {"A": 1, "B": 1}, traffic=0.6)

    for bucket in range(BUCKETS):
        if before.variant_for_bucket(bucket) is not None:
            assert after.variant_for_bucket(bucket) == before.variant_for_bucket(bucket)
    assert after.traffic == pytest.approx(0.6)


weights_strategy = st.dictionaries(
    st.sampled_from(["A", "B", "C", "D", "E"]), st.integers(min_value=0, max_value=100), min_size=1
).filter(lambda w: sum(w.values()) > 0)


@settings(max_examples=60, deadline=None)
@given(first=weights_strategy, second=weights_strategy, traffic=st.sampled_from([0.1, 0.5, 1.0]))
def test_any_reallocation_moves_the_fewest_buckets_possible(
    first: dict[str, int], second: dict[str, int], traffic: float
) -> None:
    before = allocate(first, traffic=traffic)
    after = reallocate(before, second, traffic=1.0)

    old_counts = {key: before.bucket_count(key) for key in {*first, *second}}
    new_counts = bucket_counts(second, 1.0)
    old_counts[""] = BUCKETS - sum(before.bucket_count(key) for key in first)
    new_counts[""] = BUCKETS - sum(new_counts.values())
    least = sum(max(0, old_counts[key] - new_counts.get(key, 0)) for key in old_counts)

    assert {key: after.bucket_count(key) for key in second} == bucket_counts(second, 1.0)
    assert moved_buckets(before, after) == least


def test_rebucketing_reshuffles_units() -> None:
    allocation = allocate({"A": 1, "B": 1})
    units = UNITS[:20_000]
    old = ExperimentSplit(rebucket_salt("exp", 0), allocation).variants_for(units)
    new = ExperimentSplit(rebucket_salt("exp", 1), allocation).variants_for(units)

    changed = sum(a != b for a, b in zip(old, new, strict=True)) / len(units)

    assert 0.47 < changed < 0.53


def test_allocation_survives_a_json_round_trip() -> None:
    allocation = reallocate(allocate({"A": 1, "B": 1, "C": 1}), {"A": 3, "B": 1, "C": 1})

    assert Allocation.from_dict(json.loads(json.dumps(allocation.to_dict()))) == allocation


def test_overlapping_ranges_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Allocation(ranges={"A": ((0, 6000),), "B": ((5000, 10000),)})


def test_experiments_in_one_layer_never_share_a_unit() -> None:
    layer = Layer.with_slices("homepage", {"grid": 0.3, "carousel": 0.3, "banner": 0.2})
    splits = {key: ExperimentSplit(key, allocate({"A": 1, "B": 1})) for key in ("grid", "carousel", "banner")}
    units = UNITS[:40_000]

    for unit in units[:5000]:
        layer_bucket = bucket_of("homepage", unit)
        claims = [
            key
            for key, ranges in layer.slices.ranges.items()
            if any(start <= layer_bucket < stop for start, stop in ranges)
        ]
        assert len(claims) <= 1
    seen = Counter(a.experiment if a else None for a in (layer.assign(unit, splits) for unit in units))

    assert (
        stats.chisquare(
            [seen["grid"], seen["carousel"], seen["banner"], seen[None]], [12_000, 12_000, 8_000, 8_000]
        ).pvalue
        > 0.001
    )


def test_variants_inside_a_layer_slice_stay_balanced() -> None:
    layer = Layer.with_slices("homepage", {"grid": 0.5})
    splits = {"grid": ExperimentSplit("grid", allocate({"A": 1, "B": 1}))}

    counts = Counter(a.variant for a in (layer.assign(u, splits) for u in UNITS) if a is not None)

    assert stats.chisquare([counts["A"], counts["B"]]).pvalue > 0.001


def test_adding_an_experiment_to_a_layer_keeps_running_ones_in_place() -> None:
    layer = Layer.with_slices("homepage", {"grid": 0.4, "carousel": 0.3})
    grown = Layer.with_slices("homepage", {"grid": 0.4, "carousel": 0.3, "banner": 0.3}, previous=layer)
    units = UNITS[:20_000]

    before = [layer.experiment_for(u) for u in units]
    after = [grown.experiment_for(u) for u in units]

    assert all(b == a for b, a in zip(before, after, strict=True) if b is not None)
    assert {a for b, a in zip(before, after, strict=True) if b is None} == {"banner"}


def test_layer_slices_cannot_exceed_the_layer() -> None:
    with pytest.raises(ValueError):
        Layer.with_slices("homepage", {"grid": 0.7, "carousel": 0.4})


def test_assignment_stays_uniform_over_buckets() -> None:
    buckets = np.array([bucket_of("uniformity", u) for u in UNITS[:50_000]])
    counts = np.bincount(buckets // 100, minlength=100)  # 100 groups of 100 buckets

    assert stats.chisquare(counts).pvalue > 0.001
