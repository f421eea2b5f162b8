"""A journey in plain words: its trigger, each step, its exits and re-entry, as the console shows them
("When someone adds to cart…", "Wait 4 hours", "If they did Order Completed since entry, go to …").
Works on a validated definition and also on a draft the builder has not validated yet (missing
fields read as "…")."""

from __future__ import annotations

from typing import Any

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
KIND_WORDS = {
    "add_to_cart": "adds something to the cart",
    "purchase": "buys something",
    "view": "views an item",
    "product added": "adds something to the cart",
    "order completed": "completes an order",
    "product viewed": "views a product",
}
INTEREST_WORDS = {"view": "viewed", "add_to_cart": "carted"}


def _plural(n: float, word: str) -> str:
    shown = f"{n:g}"
    return f"{shown} {word}{'' if shown == '1' else 's'}"


def duration(seconds: float) -> str:
    """4 hours, 90 minutes, 2 days, 30 seconds: the largest unit that divides it."""
    for size, word in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return _plural(seconds / size, word)
    if seconds >= 3600:
        return _plural(round(seconds / 3600, 2), "hour")
    if seconds >= 60:
        return _plural(round(seconds / 60, 2), "minute")
    return _plural(seconds, "second")


def _text(value: Any) -> str:
    return str(value) if value not in (None, "") else "…"


def _where(where: Any) -> str:
    if not isinstance(where, dict) or not where:
        return ""
    return " with " + " and ".join(f"{k} = {v}" for k, v in where.items())


def event_words(name: Any) -> str:
    """'adds something to the cart (Product Added)' for names it knows, else 'does “Signed Up”'."""
    shown = _text(name)
    known = KIND_WORDS.get(shown.lower())
    return f"{known} ({shown})" if known else f"does “{shown}”"


def trigger(value: Any) -> str:
    value = value if isinstance(value, dict) else {}
    kind = value.get("type")
    if kind == "event":
        return f"When someone {event_words(value.get('event'))}{_where(value.get('where'))}"
    if kind == "event_count":
        who = "an account" if value.get("per") == "account" else "someone"
        if value.get("period") == "billing_cycle":
            whose = "its" if value.get("per") == "account" else "their account's"
            period = f"within {whose} billing cycle (counting starts again each cycle)"
        else:
            days = value.get("period_days")
            period = "in a period of " + (_plural(days, "day") if isinstance(days, (int, float)) else "… days")
        return (
            f"When {who} reaches {_text(value.get('threshold'))} × “{_text(value.get('event'))}”"
            f"{_where(value.get('where'))} {period}"
        )
    if kind == "audience":
        return f"When someone comes into the segment “{_text(value.get('segment'))}”"
    if kind == "price_drop":
        interest = value.get("interest") or ["view", "add_to_cart"]
        did = " or ".join(INTEREST_WORDS.get(k, str(k)) for k in interest)
        return (
            f"When an item's price drops by at least {_text(value.get('min_drop_percent', 1))} %, everyone who "
            f"{did} it in the last {_text(value.get('within_days', 30))} days"
        )
    if kind == "back_in_stock":
        interest = value.get("interest") or ["view", "add_to_cart"]
        did = " or ".join(INTEREST_WORDS.get(k, str(k)) for k in interest)
        return (
            f"When an item comes back in stock, everyone who {did} it in the last "
            f"{_text(value.get('within_days', 30))} days"
        )
    if kind == "schedule":
        at = _text(value.get("local_time", "09:00"))
        if value.get("every") == "weekly":
            day = value.get("weekday", 0)
            name = WEEKDAYS[day] if isinstance(day, int) and 0 <= day < 7 else "…"
            return f"Every {name} at {at} in each person's time zone, everyone with an email address"
        return f"Every day at {at} in each person's time zone, everyone with an email address"
    return "When … (choose a trigger)"


def condition(value: Any) -> str:
    value = value if isinstance(value, dict) else {}
    if "did_event" in value:
        return f"they did “{_text(value['did_event'])}” since entering"
    if "did_not_event" in value:
        return f"they did not do “{_text(value['did_not_event'])}” since entering"
    if "trait" in value:
        return f"their {_text(value['trait'])} is {_text(value.get('equals'))}"
    if "consent" in value:
        return f"they consent to {_text(value['consent']).replace('_', ' ')}"
    if "segment" in value:
        return f"they are in the segment “{_text(value['segment'])}”"
    return "…"


def _target(step_id: Any, names: dict[str, str]) -> str:
    return names.get(str(step_id), f"“{_text(step_id)}”")


