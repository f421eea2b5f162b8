"""A test run of a journey for one person: the path they would take, worked out from their events,
traits and consent without entering, sending or storing anything.

``trace`` is a pure function of the definition, the person's events and facts, and a moment
(``now``). It enters the person at their latest trigger occurrence (or, when there is none, as if
the trigger fired now), runs the steps as the workers would — waits move the clock, branches read
the events up to that moment, exit conditions end the path — and marks what lies after ``now`` as
expected, assuming they do nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from journeys import billing_cycle, wording
from journeys.definition import EventFacts, local_time, matches_event

EMAIL_PURPOSE = "email_marketing"


@dataclass(frozen=True)
class Person:
    """What a test run knows of the person besides their events."""

    traits: dict[str, Any]
    consents: dict[str, bool]  # purpose → granted
    zone: str = "UTC"
    held_out: bool = False
    segments: frozenset[str] = frozenset()  # the saved segments they are in now
    segment_since: dict[str, datetime] = field(default_factory=dict)  # when the audience trigger counted them in
    billing_day: int | None = None  # their account's (``Account.billing_day``): when its billing cycles start


@dataclass
class PathStep:
    number: int
    id: str
    type: str
    words: str  # the step in plain words
    happens: str  # what it does for this person
    at: datetime
    expected: bool  # after now: what happens if they do nothing more
    tone: str = ""  # good, warn, bad


@dataclass
class Trace:
    entry: str  # how (or whether) they enter
    entered: bool  # False: no trigger occurrence found; the path is what would happen if it fired now
    entered_at: datetime
    path: list[PathStep] = field(default_factory=list)
    outcome: str = ""


def _when(moment: datetime) -> str:
    return moment.strftime("%b %-d %H:%M UTC")


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=ZoneInfo("UTC"))


def _entry_point(
    trigger: dict[str, Any], events: list[EventFacts], now: datetime, person: Person
) -> tuple[bool, datetime, str]:
    zone = person.zone
    kind = trigger["type"]
    if kind == "event":
        found = [e for e in events if matches_event(e, trigger["event"], trigger.get("where"))]
        if found:
            last = found[-1]
            return (
                True,
                _utc(last.timestamp),
                f"Enters at their latest “{last.name or last.kind}”, {_when(_utc(last.timestamp))}.",
            )
        return False, now, f"They have not done “{trigger['event']}”; shown as if they did it now."
    if kind == "event_count":
        cycle = trigger.get("period") == "billing_cycle"
        period_name = "billing cycle" if cycle else "period"

        def period_of(moment: float) -> Any:
            if cycle:
                return billing_cycle.cycle_start(_utc(moment), person.billing_day)
            return int(moment // (trigger["period_days"] * 86400))

        counts: dict[Any, int] = {}
        reached: EventFacts | None = None
        for event in events:
            if matches_event(event, trigger["event"], trigger.get("where")):
                bucket = period_of(event.timestamp)
                counts[bucket] = counts.get(bucket, 0) + 1
                if counts[bucket] == trigger["threshold"]:
                    reached = event
        if reached is not None:
            at = _utc(reached.timestamp)
            return (
                True,
                at,
                f"Enters at their {trigger['threshold']}th “{trigger['event']}” of the {period_name}, {_when(at)}.",
            )
        current = counts.get(period_of(now.timestamp()), 0)
        return (
            False,
            now,
            f"{current} of {trigger['threshold']} “{trigger['event']}” in this {period_name}; "
            "shown as if they reached it now.",
        )
    if kind == "audience":
        segment = trigger["segment"]
        if segment in person.segment_since and segment in person.segments:
            since = person.segment_since[segment]
            return True, since, f"Entered when they came into the segment “{segment}”, {_when(since)}."
        if segment in person.segments:
            return True, now, f"They are in the segment “{segment}” now: they enter at its next check."
        return False, now, f"They are not in the segment “{segment}”; shown as if they came into it now."
    if kind in ("back_in_stock", "price_drop"):
        since = now.timestamp() - trigger["within_days"] * 86400
        items = [e.item_id for e in events if e.item_id and e.kind in trigger["interest"] and e.timestamp >= since]
        if items:
            change = "comes back in stock" if kind == "back_in_stock" else "drops in price"
            return True, now, f"Enters when {items[-1]} {change} (they showed interest in it); shown as now."
        return (
            False,
            now,
            f"No item viewed or carted in the last {trigger['within_days']} days; shown as if one came back now.",
        )
    # schedule: the next time in their zone
    hour = local_time(trigger["local_time"], "trigger.local_time")
    local_now = now.astimezone(ZoneInfo(zone))
    candidate = local_now.replace(hour=hour.hour, minute=hour.minute, second=0, microsecond=0)
    while candidate < local_now or (trigger["every"] == "weekly" and candidate.weekday() != trigger["weekday"]):
        candidate += timedelta(days=1)
    moment = candidate.astimezone(ZoneInfo("UTC"))
    return True, moment, f"Enters at the next scheduled time in their zone ({zone}), {_when(moment)}."


def _did(events: list[EventFacts], wanted: str, since: datetime, until: datetime) -> EventFacts | None:
    for event in events:
        if since.timestamp() <= event.timestamp <= until.timestamp() and matches_event(event, wanted):
            return event
    return None


def _exit_event(
    definition: dict[str, Any], events: list[EventFacts], since: datetime, until: datetime
) -> EventFacts | None:
    for event in events:
        if since.timestamp() <= event.timestamp <= until.timestamp():
            for condition in definition["exit_on"]:
                if matches_event(event, condition["event"], condition.get("where")):
                    return event
    return None


def _condition(
    condition: dict[str, Any], events: list[EventFacts], person: Person, since: datetime, at: datetime
) -> tuple[bool, str]:
    if "did_event" in condition:
        found = _did(events, condition["did_event"], since, at)
        return found is not None, (f"they did it at {_when(_utc(found.timestamp))}" if found else "they did not")
    if "did_not_event" in condition:
        found = _did(events, condition["did_not_event"], since, at)
        return found is None, (f"they did it at {_when(_utc(found.timestamp))}" if found else "they did not")
    if "trait" in condition:
        value = person.traits.get(condition["trait"])
        return value == condition[
            "equals"
        ], f"their {condition['trait']} is {value if value is not None else 'not set'}"
    if "consent" in condition:
        granted = bool(person.consents.get(condition["consent"]))
        return granted, "they consent" if granted else "they do not consent"
    inside = condition.get("segment", "") in person.segments
    return inside, "they are in the segment" if inside else "they are not in the segment"


def _next_local(at: datetime, wanted: str, zone: str) -> datetime:
    hour = local_time(wanted, "until_local_time")
    local = at.astimezone(ZoneInfo(zone))
    candidate = local.replace(hour=hour.hour, minute=hour.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(ZoneInfo("UTC"))


def _send_words(campaign: str, person: Person, approval: bool) -> tuple[str, str]:
    """Whether the email would go, as far as the test run can tell (caps and quiet hours only defer)."""
    if not person.traits.get("email"):
        return f"the email “{campaign}” would be suppressed: no email address", "bad"
    if not person.consents.get(EMAIL_PURPOSE):
        return f"the email “{campaign}” would be suppressed: no {EMAIL_PURPOSE} consent", "bad"
    if approval:
        return f"the email “{campaign}” goes to the approval queue", "warn"
    return f"sends the email “{campaign}” (caps and quiet hours may defer it)", "good"


def trace(definition: dict[str, Any], events: list[EventFacts], person: Person, now: datetime) -> Trace:
    """The path one person would take through a (validated) definition. Nothing is stored."""
    events = sorted(events, key=lambda e: (e.timestamp, e.position))
    entered, entered_at, how = _entry_point(definition["trigger"], events, now, person)
    result = Trace(how, entered, entered_at)
    if person.held_out:
        result.outcome = "Held out: they would be in the journey's holdout and get nothing."
        return result
    steps = definition["steps"]
    names = wording.step_names(steps)
    position = {s["id"]: i for i, s in enumerate(steps)}
    clock = entered_at
    approval = False
    index = 0
    while index < len(steps):
        gone = _exit_event(definition, events, entered_at, clock)
        if gone is not None:
            result.outcome = (
                f"Leaves: they did “{gone.name or gone.kind}” at {_when(_utc(gone.timestamp))} (an exit condition)."
            )
            return result
        step = steps[index]
        kind = step["type"]
        words = wording.step(step, names)
        next_index = index + 1
        shown_at, tone = clock, ""
        if kind == "wait":
            if "seconds" in step:
                clock = clock + timedelta(seconds=step["seconds"])
                happens = f"waits until {_when(clock)}"
            elif "until_local_time" in step:
                clock = _next_local(clock, step["until_local_time"], person.zone)
                happens = f"waits until {_when(clock)} ({step['until_local_time']} in {person.zone})"
            else:
                timeout = clock + timedelta(seconds=step["timeout_seconds"])
                found = _did(events, step["until_event"], clock, min(timeout, now))
                if found is not None:
                    clock = _utc(found.timestamp)
                    happens = f"they did “{step['until_event']}” at {_when(clock)}: goes on"
                else:
                    clock = timeout
                    happens = f"no “{step['until_event']}” by then: goes on at {_when(clock)}"
        elif kind == "branch":
            holds, why = _condition(step["if"], events, person, entered_at, min(clock, now))
            target = step["then"] if holds else step["else"]
            happens, tone = f"{why}: goes to {names.get(target, target)}", "good" if holds else ""
            next_index = position[target]
        elif kind == "require_approval":
            approval = True
            happens, tone = "the next email will wait for approval", "warn"
        elif kind == "send_email":
            happens, tone = _send_words(step["campaign"], person, approval)
            approval = False
        elif kind == "update_surface":
            happens, tone = (
                "their "
                + (
                    "onboarding checklist changes"
                    if step.get("surface") == "onboarding-checklist"
                    else "in-app message shows"
                ),
                "good",
            )
        elif kind == "exit":
            happens = "leaves the journey"
        else:
            happens = "runs"
        result.path.append(PathStep(index + 1, step["id"], kind, words, happens, shown_at, shown_at > now, tone))
        if kind == "exit":
            result.outcome = "Leaves at the exit step."
            return result
        index = next_index
    gone = _exit_event(definition, events, entered_at, min(clock, now))
    if gone is not None:
        result.outcome = (
            f"Leaves: they did “{gone.name or gone.kind}” at {_when(_utc(gone.timestamp))} (an exit condition)."
        )
        return result
    result.outcome = "Finishes the journey after the last step."
    return result
