"""Rates with intervals for the watch of the active version (click-through and conversion of
answers), in plain Python."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``n`` with its 95% Wilson score interval."""

    hits: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"hits": self.hits, "n": self.n, "value": self.value, "low": self.low, "high": self.high}


def wilson(hits: int, n: int, z: float = Z95) -> Rate:
    if n <= 0:
        return Rate(0, 0, 0.0, 1.0)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Rate(hits, n, max(0.0, centre - half), min(1.0, centre + half))


def difference(a: Rate, b: Rate) -> tuple[float, float, float]:
    """``a - b`` with Newcombe's hybrid score interval (from the two Wilson intervals): well behaved
    for the small rates of click-through, where the plain normal interval is not."""
    d = a.value - b.value
    if not a.n or not b.n:
        return d, -1.0, 1.0
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return d, low, high
