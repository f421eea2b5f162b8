"""Deterministic assignment of units (people, sessions, accounts) to experiment variants.

Plain Python, free of Django: serving, the exposure logger and the benchmarks call the same code.

How a unit finds its variant
----------------------------
A unit's *bucket* is a stable 64-bit BLAKE2b hash of (salt, unit id) reduced modulo 10,000. The
hash does not depend on the process, the machine or ``PYTHONHASHSEED`` (unlike ``hash()``), so a
unit gets the same bucket in every web process and after every restart. Each experiment has its
own salt (by default its key), so buckets of two experiments are independent of each other.

An :class:`Allocation` says which buckets belong to which variant. Buckets that belong to no
variant are outside the experiment (the traffic share not enrolled) and get the default
experience.

Why explicit bucket sets rather than cumulative ranges
------------------------------------------------------
The simplest design maps the unit's bucket through cumulative weights (A gets [0, w_A), B gets
[w_A, w_A + w_B), ...). With two variants that moves only the units that must move when the
weights change, but with three or more it does not: shrinking A shifts the start of B's range,
which pushes some of B's units into C although B's and C's shares may not have changed at all.

So an allocation stores each variant's buckets explicitly (as sorted half-open ranges, small
enough for a JSON field) and :func:`reallocate` changes it with as few moves as possible: every
variant (and the "not enrolled" pool) keeps as many of its current buckets as its new share
allows; only the buckets of shrinking variants are released, and growing variants take just those.
The number of buckets that change hands is then sum(max(0, old - new)) over variants, which is the
least any rule can achieve. Units whose bucket did not change hands keep their variant.

Units that did move were exposed to two variants; analyses should either use the units exposed
under one allocation only or start afresh. Starting afresh is *re-bucketing*: give the experiment
a new salt (for example ``f"{key}:2"``, see :func:`rebucket_salt`), which reshuffles every unit.

Layers (mutually exclusive experiments)
---------------------------------------
A :class:`Layer` has its own salt and hands out slices of its 10,000 layer buckets to experiments.
A unit's layer bucket picks at most one experiment, so two experiments in one layer never share a
unit. Inside its slice the experiment still assigns the variant with its own salt: re-using the
layer hash would make the variant depend on which part of the layer the slice covers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

BUCKETS = 10_000

Ranges = tuple[tuple[int, int], ...]


def unit_hash(salt: str, unit_id: str) -> int:
    """A stable, unsigned 64-bit hash of (salt, unit id).

    The salt is length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
    """
    salt_bytes = salt.encode("utf-8")
    payload = b"%d:" % len(salt_bytes) + salt_bytes + str(unit_id).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def bucket_of(salt: str, unit_id: str, buckets: int = BUCKETS) -> int:
    """The unit's bucket in ``range(buckets)`` (modulo bias below 1e-15 for 10,000 buckets)."""
    return unit_hash(salt, unit_id) % buckets


def rebucket_salt(key: str, generation: int) -> str:
    """The salt of an experiment after its ``generation``-th re-bucketing (generation 0 is the key)."""
    if generation < 0:
        raise ValueError("generation must be >= 0")
    return key if generation == 0 else f"{key}:{generation}"


def _to_ranges(buckets: Iterable[int]) -> Ranges:
    """Sorted bucket numbers as merged half-open ranges: [0, 1, 2, 7] -> ((0, 3), (7, 8))."""
    ranges: list[tuple[int, int]] = []
    for bucket in sorted(buckets):
        if ranges and ranges[-1][1] == bucket:
            ranges[-1] = (ranges[-1][0], bucket + 1)
        else:
            ranges.append((bucket, bucket + 1))
    return tuple(ranges)


def _from_ranges(ranges: Iterable[Sequence[int]]) -> list[int]:
    return [bucket for start, stop in ranges for bucket in range(start, stop)]


