"""The five journeys people start from: each a name, a sentence on what it does, and a definition
(the format of ``journeys.definition``) to copy and adapt.

The definitions name the campaigns they send as templates (``cart-reminder``, ``back-in-stock``,
``onboarding-calendar``, ``expansion-csm``, ``weekly-digest``) and the in-product campaign
``upgrade-prompt``; a journey is created only once its campaigns exist (``lifecycle`` checks), so
whoever offers a starter lets the person pick or create those first. docs/journeys.md runs each one.
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
    "onboarding-day-3": {
        "name": "Onboarding day 3: connect the calendar",
        "description": (
            "Account executives who connected the CRM and have not connected the calendar by day 3: "
            "the checklist shows that step first and one focused email links straight to it, instead of the "
            "generic onboarding email."
        ),
        "definition": {
            "trigger": {"type": "event", "event": "Integration Connected", "where": {"integration": "crm"}},
            "steps": [
                {
                    "id": "is-ae",
                    "type": "branch",
                    "if": {"trait": "role", "equals": "account_executive"},
                    "then": "day-3",
                    "else": "not-for-them",
                },
                {"id": "not-for-them", "type": "exit"},
                {"id": "day-3", "type": "wait", "days": 3},
                {
                    "id": "checklist",
                    "type": "update_surface",
                    "surface": "onboarding-checklist",
                    "item": "connect-calendar",
                    "note": "Connect your calendar to log meetings with your CRM deals",
                },
                {
                    "id": "email",
                    "type": "send_email",
                    "campaign": "onboarding-calendar",
                    "instead_of": ["onboarding-generic"],
                },
            ],
            "exit_on": [{"event": "Integration Connected", "where": {"integration": "calendar"}}],
            "reentry": {"mode": "once"},
            "holdout_share": 0.1,
        },
    },
    "expansion": {
        "name": "Expansion: 500 API calls",
        "description": (
            "The 500th API call of an account in a billing cycle: an upgrade prompt in the product, and "
            "an email from the account's CSM that waits in their approval queue."
        ),
        "definition": {
            "trigger": {
                "type": "event_count",
                "event": "API Call",
                "threshold": 500,
                "period": "billing_cycle",
                "per": "account",
            },
            "steps": [
                {"id": "prompt", "type": "update_surface", "surface": "in-app", "campaign": "upgrade-prompt"},
                {"id": "approve", "type": "require_approval"},
                {"id": "csm-email", "type": "send_email", "campaign": "expansion-csm", "from": "csm"},
            ],
            "exit_on": [{"event": "Plan Upgraded"}],
            "reentry": {"mode": "every_time"},
            "holdout_share": 0,
        },
    },
    "weekly-digest": {
        "name": "Weekly digest",
        "description": (
            "Each Monday at 08:00 in the person's time zone, three items picked for them that they have "
            "not been shown before; nothing is sent when nothing new qualifies."
        ),
        "definition": {
            "trigger": {"type": "schedule", "every": "weekly", "weekday": 0, "local_time": "08:00"},
            "steps": [
                {"id": "digest", "type": "send_email", "campaign": "weekly-digest", "picks": 3, "window_hours": 3},
            ],
            "reentry": {"mode": "every_time"},
            "holdout_share": 0.05,
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
