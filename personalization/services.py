"""The engine's public face for the apps below it (campaigns): recommendations for a person on a
surface, as plain dataclasses. The active engine version answers, the baseline stands in before
any training; surfaces plug in behind this function, whose signature is the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from personalization import serving
from personalization.baseline import RecommendedItem

__all__ = ["RecommendedItem", "SurfaceAnswer", "recommend"]


@dataclass
class SurfaceAnswer:
    recommendation_id: str
    surface: str | None
    personalized: bool
    items: list[RecommendedItem]


def recommend(
    person_id: int | None,
    *,
    surface: str | None = None,
    limit: int = 20,
    kind: str | None = "product",
    context: dict[str, Any] | None = None,
) -> SurfaceAnswer:
    """Items for one person (``None`` for an unknown visitor), consent respected.

    ``surface`` names the placement (e.g. ``"email-product-block"``); ``context`` carries what the
    caller knows about the moment (current item, cart, channel).
    """
    answer = serving.recommend(person_id, limit, kind)
    return SurfaceAnswer(answer.recommendation_id, surface, answer.personalized, answer.items)