def step(value: Any, names: dict[str, str] | None = None) -> str:
    """One step in words; ``names`` maps step ids to how a branch should name its targets."""
    value = value if isinstance(value, dict) else {}
    names = names or {}
    kind = value.get("type")
    if kind == "wait":
        if "seconds" in value and isinstance(value["seconds"], (int, float)):
            return f"Wait {duration(float(value['seconds']))}"
        for unit in ("days", "hours", "minutes", "seconds"):
            if unit in value:
                return f"Wait {_text(value[unit])} {unit}"
        if "until_local_time" in value:
            return f"Wait until {_text(value['until_local_time'])} in their time zone"
        if "until_event" in value:
            if "timeout_seconds" in value and isinstance(value["timeout_seconds"], (int, float)):
                timeout = duration(float(value["timeout_seconds"]))
            else:
                timeout = f"{_text(value.get('timeout_hours'))} hours"
            return f"Wait until they do “{_text(value['until_event'])}”, at most {timeout}"
        return "Wait …"
    if kind == "branch":
        return (
            f"If {condition(value.get('if'))}, go to {_target(value.get('then'), names)}; "
            f"otherwise go to {_target(value.get('else'), names)}"
        )
    if kind == "require_approval":
        return "The next email waits for approval in the CSM's queue"
    if kind == "send_email":
        said = f"Send the email “{_text(value.get('campaign'))}”"
        if value.get("picks"):
            said += f" with {_text(value['picks'])} items they have not been shown (skipped when none qualifies)"
        if value.get("from") == "csm":
            said += ", from the account's CSM"
        if value.get("instead_of"):
            said += f", instead of {', '.join(f'“{k}”' for k in value['instead_of'])}"
        if value.get("window_hours"):
            said += f", at their best hour within {_text(value['window_hours'])} hours"
        return said
    if kind == "update_surface":
        if value.get("surface") == "onboarding-checklist":
            return f"Put “{_text(value.get('item'))}” first on their onboarding checklist"
        return f"Show the in-product message “{_text(value.get('campaign'))}”"
    if kind == "exit":
        return "Leave the journey"
    return "… (choose what this step does)"


def step_names(steps: list[Any]) -> dict[str, str]:
    """How a branch names a step: 'step 3 (send)'."""
    return {str(s.get("id")): f"step {n} ({s.get('id')})" for n, s in enumerate(steps, start=1) if isinstance(s, dict)}


def exits(value: Any) -> str:
    found = [c for c in value or [] if isinstance(c, dict)]
    if not found:
        return "Nobody leaves early: people leave after the last step or at an exit step."
    said = " or ".join(f"“{_text(c.get('event'))}”{_where(c.get('where'))}" for c in found)
    return f"Anyone who does {said} leaves at once."


def reentry(value: Any) -> str:
    value = value if isinstance(value, dict) else {}
    mode = value.get("mode", "after_exit")
    said = {
        "once": "A person enters once, ever.",
        "after_exit": "A person enters again only after leaving.",
        "every_time": "A person enters every time the trigger fires.",
    }.get(mode, "…")
    hours = value.get("cooldown_hours") or 0
    if isinstance(hours, (int, float)) and hours > 0:
        said += f" At least {duration(hours * 3600)} between entries."
    return said


def holdout(share: Any) -> str:
    if not isinstance(share, (int, float)) or share <= 0:
        return "No holdout: everyone who enters gets the messages."
    return f"{share * 100:g} % are held out at random and get nothing, to measure the journey against."


def summary(definition: dict[str, Any]) -> dict[str, Any]:
    """Everything in words: trigger, steps (in order), exits, re-entry, holdout."""
    steps = [s for s in definition.get("steps") or [] if isinstance(s, dict)]
    names = step_names(steps)
    return {
        "trigger": trigger(definition.get("trigger")),
        "steps": [step(s, names) for s in steps],
        "exits": exits(definition.get("exit_on")),
        "reentry": reentry(definition.get("reentry")),
        "holdout": holdout(definition.get("holdout_share")),
    }


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _signed(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    if value is None:
        return "–"
    shown = value * scale
    return f"{'+' if shown >= 0 else '−'}{abs(shown):,.{1 if unit else 2}f}{unit}"


def _interval(bounds: list[float | None] | None, scale: float = 1.0, unit: str = "") -> str:
    if not bounds or bounds[0] is None or bounds[1] is None:
        return ""
    return f" (95%: {_signed(bounds[0], scale, unit)} to {_signed(bounds[1], scale, unit)})"


def against_holdout(group: dict[str, Any], holdout: dict[str, Any]) -> dict[str, str]:
    """A step's (or the journey's) conversion and revenue beside the holdout's, in words:
    ``group`` has the rates and lifts of ``journeys.measuring.compare``, ``holdout`` the holdout's."""
    n = group.get("entered", group.get("entries", 0)) or 0
    rate = group.get("conversion_rate")
    converted = group.get("converted", round((rate or 0) * n))
    per_entry = group.get("revenue_per_entry")
    revenue = group.get("revenue", (per_entry or 0) * n)
    held = holdout.get("held_out", 0)
    conversion = f"{converted} of {n} bought ({_percent(rate)})"
    money = f"{revenue:,.2f} spent ({'–' if per_entry is None else f'{per_entry:,.2f}'} per entry)"
    if held:
        conversion += (
            f"; held out {_percent(holdout.get('holdout_conversion_rate'))}, "
            f"difference {_signed(group.get('conversion_lift'), 100, ' pts')}"
            + _interval(group.get("conversion_lift_interval"), 100, " pts")
        )
        money += (
            f"; held out {holdout.get('holdout_revenue_per_entry') or 0:,.2f}, "
            f"difference {_signed(group.get('revenue_lift'))}" + _interval(group.get("revenue_lift_interval"))
        )
    else:
        conversion += "; nobody held out to compare with"
    return {"conversion": conversion, "revenue": money}
