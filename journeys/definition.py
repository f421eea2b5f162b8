"""A journey's definition: what it is, validated before it is stored, with errors naming the field.

    {
      "trigger": {"type": "event", "event": "Product Added", "where": {"currency": "EUR"}}
               | {"type": "event_count", "event": "API Call", "threshold": 500, "period_days": 30,
                  "per": "person" | "account"}
                 (or "period": "billing_cycle" instead of "period_days": counted in the billing cycle
                  of the account, ``Account.billing_day``, calendar months when it has none)
               | {"type": "audience", "segment": "trial-power-users"}         (a saved segment, journeys.Segment)
               | {"type": "back_in_stock", "interest": ["view", "add_to_cart"], "within_days": 30}
               | {"type": "price_drop", "interest": ["view", "add_to_cart"], "within_days": 30, "min_drop_percent": 5}
               | {"type": "schedule", "every": "daily" | "weekly", "weekday": 0, "local_time": "09:00"},
      "steps": [
        {"id": "wait", "type": "wait", "hours": 4}                       (or "minutes", "seconds")
        {"id": "w2", "type": "wait", "until_local_time": "09:00"}
        {"id": "w3", "type": "wait", "until_event": "Order Completed", "timeout_hours": 24}
        {"id": "b", "type": "branch", "if": {"did_event": "Order Completed"}, "then": "exit", "else": "send"}
                      ("if": {"did_not_event": …} | {"trait": "plan", "equals": "pro"} | {"consent": "email_marketing"}
                       | {"segment": "trial-power-users"})
        {"id": "approve", "type": "require_approval"}                     (the next send waits in the CSM queue)
        {"id": "send", "type": "send_email", "campaign": "cart-reminder"}
                      (optional "from": "csm": sent from the person's account's CSM;
                       optional "instead_of": ["onboarding-generic"]: the person's unsent messages of
                       those campaigns are suppressed (reason replaced) when this one is made;
                       optional "window_hours": 6: sent at the person's best hour within that window;
                       optional "picks": 3: that many items picked for them and never shown to them
                       before, as journey.picks; the step is skipped when none qualifies)
        {"id": "pin", "type": "update_surface", "surface": "onboarding-checklist", "item": "connect-calendar",
                      "note": "…"}                                        (the checklist shows the item first)
        {"id": "show", "type": "update_surface", "surface": "in-app", "campaign": "upgrade-prompt"}
                      (an in-product campaign's message for the person, shown by GET /api/v1/onboarding/…)
        {"id": "exit", "type": "exit"}
      ],
      "exit_on": [{"event": "Order Completed"}],
      "reentry": {"mode": "once" | "after_exit" | "every_time", "cooldown_hours": 0},
      "holdout_share": 0.1
    }

Steps run in order; a branch may only jump forward, so no step can run twice for an entry.

The five cases, each a definition in ``journeys.starters.STARTERS`` and run with curl in
docs/journeys.md (Case 1 to Case 5):

    abandoned-cart     event "Product Added" → wait 4 h → send_email; exit on "Order Completed"
    back-in-stock      back_in_stock (view, add_to_cart, 30 days) → send_email; every time
    onboarding-day-3   event "Integration Connected" {integration: crm} → branch trait role =
                       account_executive (else exit) → wait 3 days → update_surface
                       onboarding-checklist "connect-calendar" → send_email instead_of the generic one;
                       exit on "Integration Connected" {integration: calendar}
    expansion          event_count "API Call" 500 in a billing cycle per account → update_surface in-app
                       (campaign upgrade-prompt) → require_approval → send_email from the CSM;
                       exit on "Plan Upgraded"
    weekly-digest      schedule weekly Monday 08:00 local → send_email with picks 3, window_hours 3

Events match by the name they were sent with (case-insensitive) or by their kind (``add_to_cart``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

TRIGGERS = ("event", "event_count", "audience", "back_in_stock", "price_drop", "schedule")
STEP_TYPES = ("wait", "branch", "require_approval", "send_email", "update_surface", "exit")
COUNT_PER = ("person", "account")
COUNT_PERIODS = ("days", "billing_cycle")
SURFACES = ("onboarding-checklist", "in-app")
REENTRY_MODES = ("once", "after_exit", "every_time")
INTEREST_KINDS = ("view", "add_to_cart")
MAX_STEPS = 50
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class DefinitionError(ValueError):
    """A definition that cannot be stored; ``field`` is where, as a path (``steps[2].hours``)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def _require(condition: bool, field: str, detail: str) -> None:
    if not condition:
        raise DefinitionError(field, detail)


