"""The public face of the journeys app: what its API, pages, tasks and admin call.

create_journey(key, name, definition) / change_journey / launch / pause / archive
advance_due() -> AdvanceReport          the periodic worker round
step_counts(journey) -> entries by state; per step: ran, waiting there (journeys.counting)
step_measures(journey) -> per step: entered, waiting, moved on, exited (why); converted, revenue vs holdout
pinned_items(person_id, surface) -> the items journeys put first on a person's checklist
save_segment(key, name, rule) -> a saved segment for audience triggers and segment branches
"""

from __future__ import annotations

from typing import Any

from journeys.advancing import AdvanceReport, advance_due
from journeys.counting import journey_flow
from journeys.definition import DefinitionError
from journeys.lifecycle import JourneyError, archive, change_journey, create_journey, launch, pause, save_segment
from journeys.measuring import step_measures
from journeys.models import Journey, SurfacePin

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
    """Entries by state, and per step of the current version: how many ran it and how many are held
    there now (in its wait, or about to run the first step) — the counts of ``journeys.counting``."""
    counted = journey_flow(journey)
    return {
        "entries": dict(counted.entries),
        "steps": [{"id": s.id, "type": s.type, "ran": s.ran, "waiting": s.waiting} for s in counted.steps],
    }
