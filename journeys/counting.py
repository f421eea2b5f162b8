"""How many people are where in a journey: per step of its current version, how many reached it
(entered), are held there (waiting), went on past it (moved on) and left there (exited, with why).

An entry is *at* a step when that is the last step it ran (a wait holds it there until it is due),
or, before it ran any, at the first step. ``flow`` does the arithmetic on plain numbers;
``journey_flow`` reads them from the entries and step runs tables. The console's pages call only
``journey_flow``, so a measurement with conversions and the holdout can take its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, OuterRef, Subquery

from journeys.models import Entry, EntryState, Journey, StepRun

ACTIVE, DONE, EXITED, HELD_OUT = "active", "done", "exited", "held_out"


@dataclass
class StepCount:
    id: str
    type: str
    entered: int = 0
    waiting: int = 0
    moved_on: int = 0
    exited: int = 0
    exit_reasons: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)  # a branch: then / else


@dataclass
class Flow:
    entries: dict[str, int]  # by state: active, done, exited, held_out
    steps: list[StepCount]

    @property
    def total(self) -> int:
        return sum(self.entries.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": dict(self.entries),
            "total": self.total,
            "steps": [
                {
                    "id": s.id,
                    "type": s.type,
                    "entered": s.entered,
                    "waiting": s.waiting,
                    "moved_on": s.moved_on,
                    "exited": s.exited,
                    "exit_reasons": dict(s.exit_reasons),
                    "outcomes": dict(s.outcomes),
                }
                for s in self.steps
            ],
        }


def flow(
    steps: list[dict[str, Any]],
    ran: dict[str, int],
    positions: list[tuple[str, str, str, int]],
    outcomes: dict[tuple[str, str], int] | None = None,
) -> Flow:
    """``ran``: step id → entries that ran it. ``positions``: (state, last step run or "", exit
    reason, number of entries) for every entry. ``outcomes``: (step id, outcome) → entries."""
    counts = [StepCount(str(s["id"]), str(s["type"])) for s in steps]
    by_id = {c.id: c for c in counts}
    first = counts[0] if counts else None
    entries = {ACTIVE: 0, DONE: 0, EXITED: 0, HELD_OUT: 0}
    for step_id, n in ran.items():
        if step_id in by_id:
            by_id[step_id].entered += n
    for state, last, reason, n in positions:
        entries[state] = entries.get(state, 0) + n
        if state in (DONE, HELD_OUT):
            continue
        at = by_id.get(last) if last else first
        if at is None:
            continue  # a step of an older version, or a journey without steps
        if not last:  # not yet run: it reached the first step without a step run
            at.entered += n
        if state == ACTIVE:
            at.waiting += n
        elif state == EXITED:
            at.exited += n
            why = reason or "exited"
            at.exit_reasons[why] = at.exit_reasons.get(why, 0) + n
    for count in counts:
        count.moved_on = max(count.entered - count.waiting - count.exited, 0)
    for (step_id, outcome), n in (outcomes or {}).items():
        if step_id in by_id and by_id[step_id].type == "branch":
            by_id[step_id].outcomes[outcome] = by_id[step_id].outcomes.get(outcome, 0) + n
    return Flow(entries, counts)


def journey_flow(journey: Journey) -> Flow:
    """The counts of one journey's current version, from its entries and step runs."""
    steps = journey.current_version.definition["steps"] if journey.current_version else []
    runs = StepRun.objects.filter(entry__journey=journey)
    ran = dict(runs.values_list("step").annotate(n=Count("pk")).order_by())
    outcomes = {
        (step_id, outcome): n
        for step_id, outcome, n in runs.filter(kind="branch")
        .values_list("step", "outcome")
        .annotate(n=Count("pk"))
        .order_by()
    }
    last_run = StepRun.objects.filter(entry=OuterRef("pk")).order_by("-ran_at", "-pk").values("step")[:1]
    rows = (
        Entry.objects.filter(journey=journey)
        .annotate(last=Subquery(last_run))
        .values_list("state", "last", "exit_reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    positions = [
        (state, last or "", reason if state == EntryState.EXITED else "", n) for state, last, reason, n in rows
    ]
    return flow(steps, ran, positions, outcomes)


def totals(journeys: list[Journey]) -> dict[int, dict[str, int]]:
    """Entries by state for each journey of a list, in one query."""
    found: dict[int, dict[str, int]] = {j.pk: {ACTIVE: 0, DONE: 0, EXITED: 0, HELD_OUT: 0} for j in journeys}
    rows = (
        Entry.objects.filter(journey__in=journeys).values_list("journey_id", "state").annotate(n=Count("pk")).order_by()
    )
    for journey_id, state, n in rows:
        found[journey_id][state] = n
    return found