@dataclass(frozen=True)
class Allocation:
    """Which buckets belong to which variant; buckets in no range are not enrolled.

    ``ranges`` maps a variant key to sorted half-open ``(start, stop)`` bucket ranges. The order of
    the keys is the order the variants were declared in (control first, by convention).
    """

    ranges: Mapping[str, Ranges]
    buckets: int = BUCKETS

    def __post_init__(self) -> None:
        if self.buckets <= 0:
            raise ValueError("buckets must be positive")
        seen = 0
        for key, variant_ranges in self.ranges.items():
            for start, stop in variant_ranges:
                if not 0 <= start < stop <= self.buckets:
                    raise ValueError(f"variant {key!r} has an invalid bucket range ({start}, {stop})")
            seen += self.bucket_count(key)
        owners = self.owners
        if seen != sum(owner is not None for owner in owners):
            raise ValueError("bucket ranges of different variants overlap")

    @cached_property
    def owners(self) -> tuple[str | None, ...]:
        """The variant owning each bucket (None: not enrolled), indexed by bucket."""
        owners: list[str | None] = [None] * self.buckets
        for key, variant_ranges in self.ranges.items():
            for start, stop in variant_ranges:
                owners[start:stop] = [key] * (stop - start)
        return tuple(owners)

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.ranges)

    def bucket_count(self, variant: str) -> int:
        return sum(stop - start for start, stop in self.ranges.get(variant, ()))

    def variant_for_bucket(self, bucket: int) -> str | None:
        return self.owners[bucket]

    def shares(self) -> dict[str, float]:
        """Each variant's share of all units (enrolled or not)."""
        return {key: self.bucket_count(key) / self.buckets for key in self.ranges}

    @property
    def traffic(self) -> float:
        """The share of units enrolled in the experiment."""
        return sum(self.bucket_count(key) for key in self.ranges) / self.buckets

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, for storing on the experiment row."""
        return {
            "buckets": self.buckets,
            "ranges": {key: [list(r) for r in variant_ranges] for key, variant_ranges in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Allocation:
        raw_ranges = data["ranges"]
        if not isinstance(raw_ranges, Mapping):
            raise ValueError("ranges must be a mapping of variant key to bucket ranges")
        buckets = data.get("buckets", BUCKETS)
        if not isinstance(buckets, int):
            raise ValueError("buckets must be an integer")
        ranges = {str(key): tuple((int(r[0]), int(r[1])) for r in value) for key, value in raw_ranges.items()}
        return cls(ranges=ranges, buckets=buckets)


def bucket_counts(weights: Mapping[str, float], traffic: float = 1.0, buckets: int = BUCKETS) -> dict[str, int]:
    """Whole numbers of buckets per variant for relative ``weights`` and an enrolled ``traffic`` share.

    Largest-remainder rounding, so the counts add up to ``round(traffic * buckets)`` exactly.
    """
    if not weights:
        raise ValueError("at least one variant is needed")
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise ValueError("weights must be finite and non-negative")
    total_weight = sum(weights.values())
    if total_weight <= 0:
        raise ValueError("weights must not all be zero")
    if not 0 < traffic <= 1:
        raise ValueError("traffic must be in (0, 1]")
    enrolled = round(traffic * buckets)
    exact = {key: enrolled * w / total_weight for key, w in weights.items()}
    counts = {key: math.floor(value) for key, value in exact.items()}
    remainder = enrolled - sum(counts.values())
    by_fraction = sorted(exact, key=lambda key: exact[key] - counts[key], reverse=True)
    for key in by_fraction[:remainder]:
        counts[key] += 1
    return counts


def reallocate(
    current: Allocation | None, weights: Mapping[str, float], traffic: float = 1.0, buckets: int = BUCKETS
) -> Allocation:
    """A new allocation for ``weights`` that moves as few buckets as possible away from ``current``.

    Every variant keeps its lowest-numbered buckets up to its new count and releases the rest (the
    pool of buckets not enrolled keeps its highest-numbered ones); variants that grow (in
    declaration order, then the pool) take released buckets from the lowest number up. Variants
    missing from ``weights`` release all their buckets. With ``current=None`` this lays the
    variants out as contiguous ranges from bucket 0.
    """
    if current is not None and current.buckets != buckets:
        raise ValueError("cannot reallocate across different bucket counts")
    variant_counts = bucket_counts(weights, traffic, buckets)
    counts: dict[str | None, int] = dict(variant_counts.items())
    counts[None] = buckets - sum(variant_counts.values())

    held: dict[str | None, list[int]] = {}
    if current is None:
        held[None] = list(range(buckets))
    else:
        for bucket, owner in enumerate(current.owners):
            held.setdefault(owner, []).append(bucket)

    kept: dict[str | None, list[int]] = {}
    released: list[int] = []
    for owner, owned in held.items():
        keep = counts.get(owner, 0)
        # Variants keep their lowest buckets, the pool its highest, so a first allocation is
        # laid out from bucket 0 up.
        if owner is None:
            kept[owner], spare = owned[len(owned) - keep :], owned[: len(owned) - keep]
        else:
            kept[owner], spare = owned[:keep], owned[keep:]
        released.extend(spare)
    released.sort()

    position = 0
    new_ranges: dict[str, Ranges] = {}
    for owner in [*weights, None]:
        mine = kept.get(owner, [])
        need = counts[owner] - len(mine)
        mine = mine + released[position : position + need]
        position += need
        if owner is not None:
            new_ranges[owner] = _to_ranges(mine)
    return Allocation(ranges=new_ranges, buckets=buckets)


def allocate(weights: Mapping[str, float], traffic: float = 1.0, buckets: int = BUCKETS) -> Allocation:
    """A first allocation: contiguous bucket ranges in declaration order, ``traffic`` share enrolled."""
    return reallocate(None, weights, traffic, buckets)


def moved_buckets(before: Allocation, after: Allocation) -> int:
    """How many buckets changed owner (enrolment counts as an owner: joining or leaving is a move)."""
    if before.buckets != after.buckets:
        raise ValueError("allocations have different bucket counts")
    return sum(a != b for a, b in zip(before.owners, after.owners, strict=True))


@dataclass(frozen=True)
class ExperimentSplit:
    """An experiment's salt and allocation: all that is needed to assign a unit."""

    salt: str
    allocation: Allocation

    def bucket_of(self, unit_id: str) -> int:
        return bucket_of(self.salt, unit_id, self.allocation.buckets)

    def variant_for(self, unit_id: str) -> str | None:
        """The unit's variant, or None when the unit is not enrolled."""
        return self.allocation.variant_for_bucket(self.bucket_of(unit_id))

    def variants_for(self, unit_ids: Iterable[str]) -> list[str | None]:
        owners = self.allocation.owners
        n = self.allocation.buckets
        return [owners[unit_hash(self.salt, unit_id) % n] for unit_id in unit_ids]


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str


