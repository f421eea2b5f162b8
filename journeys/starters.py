"""Journeys to start from: each a name, what it does, and a definition the console's builder opens
as a draft. Their email steps name the campaign to use as the template (``cart-reminder``,
``back-in-stock``); the builder asks for another when that campaign does not exist.

    STARTERS[key] = {"name": …, "description": …, "definition": {…}}
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

STARTERS: dict[str, dict[str, Any]] = {
    "abandoned-cart": {
        "name": "Abandoned cart",
        "description": (
            "Added to cart and no purchase within 4 hours: an email with the cart's items and "
            "recommendations; leaves the moment they buy."
        ),
        "definition": {
            "trigger": {"type": "event", "event": "Product Added"},
            "steps": [
                {"id": "wait", "type": "wait", "hours": 4},
                {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
            ],
            "exit_on": [{"event": "Order Completed"}],
            "reentry": {"mode": "after_exit", "cooldown_hours": 24},
            "holdout_share": 0.1,
        },
    },
    "back-in-stock": {
        "name": "Back in stock",
        "description": (
            "Viewed or carted an item that was out of stock: when a catalogue sync brings it back, "
            "one email about that item (once per person and item)."
        ),
        "definition": {
            "trigger": {"type": "back_in_stock", "interest": ["view", "add_to_cart"], "within_days": 30},
            "steps": [{"id": "send", "type": "send_email", "campaign": "back-in-stock"}],
            "exit_on": [],
            "reentry": {"mode": "every_time", "cooldown_hours": 0},
            "holdout_share": 0.0,
        },
    },
}

BLANK: dict[str, Any] = {
    "trigger": {"type": "event", "event": ""},
    "steps": [{"id": "wait", "type": "wait", "hours": 1}],
    "exit_on": [],
    "reentry": {"mode": "after_exit", "cooldown_hours": 0},
    "holdout_share": 0.0,
}


def starter(key: str) -> dict[str, Any] | None:
    """A copy of a starter (the caller may change it), or None."""
    found = STARTERS.get(key)
    return deepcopy(found) if found is not None else None