def _text(value: Any, field: str, max_length: int = 200) -> str:
    _require(
        isinstance(value, str) and 0 < len(value.strip()) <= max_length,
        field,
        f"Give a text of 1 to {max_length} characters.",
    )
    return str(value).strip()


def _number(value: Any, field: str, low: float, high: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    _require(ok, field, f"Give a number from {low:g} to {high:g}.")
    return float(value)


def local_time(value: Any, field: str) -> time:
    _require(isinstance(value, str) and bool(_LOCAL_TIME.match(value)), field, "Give a local time as HH:MM.")
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def _event_filter(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    _require(isinstance(value, dict) and len(value) <= 20, field, "Give an object of property: value (at most 20).")
    for name, expected in value.items():
        _require(
            isinstance(expected, (str, int, float, bool)) and not isinstance(expected, dict),
            f"{field}.{name}",
            "Give a text, number or true/false.",
        )
    return dict(value)


def _slug(value: Any, field: str) -> str:
    _require(
        isinstance(value, str) and bool(_SLUG.match(value)),
        field,
        "Give a key of letters, digits, - and _ (at most 100).",
    )
    return str(value)


def _trigger(value: Any) -> dict[str, Any]:
    _require(isinstance(value, dict), "trigger", "Give the entry trigger as an object.")
    kind = value.get("type")
    _require(kind in TRIGGERS, "trigger.type", f"Choose one of {', '.join(TRIGGERS)}.")
    out: dict[str, Any] = {"type": kind}
    if kind in ("event", "event_count"):
        out["event"] = _text(value.get("event"), "trigger.event")
        out["where"] = _event_filter(value.get("where"), "trigger.where")
    if kind == "event_count":
        out["threshold"] = int(_number(value.get("threshold"), "trigger.threshold", 1, 1_000_000))
        period = value.get("period", "days")
        _require(period in COUNT_PERIODS, "trigger.period", f"Choose one of {', '.join(COUNT_PERIODS)}.")
        out["period"] = period
        if period == "days":
            out["period_days"] = int(_number(value.get("period_days"), "trigger.period_days", 1, 366))
        per = value.get("per", "person")
        _require(per in COUNT_PER, "trigger.per", f"Choose one of {', '.join(COUNT_PER)}.")
        out["per"] = per
    if kind == "audience":
        out["segment"] = _slug(value.get("segment"), "trigger.segment")
    if kind in ("back_in_stock", "price_drop"):
        interest = value.get("interest", list(INTEREST_KINDS))
        _require(
            isinstance(interest, list) and bool(interest) and all(k in INTEREST_KINDS for k in interest),
            "trigger.interest",
            f"Give a list of {', '.join(INTEREST_KINDS)}.",
        )
        out["interest"] = sorted(set(interest))
        out["within_days"] = int(_number(value.get("within_days", 30), "trigger.within_days", 1, 365))
    if kind == "price_drop":
        out["min_drop_percent"] = _number(value.get("min_drop_percent", 1), "trigger.min_drop_percent", 0.01, 100)
    if kind == "schedule":
        _require(value.get("every") in ("daily", "weekly"), "trigger.every", "Choose daily or weekly.")
        out["every"] = value["every"]
        out["local_time"] = value.get("local_time", "09:00")
        local_time(out["local_time"], "trigger.local_time")
        if out["every"] == "weekly":
            out["weekday"] = int(_number(value.get("weekday", 0), "trigger.weekday", 0, 6))
    return out


def _condition(value: Any, field: str) -> dict[str, Any]:
    _require(
        isinstance(value, dict) and len(value) >= 1,
        field,
        "Give a condition: did_event, did_not_event, trait, consent or segment.",
    )
    if "did_event" in value:
        return {"did_event": _text(value["did_event"], f"{field}.did_event")}
    if "did_not_event" in value:
        return {"did_not_event": _text(value["did_not_event"], f"{field}.did_not_event")}
    if "trait" in value:
        expected = value.get("equals")
        _require(
            isinstance(expected, (str, int, float, bool)), f"{field}.equals", "Give the value the trait must equal."
        )
        return {"trait": _text(value["trait"], f"{field}.trait", 100), "equals": expected}
    if "consent" in value:
        return {"consent": _text(value["consent"], f"{field}.consent", 32)}
    if "segment" in value:
        return {"segment": _slug(value["segment"], f"{field}.segment")}
    raise DefinitionError(field, "Give a condition: did_event, did_not_event, trait, consent or segment.")


def _wait_seconds(step: dict[str, Any], field: str) -> float | None:
    units = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
    given = [u for u in units if u in step]
    if not given:
        return None
    _require(len(given) == 1, field, "Give the wait in one unit: seconds, minutes, hours or days.")
    unit = given[0]
    return _number(step[unit], f"{field}.{unit}", 0, 366 * 86400 / units[unit]) * units[unit]


def _step(value: Any, index: int) -> dict[str, Any]:
    field = f"steps[{index}]"
    _require(isinstance(value, dict), field, "Give each step as an object.")
    step_id = value.get("id", f"step-{index + 1}")
    _require(
        isinstance(step_id, str) and bool(_STEP_ID.match(step_id)),
        f"{field}.id",
        "Give an id of lowercase letters, digits, - and _ (at most 64).",
    )
    kind = value.get("type")
    _require(kind in STEP_TYPES, f"{field}.type", f"Choose one of {', '.join(STEP_TYPES)}.")
    out: dict[str, Any] = {"id": step_id, "type": kind}
    if kind == "wait":
        seconds = _wait_seconds(value, field)
        if seconds is not None:
            out["seconds"] = seconds
        elif "until_local_time" in value:
            local_time(value["until_local_time"], f"{field}.until_local_time")
            out["until_local_time"] = value["until_local_time"]
        elif "until_event" in value:
            out["until_event"] = _text(value["until_event"], f"{field}.until_event")
            out["timeout_seconds"] = _number(value.get("timeout_hours"), f"{field}.timeout_hours", 0, 24 * 366) * 3600
        else:
            raise DefinitionError(
                field, "Give a duration (seconds, minutes, hours, days), until_local_time or until_event."
            )
    elif kind == "branch":
        out["if"] = _condition(value.get("if"), f"{field}.if")
        out["then"] = _text(value.get("then"), f"{field}.then", 64)
        out["else"] = _text(value.get("else"), f"{field}.else", 64)
    elif kind == "send_email":
        out["campaign"] = _text(value.get("campaign"), f"{field}.campaign", 100)
        if value.get("window_hours") is not None:
            out["window_hours"] = _number(value["window_hours"], f"{field}.window_hours", 1, 7 * 24)
        if value.get("from") is not None:
            _require(value["from"] == "csm", f"{field}.from", 'Give "csm" (the account\'s CSM) or leave it out.')
            out["from"] = "csm"
        if value.get("instead_of") is not None:
            replaced = value["instead_of"]
            _require(
                isinstance(replaced, list) and len(replaced) <= 10,
                f"{field}.instead_of",
                "Give a list of at most 10 campaign keys.",
            )
            out["instead_of"] = [_text(k, f"{field}.instead_of[{i}]", 100) for i, k in enumerate(replaced)]
        if value.get("picks") is not None:
            out["picks"] = int(_number(value["picks"], f"{field}.picks", 1, 20))
    elif kind == "update_surface":
        surface = value.get("surface")
        _require(surface in SURFACES, f"{field}.surface", f"Choose one of {', '.join(SURFACES)}.")
        out["surface"] = surface
        if surface == "onboarding-checklist":
            out["item"] = _text(value.get("item"), f"{field}.item", 200)
            out["note"] = _text(value.get("note", "Your next step"), f"{field}.note", 300)
        else:
            out["campaign"] = _text(value.get("campaign"), f"{field}.campaign", 100)
    return out


def _reentry(value: Any) -> dict[str, Any]:
    value = {} if value is None else value
    _require(isinstance(value, dict), "reentry", "Give the re-entry rule as an object.")
    mode = value.get("mode", "after_exit")
    _require(mode in REENTRY_MODES, "reentry.mode", f"Choose one of {', '.join(REENTRY_MODES)}.")
    cooldown = _number(value.get("cooldown_hours", 0), "reentry.cooldown_hours", 0, 24 * 366)
    return {"mode": mode, "cooldown_hours": cooldown}


def validate(value: Any) -> dict[str, Any]:
    """The normalized definition; raises :class:`DefinitionError` naming the first wrong field."""
    _require(isinstance(value, dict), "definition", "Give the journey definition as an object.")
    trigger = _trigger(value.get("trigger"))
    raw_steps = value.get("steps")
    _require(isinstance(raw_steps, list) and 1 <= len(raw_steps) <= MAX_STEPS, "steps", f"Give 1 to {MAX_STEPS} steps.")
    steps = [_step(s, i) for i, s in enumerate(raw_steps)]
    positions: dict[str, int] = {}
    for i, step in enumerate(steps):
        _require(step["id"] not in positions, f"steps[{i}].id", f"The id {step['id']!r} is used twice.")
        positions[step["id"]] = i
    for i, step in enumerate(steps):
        if step["type"] == "branch":
            for side in ("then", "else"):
                target = positions.get(step[side])
                _require(target is not None, f"steps[{i}].{side}", f"No step has the id {step[side]!r}.")
                _require(target is not None and target > i, f"steps[{i}].{side}", "A branch may only jump forward.")
    exits = value.get("exit_on", [])
    _require(isinstance(exits, list) and len(exits) <= 10, "exit_on", "Give a list of at most 10 exit conditions.")
    exit_on = []
    for i, condition in enumerate(exits):
        _require(isinstance(condition, dict), f"exit_on[{i}]", "Give each exit condition as an object.")
        exit_on.append(
            {
                "event": _text(condition.get("event"), f"exit_on[{i}].event"),
                "where": _event_filter(condition.get("where"), f"exit_on[{i}].where"),
            }
        )
    holdout = _number(value.get("holdout_share", 0), "holdout_share", 0, 0.5)
    return {
        "trigger": trigger,
        "steps": steps,
        "exit_on": exit_on,
        "reentry": _reentry(value.get("reentry")),
        "holdout_share": holdout,
    }


def watched_events(definition: dict[str, Any]) -> list[str]:
    """Every event name (lowercased) or kind the journey reacts to as it happens."""
    names = set()
    if definition["trigger"]["type"] in ("event", "event_count"):
        names.add(definition["trigger"]["event"].lower())
    names.update(c["event"].lower() for c in definition["exit_on"])
    names.update(s["until_event"].lower() for s in definition["steps"] if s.get("until_event"))
    return sorted(names)


def campaigns_used(definition: dict[str, Any]) -> list[str]:
    return [s["campaign"] for s in definition["steps"] if s.get("campaign")]


def segments_used(definition: dict[str, Any]) -> list[str]:
    found = [definition["trigger"]["segment"]] if definition["trigger"].get("segment") else []
    found += [s["if"]["segment"] for s in definition["steps"] if s["type"] == "branch" and "segment" in s["if"]]
    return found


@dataclass(frozen=True)
class EventFacts:
    """One committed event as journeys see it."""

    person_id: int
    kind: str
    name: str
    item_id: str
    properties: dict[str, Any]
    timestamp: float  # epoch seconds
    message_id: str
    position: int


def matches_event(event: EventFacts, wanted: str, where: dict[str, Any] | None = None) -> bool:
    wanted = wanted.lower()
    if event.name.lower() != wanted and event.kind != wanted:
        return False
    return all(event.properties.get(name) == expected for name, expected in (where or {}).items())
