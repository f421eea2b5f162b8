"""The journeys people start from: each a name, a sentence on what it does, and a definition
(the format of ``journeys.definition``) to copy and adapt. The console offers them as templates.

The definitions name the campaigns they send as templates (``cart-reminder``, ``back-in-stock``);
a journey is created only once its campaigns exist (``lifecycle`` checks), so whoever offers a
starter lets the person pick or create those first.
"""

from __future__ import annotations

import copy
from typing import Any, TypedDict


class Starter(TypedDict):
    name: str
    description: str
    definition: dict[str, Any]


STARTERS: dict[str, Starter] = {
    "abandoned-cart": {
        "name": "Abandoned cart",
        "description": (
            "Added to cart and no purchase within 4 hours: an email with the cart's items and "
            "recommendations; leaves the journey the moment they buy."
        ),
        "definition": {
            "trigger": {"type": "event", "event": "Product Added"},
            "steps": [
                {"id": "wait", "type": "wait", "hours": 4},
                {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
            ],
            "exit_on": [{"event": "Order Completed"}],
            "reentry": {"mode": "after_exit"},
            "holdout_share": 0.1,
        },
    },
    "back-in-stock": {
        "name": "Back in stock",
        "description": (
            "Viewed or carted an item that was out of stock: when a catalogue sync brings it back, an "
            "email about that item, once per person and item."
        ),
        "definition": {
            "trigger": {"type": "back_in_stock", "interest": ["view", "add_to_cart"], "within_days": 30},
            "steps": [{"id": "send", "type": "send_email", "campaign": "back-in-stock"}],
            "reentry": {"mode": "every_time"},
            "holdout_share": 0.1,
        },
    },
}


def starters() -> dict[str, Starter]:
    """A copy of every starter, by key (safe to change)."""
    return copy.deepcopy(STARTERS)


def starter(key: str) -> Starter:
    """One starter, copied; ``KeyError`` naming the key when there is none."""
    if key not in STARTERS:
        raise KeyError(f"No starter journey has the key {key!r}; choose one of {', '.join(STARTERS)}.")
    return copy.deepcopy(STARTERS[key])
