"""The engine's public face for the apps below it (campaigns): recommendations for a person on a
surface, as plain dataclasses. The active engine version answers, the baseline stands in before
any training; surfaces plug in behind this function, whose signature is the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from personalization import serving, surface_serving
from personalization.baseline import RecommendedItem

__all__ = ["RecommendedItem", "SurfaceAnswer", "recommend"]


@dataclass
class SurfaceAnswer:
    recommendation_id: str
    surface: str | None
    personalized: bool
    items: list[RecommendedItem]
    degraded_reason: str = ""  # empty unless the answer is a fallback, e.g. the model could not be loaded


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
    if surface is not None:
        try:
            served = surface_serving.serve(_surface_request(surface, person_id, limit, context or {}))
        except surface_serving.UnknownSurface:
            pass  # a surface not configured yet: the engine's plain answer below
        else:
            items = [RecommendedItem(i.item_id, i.title, i.score, i.source, i.reason) for i in served.items]
            return SurfaceAnswer(served.recommendation_id, surface, served.personalized, items, served.degraded_reason)
    answer = serving.recommend(person_id, limit, kind, keep_profile=False)
    return SurfaceAnswer(answer.recommendation_id, surface, answer.personalized, answer.items, answer.degraded_reason)


def _surface_request(
    surface: str, person_id: int | None, limit: int, context: dict[str, Any]
) -> surface_serving.ServeRequest:
    current = context.get("item") or context.get("current_item")
    return surface_serving.ServeRequest(
        surface=surface,
        person_id=person_id,
        context={k: v for k, v in context.items() if isinstance(v, str | list)},
        current_item=str(current) if current else None,
        cart=[str(i) for i in context.get("cart") or []],
        limit=limit,
    )
