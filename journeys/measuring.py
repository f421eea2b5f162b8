"""How a journey is doing, per step and against its holdout.

Per step of the current version:

- ``entered``: entries that reached the step (ran it, or wait to run it now);
- ``waiting``: active entries whose next step it is;
- ``moved_on``: entries that ran it and went on (neither ended nor left there);
- ``exited``: entries that left the journey there, by reason (an exit event during the wait that
  followed the step, an exit step); ``finished``: entries that ended there after the last step;
- ``converted`` and ``revenue``: of the entries that reached the step, those who bought within
  ``CONVERSION_DAYS`` of entering, and what they spent (price × quantity of their purchases).

For the journey: the same conversion and revenue per entry for the entries that went through it and
for those held out (the journey's holdout share, drawn per person), compared with a 95% interval
for the difference (two-proportion z for conversion, Welch for revenue per entry; ``experiments.stats``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import DateTimeField, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from experiments import stats
from journeys.models import Entry, EntryState, Journey, StepRun
from profiles.models import Event

CONVERSION_DAYS = 7
CONVERSION_KIND = "purchase"


def _purchases_after_entry() -> Any:
    return Event.objects.filter(
        person_id=OuterRef("person_id"),
        kind=CONVERSION_KIND,
        timestamp__gte=OuterRef("entered_at"),
        timestamp__lt=ExpressionWrapper(
            OuterRef("entered_at") + timedelta(days=CONVERSION_DAYS), output_field=DateTimeField()
        ),
    )


def _outcomes(journey: Journey) -> dict[int, tuple[str, str, bool, float]]:
    """Per entry: state, exit reason, converted, revenue."""
    money = DecimalField(max_digits=14, decimal_places=2)
    revenue = (
        _purchases_after_entry()
        .order_by()
        .values("person_id")
        .annotate(
            total=Sum(
                ExpressionWrapper(
                    Coalesce(F("price"), Value(0)) * Coalesce(F("quantity"), Value(1)), output_field=money
                )
            )
        )
        .values("total")
    )
    rows = (
        Entry.objects.filter(journey=journey)
        .annotate(converted=Exists(_purchases_after_entry()), revenue=Subquery(revenue, output_field=money))
        .values_list("pk", "state", "exit_reason", "converted", "revenue")
    )
    return {pk: (state, reason, bool(converted), float(spent or 0)) for pk, state, reason, converted, spent in rows}


def _compare(treated: list[tuple[bool, float]], held: list[tuple[bool, float]]) -> dict[str, Any]:
    def rate(group: list[tuple[bool, float]]) -> float | None:
        return sum(c for c, _ in group) / len(group) if group else None

    def per_entry(group: list[tuple[bool, float]]) -> float | None:
        return sum(r for _, r in group) / len(group) if group else None

    out: dict[str, Any] = {
        "entries": len(treated),
        "held_out": len(held),
        "conversion_rate": rate(treated),
        "holdout_conversion_rate": rate(held),
        "revenue_per_entry": per_entry(treated),
        "holdout_revenue_per_entry": per_entry(held),
        "conversion_lift": None,
        "conversion_lift_interval": None,
        "revenue_lift": None,
        "revenue_lift_interval": None,
    }
    if treated and held:
        test = stats.two_proportion_test(sum(c for c, _ in held), len(held), sum(c for c, _ in treated), len(treated))
        interval = test.difference_interval
        out["conversion_lift"] = test.difference
        out["conversion_lift_interval"] = [_finite(interval.low), _finite(interval.high)]
    if len(treated) >= 2 and len(held) >= 2:
        welch = stats.welch_test(
            stats.SampleSummary.from_values([r for _, r in held]),
            stats.SampleSummary.from_values([r for _, r in treated]),
        )
        interval = welch.difference_interval
        out["revenue_lift"] = welch.difference
        out["revenue_lift_interval"] = [_finite(interval.low), _finite(interval.high)]
    return out


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def step_measures(journey: Journey) -> dict[str, Any]:
    """Per step and for the journey against its holdout (see the module's docstring)."""
    outcomes = _outcomes(journey)
    runs: dict[int, list[str]] = defaultdict(list)
    for entry_id, step in (
        StepRun.objects.filter(entry__journey=journey)
        .order_by("entry_id", "ran_at", "pk")
        .values_list("entry_id", "step")
    ):
        runs[entry_id].append(step)
    active_next = dict(Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).values_list("pk", "step"))
    waiting = Counter(active_next.values())
    steps = journey.current_version.definition["steps"] if journey.current_version else []
    first = steps[0]["id"] if steps else ""
    reached: dict[str, set[int]] = defaultdict(set)
    exited: dict[str, Counter[str]] = defaultdict(Counter)
    finished: Counter[str] = Counter()
    for entry_id, (state, reason, _, _) in outcomes.items():
        done_steps = runs.get(entry_id, [])
        for ran_step in done_steps:
            reached[ran_step].add(entry_id)
        last = done_steps[-1] if done_steps else first
        if state == EntryState.EXITED:
            exited[last][reason or "exited"] += 1
            reached[last].add(entry_id)
        elif state == EntryState.DONE:
            finished[last] += 1
    for entry_id, next_step in active_next.items():
        if next_step:
            reached[next_step].add(entry_id)
    per_step = []
    for step in steps:
        sid = step["id"]
        ids = reached.get(sid, set())
        ran_it = sum(1 for e in ids if sid in runs.get(e, []))
        left_here = sum(exited.get(sid, Counter()).values())
        ran_and_left = sum(
            1
            for e in ids
            if sid in runs.get(e, []) and outcomes[e][0] in (EntryState.EXITED, EntryState.DONE) and runs[e][-1] == sid
        )
        per_step.append(
            {
                "id": sid,
                "type": step["type"],
                "entered": len(ids),
                "waiting": waiting.get(sid, 0),
                "moved_on": ran_it - ran_and_left,
                "exited": left_here,
                "exited_by_reason": dict(exited.get(sid, Counter())),
                "finished": finished.get(sid, 0),
                "converted": sum(1 for e in ids if outcomes[e][2]),
                "revenue": round(sum(outcomes[e][3] for e in ids), 2),
            }
        )
    treated = [(c, r) for state, _, c, r in outcomes.values() if state != EntryState.HELD_OUT]
    held = [(c, r) for state, _, c, r in outcomes.values() if state == EntryState.HELD_OUT]
    return {
        "conversion_days": CONVERSION_DAYS,
        "steps": per_step,
        "holdout": _compare(treated, held),
    }
