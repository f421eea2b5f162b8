"""The public face of the journeys app: what its API, pages, tasks and admin call.

create_journey(key, name, definition) / change_journey / launch / pause / archive
advance_due() -> AdvanceReport          the periodic worker round
step_counts(journey) -> per step: ran, waiting here
step_measures(journey) -> per step: entered, waiting, moved on, exited (why); converted, revenue vs holdout
pinned_items(person_id, surface) -> the items journeys put first on a person's checklist
save_segment(key, name, rule) -> a saved segment for audience triggers and segment branches
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from journeys.advancing import AdvanceReport, advance_due
from journeys.definition import DefinitionError
from journeys.lifecycle import JourneyError, archive, change_journey, create_journey, launch, pause, save_segment
from journeys.measuring import step_measures
from journeys.models import Entry, EntryState, Journey, StepRun, SurfacePin

__all__ = [
    "AdvanceReport",
    "DefinitionError",
    "JourneyError",
    "advance_due",
    "archive",
    "change_journey",
    "create_journey",
    "launch",
    "pause",
    "pinned_items",
    "save_segment",
    "step_counts",
    "step_measures",
]


def pinned_items(person_id: int, surface: str) -> list[tuple[str, str]]:
    """(item id, note) that journeys pinned on the person's surface, newest first."""
    return list(
        SurfacePin.objects.filter(person_id=person_id, surface=surface)
        .order_by("-pinned_at", "-pk")
        .values_list("item_id", "note")
    )


def step_counts(journey: Journey) -> dict[str, Any]:
    """Entries by state, and per step of the current version: how many ran it and how many wait on it."""
    states = dict(Entry.objects.filter(journey=journey).values_list("state").annotate(n=Count("pk")))
    ran = dict(StepRun.objects.filter(entry__journey=journey).values_list("step").annotate(n=Count("pk")))
    waiting = dict(
        Entry.objects.filter(journey=journey, state=EntryState.ACTIVE).values_list("step").annotate(n=Count("pk"))
    )
    steps = journey.current_version.definition["steps"] if journey.current_version else []
    return {
        "entries": {state: states.get(state, 0) for state in EntryState.values},
        "steps": [
            {"id": s["id"], "type": s["type"], "ran": ran.get(s["id"], 0), "waiting": waiting.get(s["id"], 0)}
            for s in steps
        ],
    }