@dataclass(frozen=True)
class Layer:
    """A namespace of mutually exclusive experiments.

    ``slices`` is an :class:`Allocation` whose "variants" are experiment keys: the share of the
    layer's units each experiment may use. Build it with :func:`allocate` / :func:`reallocate`
    using absolute shares and ``traffic=sum(shares)``, or with :meth:`with_slices`.
    """

    salt: str
    slices: Allocation = field(default_factory=lambda: Allocation(ranges={}))

    @classmethod
    def with_slices(cls, salt: str, shares: Mapping[str, float], previous: Layer | None = None) -> Layer:
        """A layer where each experiment gets ``shares[key]`` of all units (the shares add up to <= 1).

        Passing ``previous`` keeps every running experiment on the layer buckets it already has.
        """
        total = sum(shares.values())
        if total > 1 + 1e-12:
            raise ValueError("the slices of a layer cannot add up to more than the whole layer")
        current = previous.slices if previous is not None else None
        return cls(salt=salt, slices=reallocate(current, shares, traffic=min(total, 1.0)))

    def experiment_for(self, unit_id: str) -> str | None:
        """The one experiment of this layer the unit may be in, or None."""
        return self.slices.variant_for_bucket(bucket_of(self.salt, unit_id, self.slices.buckets))

    def assign(self, unit_id: str, splits: Mapping[str, ExperimentSplit]) -> Assignment | None:
        """The unit's (experiment, variant) in this layer, or None when it is in none of them."""
        experiment = self.experiment_for(unit_id)
        if experiment is None or experiment not in splits:
            return None
        variant = splits[experiment].variant_for(unit_id)
        return None if variant is None else Assignment(experiment=experiment, variant=variant)
